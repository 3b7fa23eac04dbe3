"""`tlsgate scan --timeout 2` against each hostile server of tests/hostile.py: the expected class in the JSON
report, exit code 3 (could not check), a one-line message, all within 3 x timeout + 5 s; and a mixed run of
well-behaved and hostile targets that loses nothing.

Every behaviour is scanned in one inventory run (a process start costs about a second of CPU on this machine,
and all of them one by one would cost a minute), and a few again each in its own run, as a user types it.
bench/hostile.py runs each behaviour in its own run, many times, and reports the times and classes.
"""

from __future__ import annotations

import contextlib
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scanner.exitcodes import ExitCode
from tests.helpers import Run, ServerFiles, python_tls_server, run_tlsgate, server_context
from tests.hostile import BEHAVIOURS, PREFLIGHT_CLASS, hostile_server, scan_class, starttls_behaviour, starttls_of

TIMEOUT = 2
BOUND = 3 * TIMEOUT + 5

EXPECTED = {name: scan_class(name) for name in PREFLIGHT_CLASS}

# sslyze decides the alert cases, and its adapter (not this probe layer) still quotes sslyze's exception name.
_LIBRARY_TEXT = ("sslyze.", "Error(", "[SSL", "[Errno", "_ssl.c", "Traceback")


@dataclass(frozen=True)
class Scan:
    run: Run
    errors: dict[str, dict[str, Any]]  # each target's facts error in the JSON report, by target name
    lines: dict[str, list[str]]  # the lines of standard error that name each target


def _read(run: Run, report: Path) -> Scan:
    targets = json.loads(report.read_text())["targets"] if report.exists() else []
    errors = {t["target"]: t["facts"]["error"] for t in targets if t["facts"].get("error")}
    lines = {name: [line for line in run.stderr.splitlines() if f" {name}: " in line] for name in errors}
    return Scan(run, errors, lines)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Scan:
    """Every behaviour in one `tlsgate scan --inventory` run, each on its own loopback address (so the per-host
    connection limit does not queue them), named after its behaviour, with its own --starttls."""
    directory = tmp_path_factory.mktemp("hostile")
    inventory, report = directory / "hostile.yaml", directory / "hostile.json"
    with contextlib.ExitStack() as stack:
        entries = []
        for number, behaviour in enumerate(sorted(EXPECTED)):
            server = stack.enter_context(hostile_server(behaviour, interval=0.5, host=f"127.0.0.{20 + number}"))
            starttls = starttls_of(behaviour)
            entry = f"  - {{name: {behaviour}, host: {server.host}, port: {server.port}"
            entries.append(entry + (f", starttls: {starttls}}}" if starttls else "}"))
        inventory.write_text("targets:\n" + "\n".join(entries) + "\n")
        run = run_tlsgate("scan", "--inventory", str(inventory), "--timeout", str(TIMEOUT), "--json", str(report))
    return _read(run, report)


def test_every_behaviour_is_scanned() -> None:
    assert {name for name in EXPECTED if not name.startswith("starttls_")} == set(BEHAVIOURS)


def test_fleet_of_hostile_servers_finishes_within_the_bound(fleet: Scan) -> None:
    """All of them at once: every target classified, exit code 3, the run within one target's bound."""
    assert fleet.run.code == ExitCode.NOT_CHECKED, fleet.run.stderr
    assert set(fleet.errors) == set(EXPECTED)
    assert fleet.run.seconds < BOUND, fleet.run.seconds


@pytest.mark.parametrize("behaviour", sorted(EXPECTED))
def test_scan_classes_a_hostile_server(behaviour: str, fleet: Scan) -> None:
    error = fleet.errors[behaviour]
    assert error["error_class"] == EXPECTED[behaviour], error


@pytest.mark.parametrize("behaviour", sorted(EXPECTED))
def test_scan_error_is_one_line_without_library_names(behaviour: str, fleet: Scan) -> None:
    (line,) = fleet.lines[behaviour]
    assert f"{behaviour}: {EXPECTED[behaviour]}: " in line
    for text in _LIBRARY_TEXT:
        assert text not in line, line


