"""The fleet scenario end to end, on the real command line: an inventory of 50 loopback targets over ten loopback
addresses — TLS 1.3-only endpoints that pass, TLS 1.2 + 1.3 endpoints that fail, ports nothing listens on, one
endpoint that accepts TCP and never answers, and one mutual-TLS endpoint scanned with the client certificate the
inventory names — scanned with a progress bar on a terminal; a run stopped midway (SIGINT, SIGTERM) or killed
(SIGKILL) keeps what it finished and is resumed; a baseline from the first run makes the next pass, until a new
violation; an expired waiver is reported and waives nothing.
"""

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
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml
from junitparser import JUnitXml

from scanner.demo import LoopbackServer, tls_handler
from scanner.exitcodes import ExitCode
from scanner.report import report_schema
from tests import pki as test_pki
from tests.helpers import (
    ClientPki,
    Run,
    ServerFiles,
    client_pki,
    run_tlsgate,
    run_tlsgate_on_terminal,
    server_context,
    tlsgate_command,
)

HOSTS = [f"127.0.0.{n}" for n in range(2, 12)]  # all loopback on Linux: ten "servers"
TIMEOUT = "4"  # seconds per connect and read: what the silent endpoint costs; the others answer in milliseconds
PASSWORD_ENV = "FLEET_CLIENT_P12_PASSWORD"  # noqa: S105 - the NAME of the variable, as the inventory holds it
# How many targets of each kind; 50 in all.
KINDS = {"silent": 1, "mtls": 1, "gone": 4, "legacy": 14, "modern": 30}
EXPECTED_VERDICT = {"silent": "error", "mtls": "fail", "gone": "error", "legacy": "fail", "modern": "pass"}
SWITCHED = "modern-03"  # the endpoint that is reconfigured to accept TLS 1.2 too: the new violation
CANARIES = ["modern-01", "modern-02", "legacy-01", "legacy-02"]  # a small tag for the waiver run
REPORT_SCHEMA = report_schema()


class Endpoint:
    """A Python ssl server whose configuration can be changed in place, as an operator would: same address,
    same port, another SSLContext for the next connection."""

    def __init__(self, context: ssl.SSLContext, host: str) -> None:
        self.context = context
        self.server = LoopbackServer(self._handle, host)

    def _handle(self, conn: socket.socket) -> None:
        tls_handler(self.context)(conn)


@dataclass
class Fleet:
    directory: Path
    inventory: Path
    kinds: dict[str, str]  # target name -> kind
    client: ClientPki
    endpoints: dict[str, Endpoint]
    contexts: dict[str, ssl.SSLContext]

    @property
    def workdir(self) -> Path:
        """Where the runs start: not the inventory's directory, whose relative paths must still resolve."""
        return self.directory / "work"

    @property
    def names(self) -> list[str]:
        return list(self.kinds)

    def of_kind(self, *kinds: str) -> list[str]:
        return [name for name, kind in self.kinds.items() if kind in kinds]

    def expected(self, name: str) -> str:
        return EXPECTED_VERDICT[self.kinds[name]]

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("CI", "NO_COLOR")}
        env.update({PASSWORD_ENV: self.client.password, "TERM": "xterm-256color", "COLUMNS": "160"}, **extra)
        return env


def tlsgate(fleet: Fleet, *args: str, timeout: float = 180) -> Run:
    """The real command line in a child process, standard error a pipe (so: no progress bar by default)."""
    return run_tlsgate(*args, cwd=fleet.workdir, env=fleet.env(), timeout=timeout)


def tlsgate_on_a_terminal(fleet: Fleet, *args: str, env: dict[str, str] | None = None, timeout: float = 180) -> Run:
    """The same with standard error on a pseudo-terminal."""
    return run_tlsgate_on_terminal(*args, cwd=fleet.workdir, env=fleet.env(**(env or {})), timeout=timeout)


