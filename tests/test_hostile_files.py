"""Hostile files: packs, inventories, waivers, baselines, saved reports and journals arrive in pull requests. An alias
bomb, deep nesting, control characters, invalid UTF-8, a huge file or a path the system refuses each end in one
``file:line:column`` (or ``file:``) line and exit 2 — never an internal error (exit 5), never a long run.

Unreadable-by-permission (EACCES) is not tested: the tests run as root, which reads a mode-000 file; a directory
and a name too long stand in for a path that cannot be read.
"""

from __future__ import annotations

import re
import time
import tracemalloc

import pytest

from scanner.exitcodes import ExitCode
from scanner.gate import GateFileError, load_waivers
from scanner.policy.pack import PackError, load_pack
from scanner.saved import SavedFileError, read_report, read_saved_facts
from scanner.targets.inventory import InventoryError
from scanner.targets.reader import load_inventory
from scanner.yamlfile import FileProblems

POSITION = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<column>\d+): ")
LONG_NAME = "n" * 300  # past NAME_MAX (255)


def billion_laughs(levels: int = 9) -> str:
    """The classic: nine aliases of nine aliases ... 10**9 strings once expanded, 1 KB as written."""
    lines = ['lol0: &lol0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


LOADERS = [(load_pack, PackError), (load_inventory, InventoryError), (load_waivers, GateFileError)]


@pytest.mark.parametrize(("load", "error"), LOADERS, ids=["pack", "inventory", "waivers"])
def test_billion_laughs_is_refused_fast_in_little_memory(tmp_path, load, error):
    """Refused at the alias that passes the limit, in well under a second and a few MB (it once took gigabytes)."""
    path = tmp_path / "bomb.yaml"
    path.write_text(billion_laughs())
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(error) as caught:
            load(path)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    (problem,) = caught.value.problems
    assert (problem.line, problem.column) == (6, 28)  # the 4th alias of lol5 passes 250,000 values
    assert "more than 250,000 values" in problem.message
    assert elapsed < 1.0
    assert peak < 4 * 1024 * 1024


def test_aliases_within_the_limit_still_work(tmp_path):
    """A modest use of anchors and aliases (shared settings) loads as before."""
    path = tmp_path / "inventory.yaml"
    path.write_text("x-common: &common [tls13-only]\ntargets:\n  - {target: 'a.example', packs: *common}\n")
    with pytest.raises(InventoryError) as caught:  # x-common is no inventory key: the alias itself was fine
        load_inventory(path)
    assert [p.message for p in caught.value.problems] == ["unknown inventory key 'x-common'"]


# Each case: what the file holds (bytes), and the position and the start of the message of its one problem.
BAD_YAML = [
    pytest.param(b"id: a\x01b\n", (1, 6), "pack holds the control character U+0001", id="C0"),
    pytest.param(b"id: a\ntitle: \x1b[2J\n", (2, 8), "pack holds the control character U+001B", id="ESC"),
    pytest.param("id: a\ntitle: x\x9b31m\n".encode(), (2, 9), "pack holds the control character U+009B", id="C1"),
    pytest.param("id: a\n  # \x85\n".encode(), (2, 5), "pack holds the control character U+0085", id="NEL"),
    pytest.param(b"id: a\x7f\n", (1, 6), "pack holds the control character U+007F", id="DEL"),
    pytest.param(b"id: ok\ntitle: caf\xc3\xa9 \xff\n", (2, 13), "pack is not UTF-8 text: byte 0xff", id="bad-utf8"),
    pytest.param(b"id: ok\n\xed\xa0\x80\n", (2, 1), "pack is not UTF-8 text: byte 0xed", id="surrogate-utf8"),
    pytest.param(b"a: " + b"[" * 100 + b"]" * 100, (1, 67), "pack is nested deeper than 64 levels", id="deep-flow"),
    pytest.param(b"a: " + b"[" * 100_000, (1, 67), "pack is nested deeper than 64 levels", id="very-deep-unclosed"),
    pytest.param(
        "".join(f"{'  ' * i}k{i}:\n" for i in range(80)).encode(),
        (64, 127),  # the mapping at k63, the 65th level
        "pack is nested deeper than 64 levels",
        id="deep-block",
    ),
    pytest.param(
        b"a: &a [" + b"[" * 40 + b"x" + b"]" * 40 + b"]\nb: [[[[[[[[[[[[[[[[[[[[[[[[[[*a]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
        (2, 30),  # *a at depth 27 repeats 42 levels
        "pack is nested deeper than 64 levels (counting what aliases repeat)",
        id="deep-by-alias",
    ),
]


@pytest.mark.parametrize(("content", "where", "message"), BAD_YAML)
def test_bad_yaml_is_one_problem_at_its_position(tmp_path, content, where, message):
    path = tmp_path / "pack.yaml"
    path.write_bytes(content)
    with pytest.raises(PackError) as caught:
        load_pack(path)
    (problem,) = caught.value.problems
    assert ((problem.line, problem.column), problem.message[: len(message)]) == (where, message)


def test_a_file_over_the_limit_is_refused_before_it_is_read(tmp_path):
    """A sparse 1 GiB file: refused by its size, without reading (or holding) a gigabyte."""
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:
        handle.truncate(1024**3)
    tracemalloc.start()
    try:
        with pytest.raises(InventoryError) as caught:
            load_inventory(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [p.as_line() for p in caught.value.problems] == [f"{path}: inventory is larger than 2 MiB; refused"]
    assert peak < 1024 * 1024  # its size said it: nothing was read


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("deep.json", "[" * 100_000 + "]" * 100_000, "{path}: not usable JSON: nested too deeply"),
        ("digits.json", '{"n": ' + "9" * 10_000 + "}", "{path}: not usable JSON: Exceeds the limit"),
        ("ctrl.json", '{"a": "\x1b"}', "{path}:1:8: not valid JSON: Invalid control character at"),
        ("latin.json", b'{"a": "caf\xe9"}', "{path}:1:11: tlsgate JSON report is not UTF-8 text: byte 0xe9"),
    ],
)
def test_hostile_json_is_a_saved_file_error(tmp_path, name, content, expected):
    """Too deep for the parser, a number too long to convert, a raw control character, not UTF-8: one line each."""
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(SavedFileError) as caught:
        read_report(path)
    assert str(caught.value).startswith(expected.format(path=path))


