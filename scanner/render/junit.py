"""JUnit XML for Jenkins, GitLab and other CI test views: one test suite per target, one test case per rule.

A case is named ``[SEVERITY][RULE-ID] title`` with the target as its class name, so a CI view groups by target and
sorts by severity. How each finding status becomes a JUnit outcome is one table; a failure carries the evidence.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Literal
from xml.etree import ElementTree as ET  # builds XML from the report model; nothing is parsed here

from scanner.findings import Finding, Status
from scanner.report import Report, TargetReport

# A finding's status as a JUnit outcome: the child element of <testcase>, or None for a plain pass.
Outcome = Literal["failure", "error", "skipped"]
OUTCOMES: dict[Status, Outcome | None] = {
    Status.passed: None,
    Status.failed: "failure",
    Status.error: "error",  # could not check: not a pass, and not the server's fault either
    Status.not_applicable: "skipped",
    Status.waived: "skipped",
}
# The suite attribute that counts each outcome.
_COUNT_ATTRIBUTES: dict[Outcome, str] = {"failure": "failures", "error": "errors", "skipped": "skipped"}

# XML 1.0 cannot carry most control characters (a server's reply quoted in an error message may hold them).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _xml(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _timestamp(value: datetime) -> str:
    """JUnit's timestamp has no zone: the time in UTC."""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _seconds(start: datetime, end: datetime) -> str:
    return f"{max((end - start).total_seconds(), 0.0):.3f}"


def case_name(finding: Finding) -> str:
    return f"[{finding.severity.upper()}][{finding.rule}] {finding.title}"


def _details(finding: Finding) -> str:
    """The body of a failure or error: what was observed, the evidence, and what to do about it."""
    parts = [finding.message]
    if finding.evidence:
        evidence = json.dumps(finding.model_dump(mode="json")["evidence"], indent=2, ensure_ascii=False)
        parts.append(f"Evidence:\n{evidence}")
    if finding.remediation:
        parts.append(f"Remediation: {finding.remediation.strip()}")
    if finding.references:
        parts.append("References: " + ", ".join(finding.references))
    parts.append(f"Pack: {finding.pack}")
    return "\n\n".join(parts)


def _testcase(target: TargetReport, finding: Finding) -> tuple[ET.Element, Outcome | None]:
    case = ET.Element("testcase", {"classname": _xml(target.target), "name": _xml(case_name(finding))})
    outcome = OUTCOMES.get(finding.status, "error")
    if outcome == "skipped":
        ET.SubElement(case, "skipped", {"message": _xml(f"{finding.status.value}: {finding.message}")})
    elif outcome is not None:
        child = ET.SubElement(case, outcome, {"message": _xml(finding.message), "type": _xml(finding.severity)})
        child.text = _xml(_details(finding))
    return case, outcome


def _testsuite(target: TargetReport) -> tuple[ET.Element, dict[str, int]]:
    facts = target.facts
    suite = ET.Element("testsuite", {"name": _xml(target.target)})
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", {"name": "verdict", "value": target.verdict})
    if facts.error is not None:
        ET.SubElement(properties, "property", {"name": "error_class", "value": facts.error.error_class.value})
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for finding in target.findings:
        case, outcome = _testcase(target, finding)
        suite.append(case)
        counts["tests"] += 1
        if outcome is not None:
            counts[_COUNT_ATTRIBUTES[outcome]] += 1
    if facts.error is not None:
        # why the target could not be scanned, once for the suite rather than only in each case
        system_err = ET.SubElement(suite, "system-err")
        system_err.text = _xml(f"{target.target}: not scanned: {facts.error.error_class.value}: {facts.error.message}")
    for name, value in counts.items():
        suite.set(name, str(value))
    suite.set("time", _seconds(facts.started_at, facts.finished_at))
    suite.set("timestamp", _timestamp(facts.started_at))
    return suite, counts


def render(report: Report) -> str:
    root = ET.Element("testsuites", {"name": "tlsgate"})
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for target in report.targets:
        suite, counts = _testsuite(target)
        root.append(suite)
        for name, value in counts.items():
            totals[name] += value
    for name, value in totals.items():
        root.set(name, str(value))
    root.set("time", _seconds(report.started_at, report.finished_at))
    root.set("timestamp", _timestamp(report.started_at))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
