"""The gate's decisions as the report records them: on each finding, each target's gate verdict, and the run's
verdict and exit code — decided once, when the run is judged, and equal to what the exit-code rule says."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from scanner.exitcodes import ExitCode, gate_exit_code
from scanner.facts import Facts
from scanner.findings import Decision, Finding, Severity, Status, WaiverRecord
from scanner.gate import Baseline, Gate, decide, finding_gate_state, load_waivers
from scanner.pipeline import gated, judge
from scanner.policy.engine import evaluate
from scanner.policy.pack import resolve_pack
from scanner.report import Report, ScanOptions
from tests.helpers import protocol_facts

START = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
BASE, WAIVED, NEW, DOWN, GOOD = "base.test:443", "waived.test:443", "new.test:443", "down.test:443", "good.test:443"
HIGH = "TLS13ONLY-001"  # high: fails wherever TLS 1.2 is accepted
LOW = "OLD-001"  # low: fails wherever TLS 1.1 is accepted
INCONCLUSIVE = "OLD-002"  # low: behaviours are never in these facts
OLD_PACK = """\
id: old-protocol
title: Old protocols
version: "1"
rules:
  - {id: OLD-001, title: No TLS 1.1, severity: low, fact: protocols, none: {version: TLSv1.1, status: accepted}}
  - {id: OLD-002, title: Stapling, severity: low, fact: behaviours.ocsp_stapling, equals: true}
"""
WAIVERS = """\
waivers:
  - {rule: tls13-only/TLS13ONLY-001, target: "waived.test:*", reason: appliance, owner: ops, expires: 2026-09-30}
