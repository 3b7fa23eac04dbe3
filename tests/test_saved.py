"""The one reader of saved files (scanner/saved.py): a JSON report, facts JSON and a JSON Lines journal, and the one
line it says about each kind of bad file."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scanner.gate import GateFileError, load_baseline
from scanner.pipeline import judge
from scanner.policy.pack import resolve_pack
from scanner.render import jsonl
from scanner.report import Report, ScanOptions
from scanner.saved import SavedFileError, read_json, read_report, read_saved_facts
from scanner.yamlfile import Problem
from tests.helpers import protocol_facts

START = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


def _report() -> Report:
    facts = [protocol_facts("a.test:443", ["TLSv1.2", "TLSv1.3"], START), protocol_facts("b.test:443", [], START)]
    return judge(facts, [resolve_pack("tls13-only")], ScanOptions(timeout=7, packs=["tls13-only"]), START)


def _write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# --- the kinds of file -----------------------------------------------------------------------------------


def test_a_report(tmp_path: Path) -> None:
    report = _report()
    path = _write(tmp_path, "r.json", report.model_dump_json(indent=2))
    assert read_report(path) == report
    saved = read_saved_facts(path)
    assert (saved.kind, saved.facts, saved.timeout) == ("report", tuple(t.facts for t in report.targets), 7.0)


def test_a_report_without_the_decisions_gets_them_when_read(tmp_path: Path) -> None:
    """A report written before reports carried decisions reads as the same report with them derived."""
    report = _report()
    data = json.loads(report.model_dump_json())
    for name in ("verdict", "exit_code"):
        del data[name]
    for target in data["targets"]:
        del target["gate_verdict"]
        for finding in target["findings"]:
            del finding["decision"]
    path = _write(tmp_path, "old.json", json.dumps(data))
    assert read_report(path) == report
    assert read_saved_facts(path).facts == tuple(t.facts for t in report.targets)


def test_facts_alone(tmp_path: Path) -> None:
    report = _report()
    one = _write(tmp_path, "one.json", report.targets[0].facts.model_dump_json())
    assert (read_saved_facts(one).kind, read_saved_facts(one).facts) == ("facts", (report.targets[0].facts,))
    many = _write(tmp_path, "many.json", json.dumps([t.facts.model_dump(mode="json") for t in report.targets]))
    assert read_saved_facts(many).facts == tuple(t.facts for t in report.targets)
    assert read_saved_facts(many).timeout is None


def test_a_journal(tmp_path: Path) -> None:
    """A line per target; a last line cut short (the writer killed mid-line) is left out; one line is a journal."""
    report = _report()
    text = jsonl.render(report)
    saved = read_saved_facts(_write(tmp_path, "r.jsonl", text))
    assert (saved.kind, saved.facts) == ("journal", tuple(t.facts for t in report.targets))
    cut = text[: len(text) - 40]
    assert read_saved_facts(_write(tmp_path, "cut.jsonl", cut)).facts == (report.targets[0].facts,)
    first = text.split("\n")[0] + "\n"
    assert read_saved_facts(_write(tmp_path, "one.json", first)).kind == "journal"


def test_a_journal_written_before_targets_carried_a_gate_verdict(tmp_path: Path) -> None:
    report = _report()
    lines = []
    for target in report.targets:
        data = json.loads(jsonl.line(target))
        del data["gate_verdict"]
        lines.append(json.dumps(data) + "\n")
    saved = read_saved_facts(_write(tmp_path, "old.jsonl", "".join(lines)))
    assert saved.facts == tuple(t.facts for t in report.targets)


# --- bad files: one line each, naming the file -------------------------------------------------------------


def _facts_error(path: Path) -> str:
    with pytest.raises(SavedFileError) as caught:
        read_saved_facts(path)
    return str(caught.value)


class Starts(str):
    """An expected error given by how it starts (the rest is pydantic's wording)."""


LATIN_1 = b'{"x": "\xe9"}'  # not UTF-8

# Each case: the reader, a file (its name, and its content or None for no file) and the one line said about it,
# "{path}" standing for the file's path.
BAD_FILES = [
    (read_report, "absent.json", None, "{path}: cannot read tlsgate JSON report: No such file or directory"),
    (read_report, "latin.json", LATIN_1, "{path}:1:8: tlsgate JSON report is not UTF-8 text: byte 0xe9 cannot be here"),
    (read_report, "broken.json", '{\n  "targets": [,]\n}', "{path}:2:15: not valid JSON: Expecting value"),
    (read_report, "facts.json", '{"target": {}}', Starts("{path}: not a tlsgate JSON report: ")),
    (
        read_report,
        "old.json",
        '{"targets": [{"target": 1}]}',
        "{path}: not a tlsgate JSON report: started_at: Field required (and 8 more problems)",
    ),
    (read_saved_facts, "absent.json", None, "{path}: cannot read JSON report or facts file: No such file or directory"),
    (
        read_saved_facts,
        "latin.json",
        LATIN_1,
        "{path}:1:8: JSON report or facts file is not UTF-8 text: byte 0xe9 cannot be here",
    ),
    (
        read_saved_facts,
        "broken.json",
        "{not json",
        "{path}: not valid JSON: Expecting property name enclosed in double quotes (line 1, column 2)",
    ),
    (
        read_saved_facts,
        "report.json",
        '{"targets": [{"target": 1}]}',
        Starts("{path}: not a valid tlsgate report: "),
    ),
    (
        read_saved_facts,
        "facts.json",
        '{"target": {"input": "x"}}',
        Starts("{path}: not a valid tlsgate facts: target.host: Field required (and "),
    ),
    (read_saved_facts, "empty.json", "[]", "{path}: the list of facts is empty"),
    (
        read_saved_facts,
        "other.json",
        '"facts"',
        "{path}: neither a tlsgate report (JSON or JSON Lines) nor facts (an object with 'target', or a list)",
    ),
]


@pytest.mark.parametrize(
    ("read", "name", "content", "expected"), BAD_FILES, ids=[f"{c[0].__name__}-{c[1]}" for c in BAD_FILES]
)
def test_bad_files(
    tmp_path: Path, read: Callable[[Path], object], name: str, content: str | bytes | None, expected: str
) -> None:
    path = tmp_path / name if content is None else _write(tmp_path, name, content)
    with pytest.raises(SavedFileError) as caught:
        read(path)
    said, wanted = str(caught.value), expected.format(path=path)
    assert said.startswith(wanted) if isinstance(expected, Starts) else said == wanted


def test_a_bad_report_says_where(tmp_path: Path) -> None:
    """The reader's error carries the position, for the gate's list of problems."""
    broken = _write(tmp_path, "broken.json", "{")
    with pytest.raises(SavedFileError) as caught:
        read_json(broken, "tlsgate baseline")
    assert caught.value.problem == Problem(str(broken), 1, 2, "not valid JSON: Expecting property name enclosed in "
                                           "double quotes")  # fmt: skip
    with pytest.raises(GateFileError) as gate_error:
        load_baseline(broken)
    assert gate_error.value.problems == [caught.value.problem]


def test_bad_journals(tmp_path: Path) -> None:
    text = jsonl.render(_report())
    bad_line = _write(tmp_path, "bad.jsonl", text.replace("\n", "\n{}\n", 1))
    assert _facts_error(bad_line).startswith(f"{bad_line}:2: not a tlsgate JSON Lines target: ")
    not_json = _write(tmp_path, "garbage.jsonl", text.replace("\n", "\ngarbage\n", 1))
    assert _facts_error(not_json).startswith(
        f"{not_json}:2: not a tlsgate JSON Lines target: (top level): Invalid JSON"
    )
    nothing = _write(tmp_path, "nothing.jsonl", "\n\n")
    assert _facts_error(nothing) == f"{nothing}: no finished target in this JSON Lines file"
