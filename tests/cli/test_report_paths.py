"""Reports go where the user said, and nowhere else: a symlink stays a link, standard output, FIFOs and character
devices are written through and never renamed over, what no report can go to is refused before anything runs."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scanner.exitcodes import ExitCode
from scanner.facts import Facts, ProtocolSupport, TargetInfo
from scanner.render.files import write_atomic_all
from tests.helpers import run_tlsgate, tlsgate_command

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
NULL, FULL = os.makedev(1, 3), os.makedev(1, 7)  # /dev/null and /dev/full


@pytest.fixture
def facts(tmp_path: Path) -> Path:
    """Saved facts of one target: `evaluate` judges them, no network, so each test writes reports in a second."""
    saved = TargetInfo(input="saved.example:443", host="saved.example", port=443, server_name=None, ip_address=None)
    facts = Facts(
        target=saved,
        started_at=datetime(2026, 12, 1, tzinfo=UTC),
        finished_at=datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC),
        status="ok",
        protocols=[ProtocolSupport(version="TLSv1.2", status="accepted")],
    )
    path = tmp_path / "facts.json"
    path.write_text(facts.model_dump_json())
    return path


def evaluate(facts: Path, *reports: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        tlsgate_command("evaluate", str(facts), "--pack", "tls13-only", *reports),
        capture_output=True, timeout=120, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def report_of(text: bytes | str) -> dict[str, object]:
    """The JSON report, whole: it parses and names the judged target."""
    report = json.loads(text)
    assert [t["target"] for t in report["targets"]] == ["saved.example:443"]
    return report


def device(path: Path, number: int) -> None:
    os.mknod(path, stat.S_IFCHR | 0o666, number)


@pytest.mark.parametrize("link_to", ["/dev/stdout", "/proc/self/fd/1", "/dev/fd/1"])
def test_a_symlink_to_standard_output_prints_the_report_and_stays_a_link(facts, tmp_path, link_to):
    """The report comes out on stdout (the summary on stderr), and the link is still the link it was."""
    link = tmp_path / "out.json"
    link.symlink_to(link_to)
    run = evaluate(facts, "--json", str(link))
    assert run.returncode == ExitCode.POLICY_FAILED, run.stderr
    report_of(run.stdout)
    assert b"FAIL  saved.example:443" in run.stderr
    assert link.is_symlink() and str(link.readlink()) == link_to


def test_standard_output_redirected_to_a_file_is_written_not_replaced(facts, tmp_path):
    """`--json /dev/stdout >> log`: the report is appended to what the log held; the log is the same file."""
    log = tmp_path / "log"
    log.write_text("earlier line\n")
    inode = log.stat().st_ino
    with log.open("ab") as out:
        run = subprocess.run(
            tlsgate_command("evaluate", str(facts), "--pack", "tls13-only", "--json", "/dev/stdout", "-q"),
            stdout=out, stderr=subprocess.PIPE, timeout=120, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    assert run.returncode == ExitCode.POLICY_FAILED, run.stderr
    assert log.stat().st_ino == inode
    earlier, _, rest = log.read_text().partition("\n")
    assert earlier == "earlier line"
    report_of(rest)


def test_two_reports_for_standard_output_are_refused_however_it_is_named(facts, tmp_path):
    link = tmp_path / "out.json"
    link.symlink_to("/dev/stdout")
    run = evaluate(facts, "--json", str(link), "--format", "csv")
    assert run.returncode == ExitCode.USAGE
    assert run.stderr.decode() == "tlsgate: error: only one report can go to standard output, not csv and json\n"


def test_a_symlink_to_a_file_writes_the_file_and_keeps_the_link(facts, tmp_path):
    """The file the link names is replaced (atomically, beside itself: no temp file left in either directory);
    the link stays a link, with the same target."""
    (tmp_path / "links").mkdir()
    (tmp_path / "files").mkdir()
    target = tmp_path / "files" / "report.json"
    target.write_text("the previous report")
    link = tmp_path / "links" / "report.json"
    link.symlink_to("../files/report.json")
    run = evaluate(facts, "--json", str(link))
    assert run.returncode == ExitCode.POLICY_FAILED, run.stderr
    assert link.is_symlink() and str(link.readlink()) == "../files/report.json"
    report_of(target.read_text())
    assert sorted(p.name for p in (tmp_path / "files").iterdir()) == ["report.json"]
    assert sorted(p.name for p in (tmp_path / "links").iterdir()) == ["report.json"]


def test_a_dangling_symlink_gets_its_file(facts, tmp_path):
    link = tmp_path / "report.json"
    link.symlink_to("made-now.json")
    run = evaluate(facts, "--json", str(link))
    assert run.returncode == ExitCode.POLICY_FAILED, run.stderr
    assert link.is_symlink()
    report_of((tmp_path / "made-now.json").read_text())


def test_a_dangling_symlink_into_a_missing_directory_is_a_usage_error(facts, tmp_path):
    link = tmp_path / "report.json"
    link.symlink_to("nowhere/report.json")
    run = evaluate(facts, "--json", str(link))
    assert run.returncode == ExitCode.USAGE
    assert run.stderr.decode() == (
        f"tlsgate: error: cannot write {link}: directory {tmp_path / 'nowhere'} does not exist\n"
    )
    assert link.is_symlink() and not (tmp_path / "nowhere").exists()


@root_only
def test_a_character_device_is_written_through_never_replaced(facts, tmp_path):
    """A /dev/null made here takes the JSON report, another one (through a link) the CSV report, and each is
    still that device."""
    null, other = tmp_path / "null", tmp_path / "other-null"
    device(null, NULL)
    device(other, NULL)
    link = tmp_path / "null-link"
    link.symlink_to(other.name)
    run = evaluate(facts, "--json", str(null), "--format", f"csv={link}")
    assert run.returncode == ExitCode.POLICY_FAILED, run.stderr
    for path in (null, other):
        assert stat.S_ISCHR(path.lstat().st_mode) and path.lstat().st_rdev == NULL
    assert link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["facts.json", "null", "null-link", "other-null"]


@root_only
def test_a_full_device_is_exit_4_and_no_file_is_replaced(facts, tmp_path):
    """A /dev/full made here: exit 4 naming it; the file report asked for with it is left as it was (all reports
    or none), no temp file is left, and the device is still a device."""
    full = tmp_path / "full"
    device(full, FULL)
    csv = tmp_path / "r.csv"
    csv.write_text("the previous report")
    run = evaluate(facts, "--format", f"csv={csv}", "--json", str(full))
    assert run.returncode == ExitCode.OUTPUT_FAILED
    assert run.stderr.decode().splitlines()[-1] == f"tlsgate: error: cannot write {full}: No space left on device"
    assert csv.read_text() == "the previous report"
    assert stat.S_ISCHR(full.stat().st_mode) and full.stat().st_rdev == FULL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["facts.json", "full", "r.csv"]


def test_a_fifo_reader_gets_the_whole_report(facts, tmp_path):
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    run = evaluate(facts, "--json", str(fifo), "--format", f"markdown={tmp_path / 'r.md'}")
    reader.join(30)
    assert run.returncode == ExitCode.POLICY_FAILED, run.stderr
    report_of(b"".join(received))
    assert stat.S_ISFIFO(fifo.stat().st_mode)


@pytest.mark.parametrize("kind", ["directory", "link to a directory", "socket", "block device"])
def test_what_no_report_can_go_to_is_a_usage_error(facts, tmp_path, kind):
    """Refused before anything is judged, with exit 2 and the reason; the path is left as it was."""
    path = tmp_path / "out"
    reason = "it is a directory"
    if kind == "directory":
        path.mkdir()
    elif kind == "link to a directory":
        path.symlink_to(tmp_path)
    elif kind == "socket":
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(str(path))
        reason = "it is a socket (a report goes to a file, FIFO or terminal)"
    else:
        if os.geteuid() != 0:
            pytest.skip("mknod needs root")
        os.mknod(path, stat.S_IFBLK | 0o600, os.makedev(7, 200))  # a loop device number; never opened
        reason = "it is a block device (a report goes to a file, FIFO or terminal)"
    before = path.lstat()
    run = evaluate(facts, "--json", str(path))
    assert run.returncode == ExitCode.USAGE
    assert run.stderr.decode() == f"tlsgate: error: cannot write {path}: {reason}\n"
    after = path.lstat()
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)


def test_the_journal_through_a_symlink_to_standard_output(tls13_server, tmp_path):
    """A scan's JSON Lines journal goes to stdout through a link (the summary to stderr), the JSON report to a file
    through another; both links stay links."""
    journal, report, real = tmp_path / "journal.jsonl", tmp_path / "report.json", tmp_path / "real.json"
    journal.symlink_to("/dev/stdout")
    report.symlink_to(real.name)
    run = run_tlsgate(
        "scan", tls13_server.target, "--pack", "tls13-only", "--format", f"jsonl={journal}", "--json", str(report)
    )
    assert run.code == ExitCode.OK, run.stderr
    assert [json.loads(line)["target"] for line in run.stdout.splitlines()] == [tls13_server.target]
    assert json.loads(real.read_text())["targets"][0]["target"] == tls13_server.target
    assert "PASS" in run.stderr
    assert journal.is_symlink() and report.is_symlink()


def test_a_failing_stream_replaces_no_file(tmp_path):
    """Streams are written after every file's temp file and before any rename: when one fails, no file changes."""
    first = tmp_path / "a.json"
    first.write_text("old a")
    fifo = tmp_path / "closing.fifo"
    os.mkfifo(fifo)

    def read_a_little_and_go() -> None:
        with fifo.open("rb") as reader:
            reader.read(10)

    reader = threading.Thread(target=read_a_little_and_go, daemon=True)
    reader.start()
    with pytest.raises(OSError, match="Broken pipe") as raised:
        write_atomic_all([(first, "new a"), (fifo, "x" * 1_000_000)])  # more than a pipe holds
    reader.join(10)
    assert raised.value.filename == str(fifo)
    assert first.read_text() == "old a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "closing.fifo"]


@root_only
def test_the_journal_into_a_character_device(refused_port, tmp_path):
    """The journal opens a device as it is (no fsync a device refuses, no replacing it): the scan ends as usual."""
    null = tmp_path / "null"
    device(null, NULL)
    run = run_tlsgate("scan", f"127.0.0.1:{refused_port}", "--format", f"jsonl={null}", "--json", "-")
    assert run.code == ExitCode.NOT_CHECKED, run.stderr
    assert json.loads(run.stdout)["targets"][0]["facts"]["error"]["error_class"] == "refused"
    assert stat.S_ISCHR(null.lstat().st_mode) and null.lstat().st_rdev == NULL
