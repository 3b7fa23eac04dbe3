"""The gate in words, shared by the report formats: which findings count, and why the others do not.

Which findings count is decided once, by the gate, and written on each finding (``Finding.decision``) and target
(``gate_verdict``); this module only words those decisions, so SARIF, JUnit, Markdown, CSV and HTML say the same
thing as the terminal summary and the exit code.
"""

from __future__ import annotations

from collections.abc import Callable

from scanner.findings import Finding, GateState, Status, WaiverRecord
from scanner.report import GateInfo, Report, TargetReport, WaiverUse


def gate_in_use(gate: GateInfo) -> bool:
    """Whether the run had any gate option: otherwise every failure counts and there is nothing to say."""
    return (
        gate.baseline is not None
        or gate.waivers_file is not None
        or gate.fail_on != "info"
        or gate.min_grade is not None
    )


def gate_options(report: Report, quote: Callable[[str], str] = str) -> list[str]:
    """The run's gate options as words ("--fail-on high", "baseline FILE", "waivers FILE"), each value passed
    through ``quote`` (a format's escaping)."""
    gate = report.gate
    options = [f"--fail-on {quote(gate.fail_on)}"]
    if gate.baseline is not None:
        options.append(f"baseline {quote(gate.baseline)}")
    if gate.waivers_file is not None:
        options.append(f"waivers {quote(gate.waivers_file)}")
    if gate.min_grade is not None:
        options.append(f"--min-grade {quote(gate.min_grade)}")
    return options


def state(finding: Finding) -> GateState | None:
    """The gate's decision on one finding; None for a rule that passed or does not apply."""
    return finding.decision.state if finding.decision is not None else None


def waiver_of(finding: Finding) -> WaiverRecord | None:
    """The waiver the gate recorded for a waived finding."""
    return finding.decision.waiver if finding.decision is not None else None


def not_counted_reason(gate_state: GateState | None, fail_on: str) -> str | None:
    """Why a finding does not count, in a few words; None when it counts (or there is nothing to count)."""
    if gate_state == "baseline":
        return "in the baseline"
    if gate_state == "below_fail_on":
        return f"below --fail-on {fail_on}"
    if gate_state == "waived":
        return "waived"
    return None


def waiver_text(waiver: WaiverRecord | None) -> str:
    """``REASON (owner X, expires D)``: what a waived finding says about its waiver."""
    if waiver is None:
        return "no waiver recorded in the report"
    return f"{waiver.reason} (owner {waiver.owner}, expires {waiver.expires.isoformat()})"


def waived_text(finding: Finding) -> str:
    """``waived: REASON (owner X, expires D)``."""
    return f"waived: {waiver_text(waiver_of(finding))}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' * (count != 1)}"


def expired_waiver_text(use: WaiverUse) -> str:
    """The sentence the command line warns with, so every format words an expired waiver alike."""
    count = len(use.findings)
    again = f"; {_plural(count, 'finding')} it covered {'fails' if count == 1 else 'fail'} again" if count else ""
    return (
        f"waiver {use.source} ({use.rule} on {use.target}, owner {use.owner}) expired on "
        f"{use.expires.isoformat()} and no longer applies{again}"
    )


def unused_waiver_text(use: WaiverUse) -> str:
    """The sentence the command line warns with about a waiver in force that matched no failing finding."""
    return (
        f"waiver {use.source} ({use.rule} on {use.target}, owner {use.owner}) matched no failing finding in this "
        "run: remove it, or check its rule and target"
    )


def unused_waivers(report: Report) -> list[WaiverUse]:
    return [use for use in report.gate.waivers if use.status == "unused"]


def expired_waivers(report: Report) -> list[WaiverUse]:
    return [use for use in report.gate.waivers if use.status == "expired"]


def expired_waivers_of(report: Report, target: TargetReport, finding: Finding) -> list[WaiverUse]:
    """The expired waivers that covered this finding: it fails again because of their date."""
    key = (target.target, finding.pack, finding.rule)
    return [use for use in expired_waivers(report) if any((r.target, r.pack, r.rule) == key for r in use.findings)]


def gate_line(report: Report) -> str:
    """``1 failure counted; not counted: 3 in the baseline, 1 below --fail-on high, 2 waived`` (as the terminal)."""
    states = [state(f) for t in report.targets for f in t.findings if f.status in (Status.failed, Status.waived)]
    counted = states.count("counted")
    parts = [
        f"{states.count(name)} {not_counted_reason(name, report.gate.fail_on)}"
        for name in ("baseline", "below_fail_on", "waived")
        if states.count(name)
    ]
    line = f"{_plural(counted, 'failure')} counted"
    return line + (f"; not counted: {', '.join(parts)}" if parts else "")


def grade_summary(target: TargetReport) -> str | None:
    """``B (score 93; TLSv1.0 and TLSv1.1 accepted)``: the grade, its score and the rule that limited it, or None
    for a target without a grade."""
    grading = target.grading
    if target.grade is None or grading is None:
        return None
    limit = next((c for c in grading.caps if c.grade == grading.grade), None)
    reason = f"; {limit.reason}" if limit is not None else ""
    return f"{grading.grade} (score {grading.score}{reason})"
