"""The gate in every report format: counted, baseline, below --fail-on and waived findings, and expired waivers.

The reports are built by the real pipeline (``judge`` with the ``tls13-only`` pack, a pack file and a ``Gate`` with
a baseline, a waiver in force and an expired one), so what is asserted is what a run writes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import jsonschema
import pytest
from junitparser import Error, Failure, JUnitXml, Skipped, TestCase

from scanner.exitcodes import ExitCode, gate_verdict, report_exit_code
from scanner.facts import Facts
from scanner.findings import Finding, Severity, Status
from scanner.gate import Baseline, Gate, GateState, finding_gate_state, finding_waiver, load_waivers
from scanner.pipeline import judge
from scanner.policy.pack import resolve_pack
from scanner.render import OutputFormat, csv_report, html, junit, markdown, render, sarif
from scanner.report import Report, ScanOptions
from scanner.schemas import schema_dir
from tests.helpers import protocol_facts
from tests.render.test_render_html import _assert_parses, _assert_self_contained

START = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)  # the run's day decides which waivers are in force

BASE, WAIVED, NEW, DOWN = "base.internal:443", "waived.internal:443", "new.internal:443", "down.internal:443"
HIGH_RULE = "TLS13ONLY-001"  # high: fails wherever TLS 1.2 is accepted
REASON = "Vendor appliance, TLS 1.3 firmware due in Q3"
WAIVER_NOTE = f"{REASON} (owner platform-team, expires 2026-09-30)"  # how a report words the waiver in force
MD_WAIVER_NOTE = WAIVER_NOTE.replace("(", "\\(").replace(")", "\\)")  # the same, escaped for Markdown

OLD_PACK = """\
id: old-protocol
title: Old protocols and habits
version: "1"
rules:
  - id: OLD-001
    title: TLS 1.1 is not accepted
    severity: low
    fact: protocols
    none: {version: TLSv1.1, status: accepted}
  - id: OLD-002
    title: OCSP responses are stapled
    severity: low
    fact: behaviours.ocsp_stapling
    equals: true
"""

WAIVERS = """\
waivers:
  - rule: tls13-only/TLS13ONLY-001
    target: "waived.internal:*"
    reason: Vendor appliance, TLS 1.3 firmware due in Q3
    owner: platform-team
    expires: 2026-09-30
  - rule: TLS13ONLY-001
    target: "new.internal:443"
    reason: Migration window
    owner: ops
    expires: 2026-03-01