def test_a_journal_line_nested_too_deeply_names_its_line(tmp_path):
    path = tmp_path / "scan.jsonl"
    path.write_text("[" * 50_000 + "]" * 50_000 + "\n" + "{}\n")
    with pytest.raises(SavedFileError) as caught:
        read_saved_facts(path)
    assert str(caught.value).startswith(f"{path}:1: not a tlsgate JSON Lines target: ")


def _position_lines(stderr: str) -> list[re.Match[str]]:
    return [m for line in stderr.splitlines() if (m := POSITION.match(line.removeprefix("tlsgate: error: ")))]


# The command lines that read each kind of file, FILE standing for the hostile file.
READERS = {
    "pack": ("rules", "validate", "FILE"),
    "scan --pack": ("scan", "127.0.0.1:1", "--pack", "FILE"),
    "inventory": ("scan", "--inventory", "FILE"),
    "waivers": ("scan", "127.0.0.1:1", "--waivers", "FILE"),
}


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("kind", ["bomb", "control", "deep"])
def test_the_command_line_says_where_and_exits_2(tlsgate, tmp_path, reader, kind):
    """The real command line: exit 2 and one file:line:column line, quickly (the bomb once ran for minutes)."""
    path = tmp_path / "hostile.yaml"
    content = {"bomb": billion_laughs(), "control": "id: x\x1b]0;owned\x07\n", "deep": "a: " + "[" * 5000}[kind]
    path.write_text(content)
    run = tlsgate(*(str(path) if a == "FILE" else a for a in READERS[reader]), timeout=60)
    assert run.code == ExitCode.USAGE, run.stderr
    (match,) = _position_lines(run.stderr)
    assert match["file"] == str(path)
    assert "\x1b" not in run.stderr and "\x07" not in run.stderr  # the file's own text is shown escaped
    assert run.seconds < 20


