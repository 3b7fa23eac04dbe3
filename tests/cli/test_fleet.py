"""Many targets at once: connection limits, the time budget, the JSON Lines journal, resuming, Ctrl-C/SIGTERM
and the progress bar — all through the real command line against loopback servers."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.demo import LoopbackServer
from scanner.exitcodes import ExitCode
from tests.helpers import (
    ANSI,
    ServerFiles,
    python_tls_server,
    run_tlsgate,
    run_tlsgate_on_terminal,
    server_context,
    tlsgate_command,
)


class Accepts:
    """Accept times of silent servers: they take the TCP connection and never answer, so a probe's connection
    holds its slot for a whole timeout."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._lock = threading.Lock()

    def handler(self, conn: socket.socket) -> None:
        with self._lock:
            self.times.append(time.monotonic())
        with contextlib.suppress(OSError):
            while conn.recv(4096):
                pass

    def first_wave(self, window: float = 0.5) -> int:
        """How many connections came within ``window`` seconds of the first one."""
        with self._lock:
            times = sorted(self.times)
        return sum(1 for t in times if t - times[0] < window) if times else 0


@contextlib.contextmanager
def silent_servers(hosts: list[str], accepts: Accepts) -> Iterator[list[str]]:
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(LoopbackServer(accepts.handler, host)) for host in hosts]
        yield [server.target for server in servers]


