"""JUnit XML for Jenkins, GitLab and other CI test views: one test suite per target, one test case per rule.

A case is named ``[SEVERITY][RULE-ID] title`` with the target as its class name, so a CI view groups by target and
sorts by severity. How each finding status becomes a JUnit outcome is one table; a failure carries the evidence.

CI views count ``<failure>`` and ``<error>`` elements, so only what the gate counts is one: a failure in the
baseline or below --fail-on (and an inconclusive rule below it) is ``<skipped>``, with the reason first in its
message and the evidence in its text; a waived finding is ``<skipped message="waived: REASON (owner X, expires
D)">``. The test view then agrees with the exit code: a ``<failure>`` exactly when it is 1, an ``<error>`` and no
``<failure>`` when it is 3.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Literal
from xml.etree import ElementTree as ET  # builds XML from the report model; nothing is parsed here

from scanner.findings import Finding, GateState, Status
from scanner.render.gate_marks import (
    expired_waiver_text,
    expired_waivers_of,
    gate_in_use,
    state,
    waived_text,
)
from scanner.report import Report, TargetReport
from scanner.textsafe import printable, printable_lines

# A finding's status as a JUnit outcome: the child element of <testcase>, or None for a plain pass.
Outcome = Literal["failure", "error", "skipped"]
OUTCOMES: dict[Status, Outcome | None] = {
    Status.passed: None,
    Status.failed: "failure",
    Status.error: "error",  # could not check: not a pass, and not the server's fault either
    Status.not_applicable: "skipped",
    Status.waived: "skipped",
}
# What the gate makes of a finding it does not count: reported, but not a result that breaks the build.
NOT_COUNTED: dict[GateState, Outcome] = {"baseline": "skipped", "below_fail_on": "skipped"}
# The suite attribute that counts each outcome.
_COUNT_ATTRIBUTES: dict[Outcome, str] = {"failure": "failures", "error": "errors", "skipped": "skipped"}


def _xml(text: str) -> str:
    """An attribute: XML 1.0 cannot carry most control characters (a server's reply quoted in an error message may
    hold them), and a CI log shows the rest to a terminal; ``printable`` shows them all escaped."""
    return printable(text)


def _xml_text(text: str) -> str:
    """Element text of several lines, escaped as ``_xml`` but for its line breaks."""
    return printable_lines(text)


def _timestamp(value: datetime) -> str:
    """JUnit's timestamp has no zone: the time in UTC."""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _seconds(start: datetime, end: datetime) -> str:
    return f"{max((end - start).total_seconds(), 0.0):.3f}"


def case_name(finding: Finding) -> str:
    return f"[{finding.severity.upper()}][{finding.rule}] {finding.title}"


def _details(finding: Finding, notes: list[str] | None = None) -> str:
    """The body of a failure or error: what was observed, the evidence, and what to do about it."""
    parts = [finding.message, *(notes or [])]
    evidence = finding.model_dump(mode="json")["evidence"]
    if evidence:
        parts.append(f"Evidence:\n{json.dumps(evidence, indent=2, ensure_ascii=False)}")
    if finding.remediation:
        parts.append(f"Remediation: {finding.remediation.strip()}")
    if finding.section:
        parts.append(f"Section: {finding.section}")
    if finding.references:
        parts.append("References: " + ", ".join(finding.references))
    parts.append(f"Pack: {finding.pack}")
    return "\n\n".join(parts)


def outcome(finding: Finding, gate_state: GateState | None) -> Outcome | None:
    """The JUnit outcome of a finding: its status's, unless the gate does not count it."""
    if gate_state is not None and gate_state in NOT_COUNTED:
        return NOT_COUNTED[gate_state]
    return OUTCOMES.get(finding.status, "error")


def _skipped_message(finding: Finding, gate_state: GateState | None, fail_on: str) -> str:
    if finding.status == Status.waived:
        return waived_text(finding)
    if finding.status == Status.error and gate_state == "below_fail_on":
        return f"not checked, below --fail-on {fail_on}: {finding.message}"
    if gate_state == "baseline":
        return f"in baseline, not counted: {finding.message}"
    if gate_state == "below_fail_on":
        return f"below --fail-on {fail_on}, not counted: {finding.message}"
    return f"{finding.status.value}: {finding.message}"


