"""SIGINT and SIGTERM at any moment: during start-up (one line, exit 130, no traceback), while a scan runs (the
reports hold what finished), and while the reports are written (every report whole or none, and the last line
says which)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest

from scanner.cli.signals import Stops, guard
from scanner.exitcodes import ExitCode
from scanner.render import write_atomic_all
from tests.helpers import tlsgate_command


def start(*args: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    return subprocess.Popen(
        tlsgate_command(*args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )


def wait_until(ready: Callable[[], bool], proc: subprocess.Popen[bytes], limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if ready():
            return
        assert proc.poll() is None, "tlsgate ended before it was ready"
        time.sleep(0.001)
    raise AssertionError("tlsgate never got ready")


def importing(proc: subprocess.Popen[bytes]) -> bool:
    """The process is in the middle of importing the command line's modules: pydantic's extension is loaded
    (about a tenth of the imports' time), which only tlsgate's own imports load, after its first line ran."""
    try:
        return "_pydantic_core" in Path(f"/proc/{proc.pid}/maps").read_text()
    except OSError:
        return False


def test_ctrl_c_during_start_up_is_one_line_and_exit_130(silent_server) -> None:
    """SIGINT while the modules are still being imported: exactly `tlsgate: interrupted` on stderr, exit 130 —
    not a traceback from whichever import it landed in, nor the scan's own interrupted line.

    (Python's own start-up, the first ~30 ms before tlsgate's first line runs, is out of tlsgate's reach: there a
    signal ends Python the way it ends any program. The test waits until tlsgate's imports are under way.)"""
    proc = start("scan", silent_server.target, "--timeout", "60", "--json", "-")
    wait_until(lambda: importing(proc), proc)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert (proc.returncode, stderr.decode(), stdout) == (ExitCode.INTERRUPTED, "tlsgate: interrupted\n", b"")
    assert time.monotonic() - sent < 10


# evaluate, with Ctrl-C arriving while it judges: the KeyboardInterrupt SIGINT raises, raised right there
_CTRL_C_WHILE_JUDGING = """
import sys
import scanner.engine

def interrupted(*args, **kwargs):
    raise KeyboardInterrupt

scanner.engine.judge_saved_facts = interrupted
sys.argv = ["tlsgate", "evaluate", sys.argv[1], "--json", sys.argv[2]]
from scanner.cli import main
main()
"""


def test_ctrl_c_outside_the_reports_guard_still_says_so(tmp_path) -> None:
    """A command interrupted before it writes anything (typer would exit 130 silently): one line, exit 130, and
    no report."""
    facts, report = tmp_path / "facts.jsonl", tmp_path / "r.json"
    facts.write_text("")
    run = subprocess.run(
        [sys.executable, "-c", _CTRL_C_WHILE_JUDGING, str(facts), str(report)],
        capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert (run.returncode, run.stderr, run.stdout) == (ExitCode.INTERRUPTED, "tlsgate: interrupted\n", "")
    assert not report.exists()


@pytest.fixture
def reports(tmp_path: Path) -> dict[str, Path]:
    return {fmt: tmp_path / f"r.{fmt}" for fmt in ("json", "html", "junit", "sarif", "jsonl")}


def report_arguments(reports: dict[str, Path]) -> list[str]:
    return [arg for fmt, path in reports.items() for arg in ("--format", f"{fmt}={path}")]


def whole(fmt: str, path: Path) -> None:
    """The report is complete: it parses as its format."""
    text = path.read_text(encoding="utf-8")
    if fmt in ("json", "sarif"):
        json.loads(text)
    elif fmt == "junit":
        ElementTree.fromstring(text)  # noqa: S314 - our own report
    elif fmt == "html":
        assert text.rstrip().endswith("</html>")
    else:
        for line in text.splitlines():
            json.loads(line)


@pytest.fixture
def scanning(tls13_server, tls12_13_server, silent_server, reports) -> Iterator[subprocess.Popen[bytes]]:
    """A scan of two quick servers and one that never answers, once the quick ones are in the journal."""
    proc = start(
        "scan", "--pack", "tls13-only", tls13_server.target, tls12_13_server.target, silent_server.target,
        "--timeout", "60", *report_arguments(reports),
    )  # fmt: skip
    journal = reports["jsonl"]
    wait_until(lambda: journal.exists() and len(journal.read_text().splitlines()) >= 2, proc)
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def check_whole_or_none(proc: subprocess.Popen[bytes], reports: dict[str, Path]) -> str:
    """Exit 130, one last line saying whether the reports were written, and it is true: each whole, or none there
    (the journal, written as targets finished, holds the two that had); stderr is returned."""
    _, stderr = proc.communicate(timeout=60)
    text = stderr.decode()
    assert proc.returncode == ExitCode.INTERRUPTED, text
    assert "Traceback" not in text
    last = text.splitlines()[-1]
    files = {fmt: path for fmt, path in reports.items() if fmt != "jsonl"}
    if last == "tlsgate: interrupted: no report was written; the JSON Lines journal " + (
        f"({reports['jsonl']}) holds the finished targets"
    ):
        assert [path for path in files.values() if path.exists()] == []
    else:
        assert last == (
            "tlsgate: interrupted: 2 of 3 targets had finished; reports written, the unfinished targets marked "
            "interrupted"
        )
        for fmt, path in files.items():
            whole(fmt, path)
    assert len(reports["jsonl"].read_text().splitlines()) == 2
    whole("jsonl", reports["jsonl"])
    assert sorted(p.name for p in reports["json"].parent.iterdir() if p.name.endswith(".tmp")) == []
    return text


def test_sigterm_then_sigint_still_writes_every_report(scanning, reports) -> None:
    """SIGTERM stops the scan; a SIGINT 100 ms later, while the reports are being finished, waits for them (and
    says so): every report is written whole."""
    scanning.send_signal(signal.SIGTERM)
    time.sleep(0.1)
    scanning.send_signal(signal.SIGINT)
    stderr = check_whole_or_none(scanning, reports)
    assert "tlsgate: writing the reports (interrupt again to quit without them)" in stderr  # it came in time
    assert "reports written" in stderr.splitlines()[-1]


def test_a_third_signal_quits_with_every_report_whole_or_none(scanning, reports) -> None:
    """SIGTERM, then two SIGINTs: the last one quits at once — before the renames (no report), or, if it came
    during them, right after (every report) — never with some reports written and others not."""
    scanning.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    scanning.send_signal(signal.SIGINT)
    time.sleep(0.02)
    scanning.send_signal(signal.SIGINT)
    check_whole_or_none(scanning, reports)


# --- the guard itself, in this process, with real signals at chosen moments ----------------------------------


def test_the_first_signal_stops_the_work_and_the_next_waits(capfd) -> None:
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with guard(Stops()) as stops:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler runs before this is over
        os.kill(os.getpid(), signal.SIGINT)  # waits for the reports: no KeyboardInterrupt
        time.sleep(0.01)
        assert (stops.received, stops.finishing, stops.committed) == (2, True, False)
    assert capfd.readouterr().err == "tlsgate: writing the reports (interrupt again to quit without them)\n"
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before  # back as they were


def _files(tmp_path: Path) -> list[tuple[Path, str]]:
    first, second = tmp_path / "a.json", tmp_path / "b.csv"
    first.write_text("old a")
    second.write_text("old b")
    return [(first, "new a"), (second, "new b")]


def test_quitting_before_the_renames_replaces_no_file(tmp_path, monkeypatch) -> None:
    """The signal that quits comes while the second temp file is written: neither report is replaced, no temp
    file is left."""
    files = _files(tmp_path)
    synced: list[int] = []
    fsync = os.fsync

    def fsync_then_signal(fd: int) -> None:
        fsync(fd)
        synced.append(fd)
        if len(synced) == 2:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)

    with guard(Stops(finishing=True)) as stops:
        os.kill(os.getpid(), signal.SIGINT)  # the first while finishing: it waits
        monkeypatch.setattr(os, "fsync", fsync_then_signal)
        with pytest.raises(KeyboardInterrupt):
            write_atomic_all(files, commit=stops.committing())
    assert not stops.committed
    assert [path.read_text() for path, _ in files] == ["old a", "old b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.csv"]


def test_a_signal_during_the_renames_takes_effect_after_them(tmp_path, monkeypatch) -> None:
    """The signal that quits comes between the two renames: both reports are replaced, then it takes effect."""
    files = _files(tmp_path)
    replace = Path.replace

    def replace_then_signal(self: Path, target: Path) -> Path:
        done = replace(self, target)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # time enough for the handler to run here, between the renames
        return done

    with guard(Stops(finishing=True)) as stops:
        os.kill(os.getpid(), signal.SIGINT)
        monkeypatch.setattr(Path, "replace", replace_then_signal)
        with pytest.raises(KeyboardInterrupt):
            write_atomic_all(files, commit=stops.committing())
    assert stops.committed
    assert [path.read_text() for path, _ in files] == ["new a", "new b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.csv"]