def popen(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    return subprocess.Popen(
        tlsgate_command(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_for_lines(path: Path, count: int, proc: subprocess.Popen[str], limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        assert proc.poll() is None, "the scan ended before it had written enough lines"
        time.sleep(0.05)
    raise AssertionError(f"{path} never had {count} lines")


def test_per_host_limit_caps_connections_to_one_host() -> None:
    """Six targets on one IP, at most two connections to it at once: two are accepted at first, the next two only
    when the first ones time out (1 s later). Raising the limit lets all six in at once."""
    accepts = Accepts()
    with silent_servers(["127.0.0.3"] * 6, accepts) as targets:
        result = run_tlsgate("scan", *targets, "--timeout", "1", "--per-host", "2", "-q")
    assert result.code == ExitCode.NOT_CHECKED, result.stderr
    assert len(accepts.times) == 6
    assert accepts.first_wave() == 2

    accepts = Accepts()
    with silent_servers(["127.0.0.3"] * 6, accepts) as targets:
        result = run_tlsgate("scan", *targets, "--timeout", "1", "--per-host", "6", "-q")
    assert result.code == ExitCode.NOT_CHECKED, result.stderr
    assert accepts.first_wave() == 6


def test_global_limit_caps_connections_across_hosts() -> None:
    """Three hosts, two targets each, per-host room for all: --max-connections 2 still lets only two in at once."""
    accepts = Accepts()
    hosts = ["127.0.0.4", "127.0.0.5", "127.0.0.6"] * 2
    with silent_servers(hosts, accepts) as targets:
        result = run_tlsgate("scan", *targets, "--timeout", "1", "--max-connections", "2", "-q")
    assert result.code == ExitCode.NOT_CHECKED, result.stderr
    assert len(accepts.times) == 6
    assert accepts.first_wave() == 2


def test_time_budget_reports_unfinished_targets(tls13_server: LoopbackServer, tmp_path: Path) -> None:
    """Targets still waiting on a 30 s read when the 2 s budget runs out are reported as time_budget at once; the
    finished target keeps its verdict."""
    accepts = Accepts()
    report = tmp_path / "r.json"
    with silent_servers(["127.0.0.7"] * 3, accepts) as silent:
        result = run_tlsgate("scan", "--pack", "tls13-only", tls13_server.target, *silent, "--timeout", "30",
                             "--time-budget", "2s", "--json", str(report))  # fmt: skip
    assert result.seconds < 25, "the budget did not cut the 30 s reads short"
    assert result.code == ExitCode.NOT_CHECKED, result.stderr
    targets = {t["target"]: t for t in json.loads(report.read_text())["targets"]}
    assert targets[tls13_server.target]["verdict"] == "pass"
    for name in silent:
        error = targets[name]["facts"]["error"]
        assert error["error_class"] == "time_budget"
        assert "time budget (2 s)" in error["message"]
    assert "time_budget: not finished within the run's time budget" in result.stderr


@pytest.mark.parametrize("text", ["soon", "0s", "-5m", "10 parsecs"])
def test_bad_time_budget_is_a_usage_error(text: str) -> None:
    result = run_tlsgate("scan", "127.0.0.1:1", "--time-budget", text)
    assert result.code == ExitCode.USAGE
    assert result.stderr.strip().splitlines() == [
        f"tlsgate: error: --time-budget {text!r}: expected a positive duration such as 90s, 10m or 1h"
    ]


@pytest.fixture(scope="module")
def fleet(pki: ServerFiles) -> Iterator[list[str]]:
    """Four quick TLS servers: two pass tls13-only, two fail it."""
    tls13 = server_context(pki, ssl.TLSVersion.TLSv1_3)
    tls12 = server_context(pki, ssl.TLSVersion.TLSv1_2)
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(python_tls_server(ctx, f"127.0.0.{8 + i}")) for i, ctx in
                   enumerate([tls13, tls12, tls13, tls12])]  # fmt: skip
        yield [server.target for server in servers]


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_journal_holds_every_target_as_json_lines(fleet: list[str], tmp_path: Path) -> None:
    journal, report = tmp_path / "run.jsonl", tmp_path / "run.json"
    result = run_tlsgate("scan", "--pack", "tls13-only", *fleet, "--format", f"jsonl={journal}", "--json", str(report))
    assert result.code == ExitCode.POLICY_FAILED, result.stderr
    lines = _lines(journal)
    assert sorted(line["target"] for line in lines) == sorted(fleet)
    whole = json.loads(report.read_text())
    by_target = {t["target"]: t for t in whole["targets"]}
    for line in lines:  # each line is the report's entry for that target, judged the same
        assert line == by_target[line["target"]]
    assert f"report: {journal} (JSON Lines, written as targets finished)" in result.stderr + result.stdout
    # the journal reads back: offline evaluation of it gives the same verdicts
    again = run_tlsgate("evaluate", str(journal), "--pack", "tls13-only", "--json", str(tmp_path / "again.json"))
    assert again.code == ExitCode.POLICY_FAILED, again.stderr
    verdicts = {t["target"]: t["verdict"] for t in json.loads((tmp_path / "again.json").read_text())["targets"]}
    assert verdicts == {name: by_target[name]["verdict"] for name in fleet}


def test_journal_to_stdout_streams_lines(fleet: list[str]) -> None:
    result = run_tlsgate("scan", *fleet, "--format", "jsonl")
    assert result.code == ExitCode.POLICY_FAILED, result.stderr
    assert sorted(json.loads(line)["target"] for line in result.stdout.splitlines()) == sorted(fleet)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_writes_reports_for_what_finished(fleet: list[str], tmp_path: Path, signum: int) -> None:
    """Ctrl-C (or SIGTERM) after the quick targets finished: reports hold them, the silent ones are marked
    interrupted, the exit code is 130 — and the JSON report is whole, valid JSON."""
    accepts = Accepts()
    journal, report, junit = tmp_path / "j.jsonl", tmp_path / "r.json", tmp_path / "r.xml"
    with silent_servers(["127.0.0.12"] * 2, accepts) as silent:
        proc = popen("scan", "--pack", "tls13-only", *fleet, *silent, "--timeout", "60", "--format",
                     f"jsonl={journal}", "--json", str(report), "--format", f"junit={junit}", "--format",
                     f"markdown={tmp_path / 'r.md'}",
                     "--per-host", "3", "--time-budget", "10m")  # fmt: skip
        wait_for_lines(journal, len(fleet), proc)
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == ExitCode.INTERRUPTED, stderr
    assert f"tlsgate: interrupted: {len(fleet)} of {len(fleet) + 2} targets had finished" in stderr
    assert "Traceback" not in stderr
    targets = {t["target"]: t for t in json.loads(report.read_text())["targets"]}
    assert set(targets) == {*fleet, *silent}
    assert {targets[name]["verdict"] for name in fleet} == {"pass", "fail"}
    for name in silent:
        assert targets[name]["facts"]["error"]["error_class"] == "interrupted"
    assert sorted(line["target"] for line in _lines(journal)) == sorted(fleet)
    assert junit.read_text().startswith("<?xml")
    options = json.loads(report.read_text())["options"]
    assert options["interrupted"] is True
    assert options["limits"] == {
        "concurrency": 32, "max_connections": 64, "per_host": 3, "time_budget": 600.0, "target_time": None
    }  # fmt: skip
    assert (
        "**Interrupted:** the scan was stopped before every target finished (2 not finished)."
        in (tmp_path / "r.md").read_text()
    )


def test_killed_run_resumes_from_its_journal(fleet: list[str], tmp_path: Path) -> None:
    """SIGKILL keeps every finished line; --resume with the same journal scans only what is missing and
    continues the file, so it ends with one line per target."""
    accepts = Accepts()
    journal = tmp_path / "j.jsonl"
    with silent_servers(["127.0.0.13"], accepts) as silent:
        proc = popen("scan", *fleet, *silent, "--timeout", "60", "--format", f"jsonl={journal}")
        wait_for_lines(journal, len(fleet), proc)
        proc.kill()
        proc.communicate(timeout=30)
    kept = _lines(journal)
    assert sorted(line["target"] for line in kept) == sorted(fleet)
    # The silent server is gone now: resumed, it is refused; the finished targets are not scanned again.
    report = tmp_path / "r.json"
    result = run_tlsgate("scan", *fleet, *silent, "--resume", str(journal), "--format", f"jsonl={journal}", "--json",
                 str(report), "--timeout", "2")  # fmt: skip
    assert result.code == ExitCode.POLICY_FAILED, result.stderr
    lines = _lines(journal)
    assert [line["target"] for line in lines[: len(kept)]] == [line["target"] for line in kept]
    assert sorted(line["target"] for line in lines) == sorted([*fleet, *silent])
    whole = json.loads(report.read_text())
    assert whole["options"]["resumed_from"] == str(journal)
    assert whole["options"]["interrupted"] is False
    targets = {t["target"]: t for t in whole["targets"]}
    assert targets[silent[0]]["facts"]["error"]["error_class"] == "refused"
    for line in kept:  # the same facts, from the journal: not probed again
        assert targets[line["target"]]["facts"]["started_at"] == line["facts"]["started_at"]  # type: ignore[index]


def test_resume_from_a_file_that_is_not_a_journal(fleet: list[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"target": "x"}\nnot json\n')
    result = run_tlsgate("scan", *fleet, "--resume", str(bad))
    assert result.code == ExitCode.USAGE
    assert result.stderr.startswith(f"tlsgate: error: --resume {bad}:")
    assert len(result.stderr.strip().splitlines()) == 1


def test_progress_bar_on_a_terminal_only(fleet: list[str], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"TERM": "xterm"}
    shown = run_tlsgate_on_terminal("scan", "--pack", "tls13-only", *fleet, "--json", str(tmp_path / "r.json"), env=env)
    assert shown.code == ExitCode.POLICY_FAILED
    assert re.search(rf"scanning .* {len(fleet)}/{len(fleet)} pass 2 · fail 2 · not checked 0", shown.stderr), shown
    # CI set: no bar, even on a terminal; --progress forces it back
    shown = run_tlsgate_on_terminal(
        "scan", "--pack", "tls13-only", *fleet, "--json", str(tmp_path / "r.json"), env=env | {"CI": "true"}
    )
    assert shown.code == ExitCode.POLICY_FAILED
    assert "scanning" not in shown.stderr
    shown = run_tlsgate_on_terminal("scan", "--pack", "tls13-only", *fleet, "--progress", env=env | {"CI": "true"})
    assert "scanning" in shown.stderr
    # piped: nothing of it in the captured stderr, unless asked for
    result = run_tlsgate("scan", "--pack", "tls13-only", *fleet)
    assert "scanning" not in result.stderr
    result = run_tlsgate("scan", "--pack", "tls13-only", *fleet, "--progress")
    assert f"{len(fleet)}/{len(fleet)}" in ANSI.sub("", result.stderr)


def test_journal_that_cannot_be_written_is_exit_4_after_the_other_reports(fleet: list[str], tmp_path: Path) -> None:
    """A full disk under the journal does not stop the scan: the other reports are written, then exit 4 says which
    one is missing."""
    report = tmp_path / "r.json"
    result = run_tlsgate("scan", *fleet, "--format", "jsonl=/dev/full", "--json", str(report))
    assert result.code == ExitCode.OUTPUT_FAILED
    assert result.stderr.strip().splitlines()[-1] == (
        "tlsgate: error: cannot write /dev/full: No space left on device (the other reports were written)"
    )
    assert len(json.loads(report.read_text())["targets"]) == len(fleet)