def _testcase(report: Report, target: TargetReport, finding: Finding) -> tuple[ET.Element, Outcome | None]:
    case = ET.Element("testcase", {"classname": _xml(target.target), "name": _xml(case_name(finding))})
    gate_state = state(finding)
    result = outcome(finding, gate_state)
    # an expired waiver is why this failure is back: say so where the failure is read
    notes = [f"Not waived: {expired_waiver_text(use)}." for use in expired_waivers_of(report, target, finding)]
    if result == "skipped":
        message = _skipped_message(finding, gate_state, report.gate.fail_on)
        child = ET.SubElement(case, "skipped", {"message": _xml(message)})
        if finding.status == Status.waived:
            child.text = _xml_text(_details(finding))
        elif gate_state is not None:  # a failure or an inconclusive rule the gate did not count: still worth reading
            child.text = _xml_text(_details(finding, notes))
    elif result is not None:
        child = ET.SubElement(case, result, {"message": _xml(finding.message), "type": _xml(finding.severity)})
        child.text = _xml_text(_details(finding, notes))
    return case, result


def _testsuite(report: Report, target: TargetReport) -> tuple[ET.Element, dict[str, int]]:
    facts = target.facts
    suite = ET.Element("testsuite", {"name": _xml(target.target)})
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", {"name": "verdict", "value": target.verdict})
    if gate_in_use(report.gate):
        # the verdict says what failed; the gate verdict what the exit code counts of it
        verdict = target.gate_verdict
        ET.SubElement(properties, "property", {"name": "gate_verdict", "value": verdict})
        ET.SubElement(properties, "property", {"name": "fail_on", "value": report.gate.fail_on})
    if facts.error is not None:
        ET.SubElement(properties, "property", {"name": "error_class", "value": facts.error.error_class.value})
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for finding in target.findings:
        case, result = _testcase(report, target, finding)
        suite.append(case)
        counts["tests"] += 1
        if result is not None:
            counts[_COUNT_ATTRIBUTES[result]] += 1
    if facts.error is not None:
        # why the target could not be scanned, once for the suite rather than only in each case
        system_err = ET.SubElement(suite, "system-err")
        reason = f"{facts.error.error_class.value}: {facts.error.message}"
        system_err.text = _xml_text(f"{target.target}: not scanned: {reason}")
    for name, value in counts.items():
        suite.set(name, str(value))
    suite.set("time", _seconds(facts.started_at, facts.finished_at))
    suite.set("timestamp", _timestamp(facts.started_at))
    return suite, counts


_TOTALS = ("tests", "failures", "errors", "skipped")


def _root(report: Report, totals: dict[str, int]) -> ET.Element:
    root = ET.Element("testsuites", {"name": "tlsgate"})
    for name in _TOTALS:
        root.set(name, str(totals[name]))
    root.set("time", _seconds(report.started_at, report.finished_at))
    root.set("timestamp", _timestamp(report.started_at))
    return root


def chunks(report: Report) -> Iterator[str]:
    """Streamed in two passes over the targets: the totals the root element carries first, then one suite at a
    time, indented as ``ET.indent`` indents the whole tree (the same document as one built whole)."""
    totals = dict.fromkeys(_TOTALS, 0)
    for target in report.targets:
        _, counts = _testsuite(report, target)
        for name, value in counts.items():
            totals[name] += value
    root = _root(report, totals)
    if not report.targets:
        yield ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
        return
    root.text = _MARK
    head, _, tail = ET.tostring(root, encoding="unicode", xml_declaration=True).partition(_MARK)
    yield head
    for target in report.targets:
        suite, _ = _testsuite(report, target)
        ET.indent(suite, level=1)
        yield "\n  " + ET.tostring(suite, encoding="unicode")
    yield "\n" + tail + "\n"


_MARK = "\ufdd0"  # a noncharacter no attribute holds (they are all ``printable``): where the suites go


def render(report: Report) -> str:
    return "".join(chunks(report))


def render_whole(report: Report) -> str:
    """The document built as one tree: what ``chunks`` streams (the tests compare the two)."""
    suites = [_testsuite(report, target) for target in report.targets]
    root = _root(report, {name: sum(counts[name] for _, counts in suites) for name in _TOTALS})
    root.extend(suite for suite, _ in suites)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
