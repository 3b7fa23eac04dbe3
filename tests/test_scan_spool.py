"""A scan keeps its finished targets in a spool, gated once as they finish, with the same report as judging them
all at once (real loopback servers; targets finish in whatever order they do)."""

from __future__ import annotations

import ssl
from contextlib import ExitStack
from datetime import date

from scanner import engine
from scanner.gate import Gate, Waiver, WaiverFile
from scanner.pipeline import judge
from scanner.policy.pack import resolve_pack
from scanner.probe.options import ProbeOptions
from scanner.report import TargetReport
from scanner.targets import parse_target
from scanner.targetspool import TargetSpool
from tests.helpers import free_port, python_tls_server, server_context


class Heard:
    def __init__(self) -> None:
        self.targets: list[TargetReport] = []

    def planned(self, total: int, kept: int = 0) -> None:
        pass

    def finished(self, result: TargetReport) -> None:
        self.targets.append(result)


def _waiver(rule: str, expires: date, line: int) -> Waiver:
    return Waiver(rule, "127.0.0.1:*", "accepted for the test", "tests", expires, f"waivers.yaml:{line}")


def test_a_scan_is_spooled_in_target_order_and_gated_once_as_judging_all_at_once(pki):
    waivers = WaiverFile(
        "waivers.yaml",
        (
            _waiver("tls13-only/*", date(2000, 1, 1), 2),  # expired: lists the failures it no longer waives
            _waiver("tls13-only/*", date(2999, 1, 1), 8),  # in force: waives them
            _waiver("no-such-pack/*", date(2999, 1, 1), 14),  # unused
        ),
    )
    gate = Gate(fail_on="low", waivers=waivers)
    packs = [resolve_pack("tls13-only")]
    heard = Heard()
    with ExitStack() as stack:
        servers = [
            stack.enter_context(python_tls_server(server_context(pki, version)))
            for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2)
        ]
        labels = [s.target for s in servers] + [f"127.0.0.1:{free_port()}"]  # the last one refuses
        request = engine.ScanRequest(
            targets=[parse_target(label) for label in labels], packs=packs, probe=ProbeOptions(timeout=3), gate=gate
        )
        report = engine.scan(request, heard).report
    assert isinstance(report.targets, TargetSpool)
    assert [t.target for t in report.targets] == labels
    # the listener heard each target once, as the report keeps it: gated once
    assert sorted(heard.targets, key=lambda t: labels.index(t.target)) == list(report.targets)
    again = judge([t.facts for t in report.targets], packs, report.options, report.started_at, gate)
    assert list(again.targets) == list(report.targets)
    assert (again.gate, again.summary, again.verdict, again.exit_code) == (
        report.gate,
        report.summary,
        report.verdict,
        report.exit_code,
    )
    expired, applied, unused = report.gate.waivers
    assert (expired.status, applied.status, unused.status) == ("expired", "applied", "unused")
    waived = [labels[0], labels[2]]  # in the targets' order, whichever finished first
    assert [ref.target for ref in applied.findings] == [ref.target for ref in expired.findings]
    assert list(dict.fromkeys(ref.target for ref in applied.findings)) == waived
    assert again.model_copy(update={"finished_at": report.finished_at}) == report