def _report(path: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    # the schema the models generate (tests/test_schemas.py keeps the published one equal to it)
    jsonschema.validate(report, REPORT_SCHEMA)
    return report


def _lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a JSON Lines file, each a whole TargetReport; fails on a torn or invalid line."""
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n"), f"{path}: the last line is not finished: {text[-200:]!r}"
    lines = [json.loads(raw) for raw in text.splitlines()]
    for line in lines:
        assert set(line) >= {"target", "verdict", "facts", "findings"}, sorted(line)
    return lines


def _complete_lines(path: Path) -> int:
    with contextlib.suppress(FileNotFoundError):
        return path.read_bytes().count(b"\n")
    return 0


def _by_target(targets: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found = {t["target"]: t for t in targets}
    assert len(found) == len(targets), Counter(t["target"] for t in targets).most_common(3)
    return found


def _findings(target: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{f['pack']}/{f['rule']}": f for f in target["findings"]}


def _error_class(target: dict[str, Any]) -> str | None:
    error = target["facts"]["error"]
    return None if error is None else str(error["error_class"])


def _wait_for_lines(proc: subprocess.Popen[Any], path: Path, count: int, timeout: float = 90) -> int:
    """Poll the journal until it has ``count`` finished lines; the run must still be going."""
    deadline = time.monotonic() + timeout
    while (done := _complete_lines(path)) < count:
        assert proc.poll() is None, f"the scan ended early ({proc.returncode}): {proc.communicate()}"
        assert time.monotonic() < deadline, f"only {done} lines after {timeout} s"
        time.sleep(0.05)
    return done


# --- the fleet ----------------------------------------------------------------------------------------------


def _server_files(directory: Path) -> ServerFiles:
    """One chain (root, intermediate, EC P-256 leaf with serverAuth) for every address of the fleet."""
    chain = test_pki.hierarchy("fleet", sans=("localhost", *HOSTS))
    cert, key = chain.leaf.write(directory, "server", chain=[chain.intermediate])
    root = directory / "root.pem"
    root.write_bytes(chain.root.pem)
    return ServerFiles(cert=cert, key=key, ca=root)


def _refused_port(host: str, stack: contextlib.ExitStack) -> int:
    """A port on ``host`` that refuses connections: bound (so nobody else gets it) but not listening."""
    sock = stack.enter_context(socket.socket())
    sock.bind((host, 0))
    return int(sock.getsockname()[1])


def _start(server: LoopbackServer, started: list[LoopbackServer]) -> int:
    started.append(server.__enter__())
    return server.port


def _stop_all(servers: list[LoopbackServer]) -> None:
    """Stop the servers at once: one after another, each would wait up to 0.2 s for its accept loop to notice."""
    stopping = [threading.Thread(target=server.__exit__, args=(None, None, None)) for server in servers]
    for thread in stopping:
        thread.start()
    for thread in stopping:
        thread.join()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    directory = tmp_path_factory.mktemp("fleet")
    files = _server_files(directory / "server")
    client = client_pki(directory / "client")
    modern = server_context(files, ssl.TLSVersion.TLSv1_3)
    legacy = server_context(files, ssl.TLSVersion.TLSv1_2)
    mtls = server_context(files, ssl.TLSVersion.TLSv1_3)
    mtls.verify_mode = ssl.CERT_REQUIRED
    mtls.load_verify_locations(client.ca)
    contexts = {"modern": modern, "legacy": legacy, "mtls": mtls}

    release = threading.Event()

    def hold(conn: socket.socket) -> None:
        release.wait(300)

    kinds: dict[str, str] = {}
    for kind, count in KINDS.items():
        for number in range(1, count + 1):
            kinds[f"{kind}-{number:02d}"] = kind
    endpoints: dict[str, Endpoint] = {}
    entries: list[dict[str, Any]] = []
    partners: list[dict[str, Any]] = []
    servers: list[LoopbackServer] = []
    with contextlib.ExitStack() as stack:
        stack.callback(_stop_all, servers)
        stack.callback(release.set)
        for index, (name, kind) in enumerate(kinds.items()):
            host = HOSTS[index % len(HOSTS)]
            if kind == "gone":
                port = _refused_port(host, stack)
            elif kind == "silent":
                port = _start(LoopbackServer(hold, host), servers)
            else:
                endpoints[name] = Endpoint(contexts[kind], host)
                port = _start(endpoints[name].server, servers)
            entry: dict[str, Any] = {"name": name, "host": host, "port": port}
            if kind == "mtls":
                partners.append(entry)
                continue
            entry["tags"] = ["unreachable" if kind == "silent" else kind]
            if name in CANARIES:
                entry["tags"].append("canary")
            entries.append(entry)
        (directory / "work").mkdir()
        inventory = directory / "inventory.yaml"
        document = {
            "defaults": {"packs": ["tls13-only"], "tags": ["fleet"]},
            "groups": {
                "partners": {
                    "packs": ["partner-mtls"],
                    # relative to the inventory; the password is named, never written
                    "client": {"p12": "client/client.p12", "password_env": PASSWORD_ENV},
                    "targets": partners,
                }
            },
            "targets": entries,
        }
        inventory.write_text(
            "# 50 loopback endpoints: modern-* TLS 1.3 only, legacy-* TLS 1.2 + 1.3, gone-* refused,\n"
            "# silent-01 never answers, mtls-01 wants a client certificate\n"
            + yaml.safe_dump(document, sort_keys=False),
            encoding="utf-8",
        )
        yield Fleet(directory, inventory, kinds, client, endpoints, contexts)


@pytest.fixture(scope="module")
def first_run(fleet: Fleet) -> tuple[Run, Path, Path]:
    """Run 1: the whole inventory, standard error on a terminal, so the progress bar is on by default."""
    report, journal = fleet.directory / "first.json", fleet.directory / "first.jsonl"
    run = tlsgate_on_a_terminal(
        fleet, "scan", "--inventory", str(fleet.inventory), "--timeout", TIMEOUT,
        "--json", str(report), "--format", f"jsonl={journal}",
    )  # fmt: skip
    return run, report, journal


# --- the tests ----------------------------------------------------------------------------------------------


def test_first_run_scans_the_whole_inventory_with_a_progress_bar(
    fleet: Fleet, first_run: tuple[Run, Path, Path]
) -> None:
    """50 targets: exit 1 (failures outrank the unreachable), every verdict as the fleet was built, the mTLS
    endpoint scanned with the inventory's PKCS#12, the unreachable ones classed, the bar drawn on the terminal, and
    the JSON Lines journal holding the same 50 results."""
    run, report_path, journal = first_run
    assert run.code == ExitCode.POLICY_FAILED, run.stdout + run.stderr
    report = _report(report_path)
    targets = _by_target(report["targets"])
    assert sorted(targets) == sorted(fleet.names)
    assert {name: t["verdict"] for name, t in targets.items()} == {name: fleet.expected(name) for name in fleet.names}

    for name in fleet.of_kind("modern"):
        assert [p["version"] for p in targets[name]["facts"]["protocols"] if p["status"] == "accepted"] == [
            "TLSv1.3"
        ], name
    for name in fleet.of_kind("legacy"):
        failed = [key for key, f in _findings(targets[name]).items() if f["status"] == "fail"]
        assert failed == ["tls13-only/TLS13ONLY-001"], (name, failed)

    # unreachable: refused ports, and the endpoint that never answers a ClientHello
    assert {name: _error_class(targets[name]) for name in fleet.of_kind("gone", "silent")} == {
        **dict.fromkeys(fleet.of_kind("gone"), "refused"),
        "silent-01": "timeout",
    }

    # the mTLS endpoint: judged by its own pack, scanned with the client certificate of its inventory group
    mtls = targets["mtls-01"]
    assert {f["pack"] for f in mtls["findings"]} == {"partner-mtls"}
    facts = mtls["facts"]
    assert facts["status"] == "ok", facts["error"]
    client_auth = facts["client_auth"]
    assert client_auth["status"] == "ok", client_auth
    assert client_auth["requirement"]["value"] == "required"
    assert client_auth["ca_names"]["value"] == []  # Python's ssl module cannot set a client CA list to send
    assert client_auth["throwaway_certificate_accepted"]["value"] is False
    assert client_auth["provided_certificate_accepted"]["value"] is True
    assert [p["version"] for p in facts["protocols"] if p["status"] == "accepted"] == ["TLSv1.3"]
    statuses = {key: f["status"] for key, f in _findings(mtls).items()}
    for rule in ("PMTLS-001", "PMTLS-002", "PMTLS-014", "PMTLS-015"):
        assert statuses[f"partner-mtls/{rule}"] == "pass", statuses
    assert statuses["partner-mtls/PMTLS-016"] == "fail"  # a test CA is not in the Mozilla root store

    # the progress bar: drawn on the terminal (by default), counting up to 50 of 50
    assert "scanning" in run.stderr, run.stderr[-2000:]
    counts = {int(m.group(1)) for m in re.finditer(r"\b(\d+)/50\b", run.stderr)}
    assert 50 in counts and len(counts) > 2, sorted(counts)
    assert "pass 30 · fail 15 · not checked 5" in run.stderr
    for name in fleet.of_kind("gone"):
        assert f"tlsgate: {name}: refused:" in run.stderr

    # the journal: one line per target as each finished, the same results as the report
    lines = _lines(journal)
    assert len(lines) == 50
    assert {name: t["verdict"] for name, t in _by_target(lines).items()} == {
        name: t["verdict"] for name, t in targets.items()
    }

    # the PKCS#12 password is in no report, and nowhere on the terminal
    for text in (report_path.read_text(), journal.read_text(), run.stdout, run.stderr):
        assert fleet.client.password not in text


def test_no_progress_bar_off_a_terminal_in_ci_or_when_refused(fleet: Fleet) -> None:
    """The bar is the terminal's default only: none into a pipe, none on a terminal with CI set or --no-progress;
    the run is the same."""
    selected = ("scan", "--inventory", str(fleet.inventory), "--tag", "canary", "--timeout", TIMEOUT)
    for run in (
        tlsgate(fleet, *selected),
        tlsgate_on_a_terminal(fleet, *selected, env={"CI": "true"}),
        tlsgate_on_a_terminal(fleet, *selected, "--no-progress"),
    ):
        assert run.code == ExitCode.POLICY_FAILED, run.stdout + run.stderr
        assert "scanning" not in run.stderr and "/4" not in run.stderr, run.stderr
        assert "FAIL  legacy-01" in run.stdout


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_run_stopped_midway_writes_every_report(fleet: Fleet, tmp_path: Path, stop: signal.Signals) -> None:
    """Stopped after 20 targets with the silent one still in progress: exit 130, the JSON report has all 50 —
    the finished ones with their verdicts, the others interrupted — and the journal exactly the finished ones."""
    journal, report_path, junit = tmp_path / "run.jsonl", tmp_path / "run.json", tmp_path / "run.xml"
    proc = subprocess.Popen(
        tlsgate_command("scan", "--inventory", str(fleet.inventory), "--timeout", "60", "--concurrency", "3",
                 "--format", f"jsonl={journal}", "--json", str(report_path), "--format", f"junit={junit}"),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=fleet.workdir, env=fleet.env(),
    )  # fmt: skip
    try:
        _wait_for_lines(proc, journal, 20)
        proc.send_signal(stop)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == ExitCode.INTERRUPTED, stdout + stderr

    lines = _lines(journal)
    finished = _by_target(lines)
    report = _report(report_path)
    targets = _by_target(report["targets"])
    assert sorted(targets) == sorted(fleet.names)
    interrupted = sorted(name for name, t in targets.items() if _error_class(t) == "interrupted")
    assert "silent-01" in interrupted  # still waiting for its answer, 60 s away
    assert 20 <= len(finished) < 50
    assert sorted(finished) == sorted(set(fleet.names) - set(interrupted))
    for name, line in finished.items():
        assert targets[name]["verdict"] == line["verdict"] == fleet.expected(name), name
        assert targets[name]["facts"] == line["facts"], name
    for name in interrupted:
        assert targets[name]["verdict"] == "error"
        assert {f["status"] for f in targets[name]["findings"]} == {"error"}
    suites = {suite.name: suite for suite in JUnitXml.fromfile(str(junit))}
    assert sorted(suites) == sorted(fleet.names)  # the reports written at the end hold every target too
    assert [line for line in stderr.splitlines() if line.startswith("tlsgate: interrupted:")] == [
        f"tlsgate: interrupted: {len(finished)} of 50 targets had finished; reports written, "
        "the unfinished targets marked interrupted"
    ]
    assert "Traceback" not in stderr


def test_killed_run_keeps_its_lines_and_is_resumed(fleet: Fleet, tmp_path: Path) -> None:
    """SIGKILL keeps every finished line; --resume with the same journal scans only the rest and continues the
    file (50 lines, each target once); evaluate reads the journal offline."""
    journal, report_path = tmp_path / "run.jsonl", tmp_path / "resumed.json"
    proc = subprocess.Popen(
        tlsgate_command("scan", "--inventory", str(fleet.inventory), "--timeout", "60", "--concurrency", "3",
                 "--format", f"jsonl={journal}"),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=fleet.workdir,
        env=fleet.env(),
    )  # fmt: skip
    try:
        _wait_for_lines(proc, journal, 20)
        proc.kill()
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    kept = _by_target(_lines(journal))  # complete lines only: a line is written whole or not at all
    assert len(kept) >= 20 and "silent-01" not in kept
    for name, line in kept.items():
        assert line["verdict"] == fleet.expected(name), name
    before = journal.read_text(encoding="utf-8")

    run = tlsgate(
        fleet, "scan", "--inventory", str(fleet.inventory), "--timeout", TIMEOUT,
        "--resume", str(journal), "--format", f"jsonl={journal}", "--json", str(report_path),
    )  # fmt: skip
    assert run.code == ExitCode.POLICY_FAILED, run.stdout + run.stderr
    after = journal.read_text(encoding="utf-8")
    assert after.startswith(before)  # continued, not rewritten
    lines = _lines(journal)
    assert len(lines) == 50
    resumed = _by_target(lines)  # each target once
    assert sorted(resumed) == sorted(fleet.names)
    assert {name: line["verdict"] for name, line in resumed.items()} == {n: fleet.expected(n) for n in fleet.names}
    report = _report(report_path)
    targets = _by_target(report["targets"])
    # the kept targets were not probed again: their facts are those of the killed run, timestamps included
    for name, line in kept.items():
        assert targets[name]["facts"] == line["facts"], name
    assert _error_class(targets["silent-01"]) == "timeout"

    judged = tmp_path / "judged.json"
    run = tlsgate(fleet, "evaluate", str(journal), "--pack", "tls13-only", "--json", str(judged))
    assert run.code == ExitCode.POLICY_FAILED, run.stdout + run.stderr
    evaluated = _by_target(_report(judged)["targets"])
    assert sorted(evaluated) == sorted(fleet.names)
    verdicts = Counter(t["verdict"] for t in evaluated.values())
    # tls13-only on all: the mTLS endpoint (TLS 1.3 only) now passes
    assert verdicts == Counter({"pass": 31, "fail": 14, "error": 5}), verdicts


def test_resume_continues_a_journal_cut_mid_line(fleet: Fleet, tmp_path: Path) -> None:
    """A journal whose last line was cut short (the writer killed mid-line; the reader leaves such a line out)
    is continued by --resume into whole lines, one per target, that evaluate can read again."""
    journal = tmp_path / "cut.jsonl"
    selected = ("scan", "--inventory", str(fleet.inventory), "--tag", "canary", "--timeout", TIMEOUT)
    assert tlsgate(fleet, *selected, "--format", f"jsonl={journal}").code == ExitCode.POLICY_FAILED
    whole = journal.read_text(encoding="utf-8").splitlines(keepends=True)
    assert len(whole) == len(CANARIES)
    journal.write_text("".join(whole[:-1]) + whole[-1][: len(whole[-1]) // 2], encoding="utf-8")
    run = tlsgate(fleet, *selected, "--resume", str(journal), "--format", f"jsonl={journal}")
    assert run.code == ExitCode.POLICY_FAILED, run.stdout + run.stderr
    assert sorted(_by_target(_lines(journal))) == sorted(CANARIES)
    run = tlsgate(fleet, "evaluate", str(journal), "--pack", "tls13-only")
    assert run.code == ExitCode.POLICY_FAILED, run.stdout + run.stderr


def test_baseline_passes_the_second_run_and_a_new_violation_fails_the_third(
    fleet: Fleet, first_run: tuple[Run, Path, Path], tmp_path: Path
) -> None:
    """A baseline from run 1; run 2 over the reachable targets passes; one endpoint then also accepts TLS 1.2 and
    run 3 fails on that failure alone."""
    _, first, _ = first_run
    baseline = tmp_path / "baseline.json"
    made = tlsgate(fleet, "baseline", "create", str(first), "-o", str(baseline))
    assert made.code == ExitCode.OK, made.stdout + made.stderr
    entries = json.loads(baseline.read_text())["findings"]
    failing = sorted(
        (t["target"], f["pack"], f["rule"])
        for t in _report(first)["targets"]
        for f in t["findings"]
        if f["status"] == "fail"
    )
    assert sorted((e["target"], e["pack"], e["rule"]) for e in entries) == failing
    assert {target for target, _, _ in failing} == set(fleet.of_kind("legacy", "mtls"))
    for name in fleet.of_kind("gone", "silent"):  # nothing of theirs could be baselined
        assert f"{name} was not scanned; any failure it has later is new" in made.stderr

    reachable = ("--tag", "modern", "--tag", "legacy", "--tag", "partners")
    second = tmp_path / "second.json"
    run = tlsgate(fleet, "scan", "--inventory", str(fleet.inventory), *reachable, "--timeout", TIMEOUT,
                  "--baseline", str(baseline), "--json", str(second))  # fmt: skip
    assert run.code == ExitCode.OK, run.stdout + run.stderr
    assert f"gate: 0 failures counted; not counted: {len(failing)} in the baseline" in run.stdout
    targets = _by_target(_report(second)["targets"])
    assert sorted(targets) == sorted(fleet.of_kind("modern", "legacy", "mtls"))
    assert targets["legacy-01"]["verdict"] == "fail"  # still out of policy, and the report says so
    assert all(f["baseline"] for t in targets.values() for f in t["findings"] if f["status"] == "fail")

    endpoint = fleet.endpoints[SWITCHED]
    endpoint.context = fleet.contexts["legacy"]  # reconfigured in place: now TLS 1.2 as well
    try:
        third = tmp_path / "third.json"
        run = tlsgate(fleet, "scan", "--inventory", str(fleet.inventory), *reachable, "--timeout", TIMEOUT,
                      "--baseline", str(baseline), "--json", str(third))  # fmt: skip
    finally:
        endpoint.context = fleet.contexts["modern"]
    assert run.code == ExitCode.POLICY_FAILED, run.stdout + run.stderr
    assert f"gate: 1 failure counted; not counted: {len(failing)} in the baseline" in run.stdout
    counted = [
        (t["target"], f["pack"], f["rule"])
        for t in _report(third)["targets"]
        for f in t["findings"]
        if f["status"] == "fail" and not f["baseline"]
    ]
    assert counted == [(SWITCHED, "tls13-only", "TLS13ONLY-001")]


def test_expired_waiver_is_reported_and_its_failure_counts_again(fleet: Fleet, tmp_path: Path) -> None:
    """Two waivers on the canary targets: the one in force waives legacy-01, the expired one (legacy-02) is
    warned about, listed as expired, and its failure fails the run."""
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(
        "waivers:\n"
        "  - rule: tls13-only/TLS13ONLY-001\n"
        "    target: legacy-01\n"
        "    reason: Vendor appliance; TLS 1.3 firmware is due in Q3 (CHG-1234)\n"
        "    owner: platform-team\n"
        "    expires: 2999-12-31\n"
        "  - rule: TLS13ONLY-001\n"
        "    target: legacy-02\n"
        "    reason: Migration to the new load balancer\n"
        "    owner: edge-team\n"
        "    expires: 2021-03-31\n",
        encoding="utf-8",
    )
    out = tmp_path / "waived.json"
    run = tlsgate(fleet, "scan", "--inventory", str(fleet.inventory), "--tag", "canary", "--timeout", TIMEOUT,
                  "--waivers", str(waivers), "--json", str(out))  # fmt: skip
    assert run.code == ExitCode.POLICY_FAILED, run.stdout + run.stderr
    assert (
        f"tlsgate: warning: waiver {waivers}:7 (TLS13ONLY-001 on legacy-02, owner edge-team) expired on 2021-03-31 "
        "and no longer applies; 1 finding it covered fails again"
    ) in run.stderr
    assert "gate: 1 failure counted; not counted: 1 waived" in run.stdout
    report = _report(out)
    targets = _by_target(report["targets"])
    assert sorted(targets) == sorted(CANARIES)
    assert {name: t["verdict"] for name, t in targets.items()} == {
        "modern-01": "pass", "modern-02": "pass", "legacy-01": "pass", "legacy-02": "fail",
    }  # fmt: skip
    assert _findings(targets["legacy-01"])["tls13-only/TLS13ONLY-001"]["status"] == "waived"
    assert _findings(targets["legacy-02"])["tls13-only/TLS13ONLY-001"]["status"] == "fail"
    uses = {u["target"]: u for u in report["gate"]["waivers"]}
    assert uses["legacy-01"]["status"] == "applied"
    assert uses["legacy-02"]["status"] == "expired"
    assert uses["legacy-02"]["findings"] == [{"target": "legacy-02", "pack": "tls13-only", "rule": "TLS13ONLY-001"}]
