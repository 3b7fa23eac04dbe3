"""The gate one target at a time (GateRun, as a scan's targets finish): the same as apply_gate of them all."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from scanner.findings import Finding, Status
from scanner.gate import Baseline, Gate, GateRun, apply_gate, load_waivers

TODAY = date(2026, 3, 15)


def _f(rule: str, status: Status = Status.failed) -> Finding:
    return Finding(pack="p", rule=rule, title=rule, severity="high", status=status, message="m")


def test_targets_gated_out_of_order_come_out_as_gated_in_order(tmp_path: Path) -> None:
    """Waivers list their findings in the report's order, whatever order the targets finished in."""
    waivers = tmp_path / "w.yaml"
    waivers.write_text(
        "waivers:\n"
        "  - {rule: 'p/R-1', target: '*', reason: why, owner: ops, expires: 2026-03-20}\n"
        "  - {rule: 'R-*', target: 'b:*', reason: old, owner: ops, expires: 2026-01-01}\n"
        "  - {rule: 'R-9', target: '*', reason: never, owner: ops, expires: 2026-03-20}\n"
    )
    gate = Gate(waivers=load_waivers(waivers), baseline=Baseline("b.json", frozenset({("c:443", "p", "R-2")})))
    targets = [
        (("a:443",), [_f("R-1"), _f("R-2")]),
        (("b:443", "b.example:443"), [_f("R-1"), _f("R-2"), _f("R-3", Status.error)]),
        (("c:443",), [_f("R-2"), _f("R-1", Status.passed)]),
        (("d:443",), [_f("R-1")]),
    ]
    whole, info = apply_gate(gate, targets, TODAY)
    run = GateRun(gate, TODAY)
    judged = {index: run.judge(*targets[index], index) for index in (2, 0, 3, 1)}
    assert [judged[index] for index in range(len(targets))] == whole
    assert run.info() == info
    applied, expired, unused = info.waivers
    assert [r.target for r in applied.findings] == ["a:443", "b:443", "d:443"]
    assert [(r.target, r.rule) for r in expired.findings] == [("b:443", "R-1"), ("b:443", "R-2")]
    assert (applied.status, expired.status, unused.status) == ("applied", "expired", "unused")
    assert whole[2][0].baseline and whole[1][1].status == Status.failed and not whole[1][1].baseline