"""


def _facts(target: str, accepted: list[str], scanned: bool = True) -> Facts:
    return protocol_facts(target, accepted, START, scanned=scanned)


def _judge(tmp_path: Path, facts: list[Facts], fail_on: Severity = "medium", old_pack: bool = True) -> Report:
    pack_file, waivers_file = tmp_path / "old.yaml", tmp_path / "waivers.yaml"
    pack_file.write_text(OLD_PACK)
    waivers_file.write_text(WAIVERS)
    gate = Gate(
        fail_on=fail_on,
        waivers=load_waivers(waivers_file),
        baseline=Baseline("tls/baseline.json", frozenset({(BASE, "tls13-only", HIGH_RULE)})),
    )
    packs = [resolve_pack("tls13-only"), *([resolve_pack(str(pack_file))] if old_pack else [])]
    return judge(facts, packs, ScanOptions(timeout=1, packs=[p.id for p in packs]), START, gate)


@pytest.fixture
def report(tmp_path: Path) -> Report:
    """Four targets under --fail-on medium: a failure in the baseline, a waived one, a new one whose waiver expired
    (with a low failure below --fail-on beside it), and a target that could not be scanned. OCSP stapling (low) is
    inconclusive everywhere: behaviours are not in the facts."""
    both, with_old = ["TLSv1.2", "TLSv1.3"], ["TLSv1.1", "TLSv1.2", "TLSv1.3"]
    facts = [_facts(BASE, both), _facts(WAIVED, both), _facts(NEW, with_old), _facts(DOWN, [], scanned=False)]
    return _judge(tmp_path, facts)


@pytest.fixture
def accepted_only(tmp_path: Path) -> Report:
    """Only failures the gate does not count (baseline, waived, below --fail-on): the run passes."""
    return _judge(tmp_path, [_facts(BASE, ["TLSv1.2", "TLSv1.3"]), _facts(WAIVED, ["TLSv1.1", "TLSv1.2", "TLSv1.3"])])


def _finding(report: Report, target: str, rule: str) -> Finding:
    (found,) = [f for t in report.targets if t.target == target for f in t.findings if f.rule == rule]
    return found


def test_the_pipeline_built_what_the_tests_expect(report: Report) -> None:
    """The fixture really holds each case: baselined, waived, counted, below --fail-on, an expired waiver."""
    assert _finding(report, BASE, HIGH_RULE).baseline is True
    assert _finding(report, WAIVED, HIGH_RULE).status == Status.waived
    assert (_finding(report, NEW, HIGH_RULE).status, _finding(report, NEW, HIGH_RULE).baseline) == (
        Status.failed,
        False,
    )
    assert _finding(report, NEW, "OLD-001").status == Status.failed
    assert [(u.source.rsplit(":", 1)[1], u.status) for u in report.gate.waivers] == [("2", "applied"), ("7", "expired")]
    assert report_exit_code(report) == ExitCode.POLICY_FAILED


# --- the shared rule -----------------------------------------------------------------------------------------


def _f(status: Status, severity: str = "high", baseline: bool = False) -> Finding:
    return Finding(pack="p", rule="R", title="t", severity=severity, status=status, message="m", baseline=baseline)


@pytest.mark.parametrize(
    ("finding", "fail_on", "scanned", "state"),
    [
        (_f(Status.failed), "info", True, "counted"),
        (_f(Status.failed, "low"), "medium", True, "below_fail_on"),
        (_f(Status.failed, "critical"), "medium", True, "counted"),
        (_f(Status.failed, baseline=True), "info", True, "baseline"),
        (_f(Status.failed, "low", baseline=True), "high", True, "baseline"),  # the baseline is said first
        (_f(Status.failed, "severe"), "critical", True, "counted"),  # an unknown severity always counts
        (_f(Status.waived, "critical"), "info", True, "waived"),
        (_f(Status.error), "high", True, "counted"),
        (_f(Status.error, "low"), "high", True, "below_fail_on"),
        (_f(Status.error, "low"), "high", False, "counted"),  # a target not scanned counts whatever the severity
        (_f(Status.passed), "info", True, None),
        (_f(Status.not_applicable), "info", True, None),
    ],
)
def test_finding_gate_state(finding: Finding, fail_on: Severity, scanned: bool, state: GateState | None) -> None:
    """Each finding's state, and it agrees with gate_verdict on the finding alone (the exit code's rule)."""
    assert finding_gate_state(finding, fail_on, scanned) == state
    verdict = gate_verdict(scanned, [finding], fail_on)
    if scanned:
        assert (verdict != "pass") == (state == "counted")


def test_finding_waiver_reads_the_evidence(report: Report) -> None:
    """The waiver of a waived finding is read back from its evidence; other findings have none."""
    waiver = finding_waiver(_finding(report, WAIVED, HIGH_RULE))
    assert waiver is not None
    assert (waiver.reason, waiver.owner, waiver.expires.isoformat()) == (REASON, "platform-team", "2026-09-30")
    assert waiver.source.endswith("waivers.yaml:2")
    assert finding_waiver(_finding(report, NEW, HIGH_RULE)) is None


# --- SARIF ---------------------------------------------------------------------------------------------------


def _sarif(report: Report) -> dict[str, Any]:
    log = json.loads(sarif.render(report))
    schema = json.loads((schema_dir() / "sarif-2.1.0.json").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER).validate(log)
    return cast("dict[str, Any]", log)


def _results(log: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["properties"]["target"], r["ruleId"]): r for r in log["runs"][0]["results"]}


def test_sarif_marks_baseline_state_and_counted(report: Report) -> None:
    """A failure is 'new' or, in the baseline, 'unchanged'; below --fail-on keeps its level but is not counted."""
    results = _results(_sarif(report))
    assert set(results) == {
        (BASE, f"tls13-only/{HIGH_RULE}"),
        (WAIVED, f"tls13-only/{HIGH_RULE}"),
        (NEW, f"tls13-only/{HIGH_RULE}"),
        (NEW, "old-protocol/OLD-001"),
    }
    base = results[(BASE, f"tls13-only/{HIGH_RULE}")]
    assert (base["baselineState"], base["level"]) == ("unchanged", "error")
    assert (base["properties"]["gate"], base["properties"]["counted"]) == ("baseline", False)
    new = results[(NEW, f"tls13-only/{HIGH_RULE}")]
    assert (new["baselineState"], new["properties"]["gate"], new["properties"]["counted"]) == ("new", "counted", True)
    assert "suppressions" not in new
    low = results[(NEW, "old-protocol/OLD-001")]
    assert (low["baselineState"], low["level"]) == ("new", "note")  # the level is still the severity's
    assert (low["properties"]["counted"], low["properties"]["gate"], low["properties"]["failOn"]) == (
        False,
        "below_fail_on",
        "medium",
    )


def test_sarif_waived_finding_is_a_suppressed_result(report: Report) -> None:
    """A waived finding is a result with an external, accepted suppression carrying the waiver."""
    waived = _results(_sarif(report))[(WAIVED, f"tls13-only/{HIGH_RULE}")]
    (suppression,) = waived["suppressions"]
    assert suppression["kind"] == "external"
    assert suppression.get("status", "accepted") == "accepted"  # absent means accepted in SARIF 2.1.0
    assert suppression["justification"] == REASON
    assert suppression["properties"]["owner"] == "platform-team"
    assert suppression["properties"]["expires"] == "2026-09-30"
    assert (waived["properties"]["gate"], waived["properties"]["counted"]) == ("waived", False)
    assert "baselineState" not in waived
    # the fingerprint the failure had (target and rule): a dashboard sees the same alert, now suppressed
    key = hashlib.sha256(f"{WAIVED}\x00tls13-only/{HIGH_RULE}".encode()).hexdigest()
    assert waived["partialFingerprints"] == {sarif.FINGERPRINT_KEY: key}


def test_sarif_expired_waiver_is_a_run_notification(report: Report) -> None:
    """Each expired waiver is a warning notification of the invocation, worded as the command line warns."""
    log = _sarif(report)
    (invocation,) = log["runs"][0]["invocations"]
    notes = [n for n in invocation["toolExecutionNotifications"] if "waiver" in n.get("properties", {})]
    (note,) = notes
    assert note["level"] == "warning"
    assert re.fullmatch(
        r"waiver .*waivers\.yaml:7 \(TLS13ONLY-001 on new\.internal:443, owner ops\) expired on 2026-03-01 "
        r"and no longer applies; 1 finding it covered fails again",
        note["message"]["text"],
    )
    assert note["properties"]["waiver"]["status"] == "expired"
    assert note["properties"]["findings"] == [{"target": NEW, "pack": "tls13-only", "rule": HIGH_RULE}]
    assert invocation["executionSuccessful"] is False  # because of the target that could not be scanned
    gate = log["runs"][0]["properties"]["gate"]
    assert (gate["failOn"], gate["baseline"], gate["waivers"]) == (
        "medium",
        "tls/baseline.json",
        {"applied": 1, "expired": 1, "unused": 0},
    )


def test_sarif_an_expired_waiver_does_not_make_the_run_unsuccessful(tmp_path: Path) -> None:
    """An expired waiver warns about the policy, not about the run: with every rule checked, the run succeeded."""
    checked = _judge(tmp_path, [_facts(NEW, ["TLSv1.2", "TLSv1.3"])], old_pack=False)
    (invocation,) = _sarif(checked)["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is True
    assert [n["level"] for n in invocation["toolExecutionNotifications"]] == ["warning"]


# --- JUnit ---------------------------------------------------------------------------------------------------


def _cases(report: Report) -> dict[tuple[str, str], TestCase]:
    xml = JUnitXml.fromstring(junit.render(report))
    return {(case.classname, case.name.split("]")[1].lstrip("[")): case for suite in xml for case in suite}


def test_junit_counts_only_what_the_gate_counts(report: Report) -> None:
    """Counted failures are <failure>; baseline and below --fail-on are <skipped> saying why; waived too."""
    cases = _cases(report)
    (new,) = cases[(NEW, HIGH_RULE)].result
    assert isinstance(new, Failure)
    assert "waiver" in new.text and "expired on 2026-03-01" in new.text  # why it is back
    (base,) = cases[(BASE, HIGH_RULE)].result
    assert isinstance(base, Skipped)
    assert base.message == "in baseline, not counted: protocols: TLSv1.2: version must equal TLSv1.3"
    assert '"TLSv1.2"' in base.text  # the evidence is kept
    (low,) = cases[(NEW, "OLD-001")].result
    assert isinstance(low, Skipped) and low.message.startswith("below --fail-on medium, not counted: ")
    (waived,) = cases[(WAIVED, HIGH_RULE)].result
    assert isinstance(waived, Skipped)
    assert waived.message == f"waived: {WAIVER_NOTE}"
    (unchecked,) = cases[(NEW, "OLD-002")].result
    assert isinstance(unchecked, Skipped) and unchecked.message.startswith("not checked, below --fail-on medium: ")
    (down,) = cases[(DOWN, "OLD-002")].result
    assert isinstance(down, Error)  # not scanned: counts whatever the severity

    xml = JUnitXml.fromstring(junit.render(report))
    assert (xml.failures, xml.errors) == (1, 4)
    props = {s.name: {p.name: p.value for p in s.properties()} for s in xml}
    assert props[BASE] == {"verdict": "fail", "gate_verdict": "pass", "fail_on": "medium"}
    assert props[NEW]["gate_verdict"] == "fail"


def test_junit_agrees_with_the_exit_code(report: Report, accepted_only: Report, tmp_path: Path) -> None:
    """A <failure> exactly when the exit code is 1; an <error> and no <failure> when it is 3; neither when 0."""
    not_checked = _judge(tmp_path, [_facts(BASE, ["TLSv1.2", "TLSv1.3"]), _facts(DOWN, [], scanned=False)])
    for built, code, failures, errors in [
        (report, ExitCode.POLICY_FAILED, True, True),
        (accepted_only, ExitCode.OK, False, False),
        (not_checked, ExitCode.NOT_CHECKED, False, True),
    ]:
        xml = JUnitXml.fromstring(junit.render(built))
        assert report_exit_code(built) == code
        assert (xml.failures > 0, xml.errors > 0) == (failures, errors), code


def test_junit_without_gate_options_is_unchanged(tmp_path: Path) -> None:
    """No gate options: every failure is a <failure> and the suites carry no gate properties."""
    plain = judge(
        [_facts(NEW, ["TLSv1.2", "TLSv1.3"])], [resolve_pack("tls13-only")], ScanOptions(timeout=1, packs=[]), START
    )
    xml = JUnitXml.fromstring(junit.render(plain))
    assert (xml.failures, xml.skipped) == (1, 0)
    assert [p.name for s in xml for p in s.properties()] == ["verdict"]


# --- CSV -----------------------------------------------------------------------------------------------------


def test_csv_gate_column(report: Report) -> None:
    """The gate column, appended after the finding's, says counted, baseline, below_fail_on or waived; empty for a
    pass (the grade column follows it)."""
    rows = list(csv.DictReader(io.StringIO(csv_report.render(report), newline="")))
    assert csv_report.COLUMNS[-2:] == ("gate", "grade") and csv_report.COLUMNS[:8] == (
        "target", "pack", "rule", "severity", "status", "title", "message", "remediation",
    )  # fmt: skip
    gate = {(r["target"], r["rule"]): (r["status"], r["gate"]) for r in rows}
    assert gate[(BASE, HIGH_RULE)] == ("fail", "baseline")
    assert gate[(WAIVED, HIGH_RULE)] == ("waived", "waived")
    assert gate[(NEW, HIGH_RULE)] == ("fail", "counted")
    assert gate[(NEW, "OLD-001")] == ("fail", "below_fail_on")
    assert gate[(NEW, "OLD-002")] == ("error", "below_fail_on")
    assert gate[(DOWN, "OLD-002")] == ("error", "counted")
    assert gate[(BASE, "TLS13ONLY-002")] == ("pass", "")


# --- Markdown ------------------------------------------------------------------------------------------------


def test_markdown_marks_the_gate(report: Report) -> None:
    """A gate line, an expired-waiver warning, the reason a failure is not counted, and the waived findings."""
    text = markdown.render(report)
    assert text.startswith("## \u274c tlsgate: policy violated\n")
    assert (
        "**Gate:** 1 failure counted; not counted: 1 in the baseline, 1 below --fail-on medium, 1 waived "
        "(--fail-on medium, baseline tls/baseline.json, waivers "
    ) in text
    expired = text.split("### \u26a0\ufe0f Expired waivers\n\n", 1)[1].split("\n", 1)[0]
    assert re.fullmatch(
        r"- waiver .*waivers\.yaml:7 \\\(TLS13ONLY-001 on new\.internal:443, owner ops\\\) expired on 2026-03-01 "
        r"and no longer applies; 1 finding it covered fails again",
        expired,
    ), expired
    assert "| base.internal:443 | \u274c fail (gate: pass) |" in text
    assert "| new.internal:443 | \u274c fail |" in text
    assert f"- **high** fail (in the baseline, not counted) \u00b7 tls13-only/{HIGH_RULE} \u00b7" in text
    assert "- **low** fail (below --fail-on medium, not counted) \u00b7 old-protocol/OLD-001 \u00b7" in text
    assert f"- **high** fail (waiver expired 2026-03-01) \u00b7 tls13-only/{HIGH_RULE} \u00b7" in text
    assert text.split("### Waived\n\n", 1)[1] == (
        f"- **high** waived.internal:443 \u00b7 tls13-only/{HIGH_RULE} \u00b7 No protocol version other than TLS 1.3 "
        f"is accepted: waived: {MD_WAIVER_NOTE}\n"
    )


def test_markdown_headline_follows_the_exit_code(accepted_only: Report) -> None:
    """Failures that do not count make no "policy violated" headline; the table still says what failed."""
    text = markdown.render(accepted_only)
    assert text.startswith("## \u2705 tlsgate: no failure counted\n")
    assert "| base.internal:443 | \u274c fail (gate: pass) |" in text


# --- HTML ----------------------------------------------------------------------------------------------------


def _row(page: str, target_index: int, rule: str) -> str:
    section = page.split(f'<section class="target" id="target-{target_index}"', 1)[1].split("</section>", 1)[0]
    match = re.search(rf'<tr (?:id="[^"]*" )?data-status="[^"]*"[^>]*data-rule="{rule}"[^>]*>.*?</tr>', section, re.S)
    assert match is not None, rule
    return match.group(0)


def test_html_marks_the_gate(report: Report) -> None:
    """Rows say why a failure is not counted or what waived it; expired waivers are a warning atop the overview."""
    page = html.render(report)
    base = _row(page, 1, HIGH_RULE)
    assert 'data-gate="baseline"' in base and "in the baseline, not counted" in base
    waived = _row(page, 2, HIGH_RULE)
    assert 'data-gate="waived"' in waived
    assert f"<strong>Waived:</strong> {WAIVER_NOTE}" in waived
    new = _row(page, 3, HIGH_RULE)
    assert "data-gate" not in new  # counted: the plain failure row
    assert re.search(r'<p class="waiver expired">Waiver .*waivers\.yaml:7 expired on 2026-03-01', new)
    low = _row(page, 3, "OLD-001")
    assert 'data-gate="below_fail_on"' in low and "below --fail-on medium, not counted" in low

    overview = page.split('<section id="overview">', 1)[1].split("</section>", 1)[0]
    alert = re.search(r'<div class="alert expired-waivers" role="note">(.*?)</div>', overview, re.S)
    assert alert is not None
    assert "Expired waivers" in alert.group(1) and "owner ops) expired on 2026-03-01" in alert.group(1)
    assert overview.index("expired-waivers") < overview.index('class="verdicts"')  # first thing in the overview
    header = page.split('<header class="top">', 1)[1].split("</header>", 1)[0]
    assert "1 failure counted; not counted: 1 in the baseline, 1 below --fail-on medium, 1 waived" in header
    # "What failed" lists what counts first and says which targets' failures do not count
    failed = page.split('<section id="failed-rules">', 1)[1].split("</section>", 1)[0]
    entries = re.findall(r'<li data-severity="\w+" data-pack="[^"]+" data-rule="([^"]+)" data-counted="(\w+)">', failed)
    assert entries[0] == (HIGH_RULE, "true") and ("OLD-001", "false") in entries[1:]
    assert all(counted == "false" for _, counted in entries[1:])
    assert 'base.internal:443</a> <span class="gate-mark">(in the baseline, not counted)</span>' in failed
    head = page.split('id="target-1"', 1)[1].split("</div>", 1)[0]
    assert re.search(r'<span class="badge large pass" data-gate-verdict="pass"[^>]*>Gate: Pass</span>', head)


def test_html_stays_self_contained_with_the_gate(report: Report) -> None:
    """The gate adds no script or external resource: the page passes the HTML tests' own checks and its CSP."""
    page = html.render(report)
    _assert_self_contained(page)
    _assert_parses(page)


def test_no_gate_options_no_gate_marks(tmp_path: Path) -> None:
    """Without gate options the formats add nothing about a gate: no Gate line, no data-gate, no expired box."""
    plain = judge(
        [_facts(NEW, ["TLSv1.2", "TLSv1.3"])], [resolve_pack("tls13-only")], ScanOptions(timeout=1, packs=[]), START
    )
    page = html.render(plain)
    assert not re.search(r"<tr [^>]*data-gate=", page) and "data-gate-verdict" not in page
    assert '<div class="alert expired-waivers"' not in page and "<dt>Gate</dt>" not in page
    assert "**Gate:**" not in markdown.render(plain)
    assert "gate" not in json.loads(sarif.render(plain))["runs"][0]["properties"]


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_every_format_renders_the_gated_report(report: Report, fmt: OutputFormat) -> None:
    """Every format renders the gated report and names every target."""
    text = render(report, fmt)
    for name in (BASE, WAIVED, NEW, DOWN):
        assert name in text