def test_saved_files_that_are_too_deep_exit_2(tlsgate, tmp_path):
    """report render, evaluate and --baseline each say the JSON is too deep: exit 2, not a RecursionError."""
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    for args in (
        ("report", "render", str(deep), "--format", "markdown"),
        ("evaluate", str(deep), "--pack", "tls13-only"),
        ("scan", "127.0.0.1:1", "--baseline", str(deep)),
    ):
        run = tlsgate(*args, timeout=60)
        assert (run.code, run.stderr.splitlines()) == (
            ExitCode.USAGE,
            [f"tlsgate: error: {deep}: not usable JSON: nested too deeply"],
        ), args


@pytest.mark.parametrize(
    "args",
    [
        ("rules", "validate", "{long}.yaml"),
        ("rules", "show", "{long}.yaml"),
        ("scan", "127.0.0.1:1", "--pack", "{long}.yaml"),
        ("scan", "--inventory", "{long}.yaml"),
        ("scan", "--targets-file", "{long}.txt"),
        ("scan", "127.0.0.1:1", "--waivers", "{long}.yaml"),
        ("scan", "127.0.0.1:1", "--baseline", "{long}.json"),
        ("scan", "127.0.0.1:1", "--resume", "{long}.jsonl"),
        ("scan", "127.0.0.1:1", "--format", "json={long}.json"),
        ("scan", "127.0.0.1:1", "--format", "jsonl={long}.jsonl"),
        ("evaluate", "{long}.json", "--pack", "tls13-only"),
        ("report", "render", "{long}.json", "--format", "markdown"),
        ("report", "render", "{dir}", "--format", "markdown"),
        ("scan", "--inventory", "{dir}"),
        ("rules", "validate", "{dir}"),
    ],
)
def test_paths_the_system_refuses_are_usage_errors(tlsgate, tmp_path, args):
    """A name too long or a directory where a file is due: exit 2 naming the path, before anything is scanned."""
    long = str(tmp_path / LONG_NAME)
    run = tlsgate(*(a.format(long=long, dir=tmp_path) for a in args), timeout=60)
    assert run.code == ExitCode.USAGE, run.stderr
    assert "internal error" not in run.stderr and "Traceback" not in run.stderr
    assert str(tmp_path) in run.stderr


def test_paths_inside_files_with_nul_bytes_or_too_long_are_problems(tmp_path):
    """A YAML escape can put a NUL byte in a path ("\\0"), which the system cannot even look up: a problem."""
    pack = tmp_path / "child.yaml"
    pack.write_text(f'id: child\nextends: ["a\\0b.yaml", "{tmp_path / LONG_NAME}.yaml"]\n')
    with pytest.raises(PackError) as caught:
        load_pack(pack)
    missing = [(p.line, p.column) for p in caught.value.problems if "does not exist" in p.message]
    assert missing == [(2, 11), (2, 24)]
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text('targets:\n  - target: a.example\n    client: {cert: "c\\0", key: "k.pem"}\n')
    with pytest.raises(InventoryError) as caught_inventory:
        load_inventory(inventory)
    assert "cert file 'c\\x00' does not exist" in str(caught_inventory.value)


@pytest.mark.parametrize(("load", "error"), LOADERS, ids=["pack", "inventory", "waivers"])
def test_every_loader_error_is_a_file_problems(load, error):
    """The command line catches each kind by its class: all of them carry problems with positions."""
    assert issubclass(error, FileProblems)


def test_an_alias_bomb_in_a_param_value_is_refused(tlsgate):
    """--param values are YAML too: a bomb there is cut short as in a file (then judged as text), not expanded."""
    bomb = "{" + billion_laughs().strip().replace("\n", ", ") + "}"
    run = tlsgate("rules", "show", "essentials", "--param", f"expiry_warning={bomb}", timeout=60)
    assert run.code == ExitCode.USAGE, run.stderr
    assert "expiry_warning" in run.stderr or "expects" in run.stderr
    assert run.seconds < 20