"""
BOTH, WITH_OLD = ["TLSv1.2", "TLSv1.3"], ["TLSv1.1", "TLSv1.2", "TLSv1.3"]


def _facts(target: str, accepted: list[str], scanned: bool = True) -> Facts:
    return protocol_facts(target, accepted, START, scanned=scanned)


def _gate(tmp_path: Path, fail_on: Severity = "medium") -> Gate:
    (tmp_path / "waivers.yaml").write_text(WAIVERS)
    baseline = Baseline("baseline.json", frozenset({(BASE, "tls13-only", HIGH)}))
    return Gate(fail_on=fail_on, waivers=load_waivers(tmp_path / "waivers.yaml"), baseline=baseline)


def _judge(tmp_path: Path, facts: list[Facts], gate: Gate | None) -> Report:
    (tmp_path / "old.yaml").write_text(OLD_PACK)
    packs = [resolve_pack("tls13-only"), resolve_pack(str(tmp_path / "old.yaml"))]
    return judge(facts, packs, ScanOptions(timeout=1, packs=[p.id for p in packs]), START, gate)


def _decision(report: Report, target: str, rule: str) -> Decision | None:
    (found,) = [f for t in report.targets if t.target == target for f in t.findings if f.rule == rule]
    return found.decision


def test_each_gate_state_is_written_on_its_finding(tmp_path: Path) -> None:
    """counted, baseline, waived (with its waiver), below --fail-on; none for a pass or a rule that does not apply;
    every rule of a target that was not scanned counts, whatever its severity."""
    facts = [_facts(BASE, BOTH), _facts(WAIVED, BOTH), _facts(NEW, WITH_OLD), _facts(DOWN, [], scanned=False)]
    report = _judge(tmp_path, facts, _gate(tmp_path))
    assert _decision(report, NEW, HIGH) == Decision(state="counted")
    assert _decision(report, BASE, HIGH) == Decision(state="baseline")
    assert _decision(report, NEW, LOW) == Decision(state="below_fail_on")
    assert _decision(report, NEW, INCONCLUSIVE) == Decision(state="below_fail_on")
    assert _decision(report, DOWN, LOW) == Decision(state="counted")
    assert _decision(report, BASE, "TLS13ONLY-002") is None  # passed: TLS 1.3 is accepted
    assert _decision(report, BASE, LOW) is None  # passed
    waived = _decision(report, WAIVED, HIGH)
    assert waived is not None and waived.state == "waived"
    assert waived.waiver == WaiverRecord(
        rule="tls13-only/TLS13ONLY-001",
        target="waived.test:*",
        reason="appliance",
        owner="ops",
        expires=datetime(2026, 9, 30).date(),
        source=f"{tmp_path / 'waivers.yaml'}:2",
    )
    (finding,) = [f for f in report.targets[1].findings if f.rule == HIGH]
    assert finding.evidence.waiver == waived.waiver  # the evidence keeps its waiver, as before


def test_every_decision_is_the_exit_code_rule_asked_of_the_finding(tmp_path: Path) -> None:
    """The decision written is what finding_gate_state says for the report's --fail-on and the target's scan."""
    facts = [_facts(BASE, BOTH), _facts(WAIVED, BOTH), _facts(NEW, WITH_OLD), _facts(DOWN, [], scanned=False)]
    report = _judge(tmp_path, facts, _gate(tmp_path, "high"))
    for target in report.targets:
        for f in target.findings:
            state = finding_gate_state(f, "high", target.facts.status == "ok")
            assert (f.decision.state if f.decision else None) == state


@pytest.mark.parametrize(
    ("facts", "fail_on", "verdicts", "gate_verdicts", "run"),
    [
        ([_facts(GOOD, ["TLSv1.3"])], "info", ["error"], ["error"], ("error", 3)),  # stapling is inconclusive
        ([_facts(GOOD, ["TLSv1.3"])], "medium", ["error"], ["pass"], ("pass", 0)),  # ... and below --fail-on
        ([_facts(NEW, WITH_OLD), _facts(DOWN, [], False)], "medium", ["fail", "error"], ["fail", "error"], ("fail", 1)),
        ([_facts(DOWN, [], False)], "critical", ["error"], ["error"], ("error", 3)),  # not scanned always counts
        ([_facts(BASE, BOTH), _facts(WAIVED, BOTH)], "medium", ["fail", "error"], ["pass", "pass"], ("pass", 0)),
        ([_facts(NEW, WITH_OLD)], "critical", ["fail"], ["pass"], ("pass", 0)),
        ([], "info", [], [], ("pass", 0)),
    ],
)
def test_the_report_carries_its_verdict_and_exit_code(
    tmp_path: Path,
    facts: list[Facts],
    fail_on: Severity,
    verdicts: list[str],
    gate_verdicts: list[str],
    run: tuple[str, int],
) -> None:
    """Each target's verdict (what failed) and gate verdict (what counts), and the run's verdict and exit code,
    which is the exit code the findings give."""
    report = _judge(tmp_path, facts, _gate(tmp_path, fail_on))
    assert [t.verdict for t in report.targets] == verdicts
    assert [t.gate_verdict for t in report.targets] == gate_verdicts
    assert (report.verdict, report.exit_code) == run
    scanned = [(t.facts.status == "ok", t.findings) for t in report.targets]
    assert report.exit_code == gate_exit_code(scanned, fail_on)
    assert ExitCode(report.exit_code) in (ExitCode.OK, ExitCode.POLICY_FAILED, ExitCode.NOT_CHECKED)


def test_without_a_gate_every_failure_counts(tmp_path: Path) -> None:
    """No gate options: --fail-on info, so every failure is counted and fails the run."""
    report = _judge(tmp_path, [_facts(BASE, BOTH)], None)
    assert _decision(report, BASE, HIGH) == Decision(state="counted")
    assert (report.targets[0].gate_verdict, report.verdict, report.exit_code) == ("fail", "fail", 1)


def test_a_streamed_target_carries_the_same_decisions(tmp_path: Path) -> None:
    """A target written to the JSON Lines journal as it finishes is decided as the final report decides it."""
    gate = _gate(tmp_path)
    facts = _facts(WAIVED, WITH_OLD)
    report = _judge(tmp_path, [facts], gate)
    packs = [resolve_pack("tls13-only"), resolve_pack(str(tmp_path / "old.yaml"))]
    streamed = gated(facts, evaluate(facts, packs), gate, START)
    assert streamed.findings == report.targets[0].findings
    assert streamed.gate_verdict == report.targets[0].gate_verdict == "pass"


def test_decide_leaves_the_finding_as_it_was(tmp_path: Path) -> None:
    """Deciding adds the decision and nothing else; a pass gets none."""
    failed = Finding(pack="p", rule="R", title="t", severity="low", status=Status.failed, message="m")
    decided = decide(failed, "high")
    assert decided.model_copy(update={"decision": None}) == failed
    assert decided.decision == Decision(state="below_fail_on")
    assert decide(failed.model_copy(update={"status": Status.passed})).decision is None