@pytest.mark.parametrize(
    "behaviour",
    ["trickle_handshake", "silent_after_hello", "reset_on_accept", "truncated_hello_close",
     starttls_behaviour("smtp", "trickle"), starttls_behaviour("imap", "endless")],
)  # fmt: skip
def test_single_scan_of_a_hostile_server(behaviour: str, tmp_path: Path) -> None:
    """`tlsgate scan HOST:PORT --timeout 2` as a user types it: the class, exit code 3, one line, in bound."""
    report = tmp_path / "r.json"
    starttls = starttls_of(behaviour)
    with hostile_server(behaviour, interval=0.5) as server:
        run = run_tlsgate(
            "scan", server.target, "--timeout", str(TIMEOUT), "--json", str(report),
            *(("--starttls", starttls) if starttls else ()),
        )  # fmt: skip
        scan = _read(run, report)
        name = server.target
    assert run.code == ExitCode.NOT_CHECKED, run.stderr
    assert scan.errors[name]["error_class"] == EXPECTED[behaviour]
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert run.seconds < BOUND, run.seconds


# --- a mixed run ----------------------------------------------------------------------------------------------

_HOSTILE_MIX = [*sorted(BEHAVIOURS), "silent_after_hello", "trickle_handshake", "reset_on_accept"][:20]


@contextlib.contextmanager
def _servers(pki: ServerFiles) -> Iterator[tuple[list[str], dict[str, str]]]:
    """20 well-behaved TLS 1.2/1.3 servers and 20 hostile ones: (well-behaved targets, hostile target -> class)."""
    with contextlib.ExitStack() as stack:
        good = [
            stack.enter_context(python_tls_server(server_context(pki, ssl.TLSVersion.TLSv1_2))).target
            for _ in range(20)
        ]
        bad = {}
        for number, behaviour in enumerate(_HOSTILE_MIX):
            server = stack.enter_context(hostile_server(behaviour, interval=0.5, host=f"127.0.0.{60 + number}"))
            bad[server.target] = EXPECTED[behaviour]
        yield good, bad


def test_mixed_run_finishes_within_its_budget_and_loses_nothing(pki: ServerFiles, tmp_path: Path) -> None:
    """20 well-behaved and 20 hostile targets in one run: within --time-budget, each well-behaved target's facts
    complete, each hostile one classified, the report written whole, exit code 3, one line per hostile target."""
    report = tmp_path / "mixed.json"
    budget = 30
    with _servers(pki) as (good, bad):
        run = run_tlsgate(
            "scan", *good, *bad, "--timeout", str(TIMEOUT), "--time-budget", f"{budget}s",
            "--json", str(report), "--offline", "--pack", "tls12-plus",
        )  # fmt: skip
    assert run.seconds < budget, run.seconds
    assert run.code == ExitCode.NOT_CHECKED, run.stderr
    targets = {t["target"]: t for t in json.loads(report.read_text())["targets"]}
    assert set(targets) == {*good, *bad}
    for name in good:
        facts = targets[name]["facts"]
        assert facts["status"] == "ok", facts.get("error")
        versions = {p["version"]: p for p in facts["protocols"]}
        assert versions["TLSv1.2"]["status"] == versions["TLSv1.3"]["status"] == "accepted", name
        assert all(p["status"] != "error" for p in facts["protocols"]), name
        assert facts["certificate"]["status"] == "ok", facts["certificate"].get("error")
    for name, error_class in bad.items():
        assert targets[name]["facts"]["error"]["error_class"] == error_class, (name, targets[name]["facts"]["error"])
    for name in bad:
        assert len([line for line in run.stderr.splitlines() if f" {name}: " in line]) == 1, (name, run.stderr)
    for name in good:
        assert f" {name}: " not in run.stderr
