"""SARIF 2.1.0 for code-scanning dashboards: one result per failed or waived rule per target.

Every rule the run judged is described once in ``tool.driver.rules`` (title, rationale, remediation as help text,
the first web reference as help URI); severities become SARIF levels through one table. A target that could not be
scanned, or a rule that could not be checked, is not a result but a tool execution notification: the dashboard
should not show "could not check" as a vulnerability, nor as fixed. The log validates against the OASIS schema
vendored in ``reports/schema/sarif-2.1.0.json``.

The gate is in the log too (SARIF 2.1.0 §3.27.24 and §3.35): a failure has ``baselineState`` ``unchanged`` when the
baseline lists it and ``new`` otherwise (no baseline: every failure is new, as the exit code counts it); a waived
finding is a result with an accepted external suppression carrying the waiver; every result says in
``properties.gate`` / ``properties.counted`` whether it counts towards the exit code (a failure below --fail-on
keeps its level). An expired waiver is a warning notification of the invocation. A waived result has no
``baselineState``: waivers outrank the baseline, so the report does not record whether the baseline lists it.

The grade (docs/grade.md) is a property too: ``grade`` on each result of a graded target, ``grade``, ``gradeScore``,
``gradeCaps`` and ``gradeGate`` (why --min-grade failed it) on its artifact, and ``grades`` (target -> grade) on the
run; all absent when no target has a grade, so a report without grades renders as before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, Literal, NamedTuple, get_args
from urllib.parse import quote, urlsplit

from scanner import __version__
from scanner.facts import Facts
from scanner.findings import Finding, Status
from scanner.render.gate_marks import expired_waiver_text, expired_waivers, gate_in_use, state, waiver_of
from scanner.render.splice import dumps, mark, splice
from scanner.report import Report, TargetReport, WaiverStatus, WaiverUse
from scanner.textsafe import printable_lines

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_NAME = "tlsgate"
INFORMATION_URI = "https://tlsgate.dev/"
# Bumped when the fingerprint recipe changes, so a dashboard does not match old alerts against new ones.
FINGERPRINT_KEY = "tlsgate/v1"

Level = Literal["error", "warning", "note"]


class SarifSeverity(NamedTuple):
    """How one tlsgate severity appears in SARIF."""

    level: Level
    # GitHub code scanning's 0.0-10.0 score (9.0+ critical, 7.0+ high, 4.0+ medium, else low); None: not a
    # security alert score at all (informational rules).
    security_severity: str | None


SEVERITY_TABLE: dict[str, SarifSeverity] = {
    "critical": SarifSeverity("error", "9.5"),
    "high": SarifSeverity("error", "8.0"),
    "medium": SarifSeverity("warning", "5.5"),
    "low": SarifSeverity("note", "3.0"),
    "info": SarifSeverity("note", None),
}
# A saved report from a future tlsgate may name a severity this one does not know: SARIF's default level.
UNKNOWN_SEVERITY = SarifSeverity("warning", None)


def sarif_severity(severity: str) -> SarifSeverity:
    return SEVERITY_TABLE.get(severity, UNKNOWN_SEVERITY)


def rule_id(finding: Finding) -> str:
    """Rule ids are unique within a pack, so the SARIF id carries the pack: ``tls13-only/TLS13ONLY-001``."""
    return f"{finding.pack}/{finding.rule}"


def target_uri(facts: Facts) -> str:
    """The target as a URI: ``tls://host:port`` for an endpoint, the file itself for ``tlsgate cert``."""
    info = facts.target
    if info.source == "file":
        path = PurePosixPath(info.input.replace("\\", "/"))
        if path.is_absolute():
            return path.as_uri()
        return quote(str(path))  # relative, as a dashboard that knows the repository can link it
    host = f"[{info.host}]" if ":" in info.host else quote(info.host, safe="")
    return f"tls://{host}:{info.port}" if info.port else f"tls://{host}"


def _utc(value: datetime) -> str:
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _is_web_url(value: str) -> bool:
    """Only a well-formed http(s) URL becomes helpUri (a reference may just as well be "RFC 8446, 4.1")."""
    parts = urlsplit(value)
    return parts.scheme in ("https", "http") and bool(parts.netloc) and not any(c.isspace() for c in value)


def _text(value: str, fallback: str) -> str:
    return value.strip() or fallback


def _rule_descriptor(finding: Finding) -> dict[str, Any]:
    severity = sarif_severity(finding.severity)
    properties: dict[str, Any] = {
        "tags": ["security", "tls", finding.pack],
        "severity": finding.severity,
        # a rule judges observed facts, it does not guess: no false positives by construction
        "precision": "very-high",
    }
    if severity.security_severity is not None:
        properties["security-severity"] = severity.security_severity
    descriptor: dict[str, Any] = {
        "id": rule_id(finding),
        "name": finding.rule,
        "shortDescription": {"text": _text(finding.title, finding.rule)},
        "fullDescription": {"text": _text(finding.rationale, finding.title or finding.rule)},
        "help": {"text": _text(finding.remediation, finding.rationale or finding.title or finding.rule)},
        "defaultConfiguration": {"level": severity.level},
        "properties": properties,
    }
    web = [ref for ref in finding.references if _is_web_url(ref)]
    if web:
        descriptor["helpUri"] = web[0]
    return descriptor


def _location(target: TargetReport) -> dict[str, Any]:
    return {
        "physicalLocation": {"artifactLocation": {"uri": target_uri(target.facts)}},
        "logicalLocations": [{"name": target.target, "fullyQualifiedName": target.target, "kind": "resource"}],
    }


def _fingerprint(target: str, finding: Finding) -> str:
    """Stable across runs for the same target and rule, so a dashboard tracks one alert until it is fixed."""
    return hashlib.sha256(f"{target}\x00{rule_id(finding)}".encode()).hexdigest()


def _suppression(finding: Finding) -> dict[str, Any]:
    """A waiver as SARIF sees it: suppressed outside the analysed artifact (the waivers file), and accepted.

    Accepted is said by leaving the status out, which SARIF 2.1.0 reads as ``accepted``: the OASIS Standard names
    the property ``status``, while the Committee Specification schema vendored for the tests (and still found in
    the wild) names it ``state`` and forbids ``status`` — an absent one is valid, and means the same, under both.
    """
    suppression: dict[str, Any] = {"kind": "external"}
    waiver = waiver_of(finding)
    if waiver is not None:
        suppression["justification"] = waiver.reason
        suppression["properties"] = {
            "owner": waiver.owner,
            "expires": waiver.expires.isoformat(),
            "rule": waiver.rule,
            "target": waiver.target,
            "source": waiver.source,
        }
    return suppression


def _result(report: Report, target: TargetReport, finding: Finding, index: int) -> dict[str, Any]:
    gate_state = state(finding)
    properties: dict[str, Any] = {
        "target": target.target,
        "pack": finding.pack,
        "severity": finding.severity,
        "evidence": finding.model_dump(mode="json")["evidence"],
        # whether this result decides the exit code: counted, baseline, below_fail_on or waived
        "gate": gate_state,
        "counted": gate_state == "counted",
    }
    if target.grade is not None:  # the target's grade (docs/grade.md), the same on each of its results
        properties["grade"] = target.grade
    if gate_state == "below_fail_on":
        properties["failOn"] = report.gate.fail_on
    result: dict[str, Any] = {
        "ruleId": rule_id(finding),
        "ruleIndex": index,
        "kind": "fail",
        # the severity's level whatever the gate did: the level says how bad, the gate whether it counts
        "level": sarif_severity(finding.severity).level,
        "message": {"text": _text(finding.message, finding.title or finding.rule)},
        "locations": [_location(target)],
        "partialFingerprints": {FINGERPRINT_KEY: _fingerprint(target.target, finding)},
        "properties": properties,
    }
    if finding.status == Status.failed:
        result["baselineState"] = "unchanged" if gate_state == "baseline" else "new"
    else:
        result["suppressions"] = [_suppression(finding)]
    return result


def _notifications(report: Report, target: TargetReport, rule_index: dict[str, int]) -> list[dict[str, Any]]:
    """Why a target, or a rule on it, could not be checked."""
    error = target.facts.error
    if target.facts.status != "ok":
        reason = f"{error.error_class.value}: {error.message}" if error else "not scanned"
        return [
            {
                "level": "error",
                "message": {"text": f"{target.target}: could not be scanned ({reason})"},
                "locations": [_location(target)],
                "properties": {"target": target.target, "errorClass": error.error_class.value if error else None},
            }
        ]
    # A scanned target's inconclusive rules; an unscanned target's rules would all repeat the reason above.
    return [
        {
            "level": "warning",
            "message": {"text": f"{target.target}: {rule_id(f)} could not be checked: {f.message}"},
            "locations": [_location(target)],
            "associatedRule": {"id": rule_id(f), "index": rule_index[rule_id(f)]},
            "properties": {"target": target.target, "gate": state(f)},
        }
        for f in target.findings
        if f.status == Status.error
    ]


def _expired_waiver_notification(use: WaiverUse) -> dict[str, Any]:
    """An expired waiver applies to nothing: the run says so, as the command line warns."""
    return {
        "level": "warning",
        "message": {"text": expired_waiver_text(use)},
        "properties": {
            "waiver": {
                "rule": use.rule,
                "target": use.target,
                "reason": use.reason,
                "owner": use.owner,
                "expires": use.expires.isoformat(),
                "source": use.source,
                "status": use.status,
            },
            "findings": [ref.model_dump(mode="json") for ref in use.findings],
        },
    }


def _gate_properties(report: Report) -> dict[str, Any]:
    gate = report.gate
    return {
        "failOn": gate.fail_on,
        "baseline": gate.baseline,
        "waiversFile": gate.waivers_file,
        **({"minGrade": gate.min_grade} if gate.min_grade is not None else {}),
        "waivers": {
            status: sum(1 for use in gate.waivers if use.status == status) for status in get_args(WaiverStatus)
        },
    }


def _grade_properties(target: TargetReport) -> dict[str, Any]:
    grading = target.grading
    properties: dict[str, Any] = {"grade": target.grade, "gradeGate": target.grade_gate}
    if grading is not None:
        properties["gradeScore"] = grading.score
        properties["gradeCaps"] = [cap.model_dump(mode="json") for cap in grading.caps]
    return properties


def _grades(report: Report) -> dict[str, str | None]:
    if all(target.grade is None for target in report.targets):
        return {}
    return {target.target: target.grade for target in report.targets}


class _Gathered(NamedTuple):
    """What the log says across targets, gathered in one pass before the per-target lists are written."""

    rules: list[dict[str, Any]]
    rule_index: dict[str, int]
    not_checked: list[dict[str, Any]]
    grades: dict[str, str | None]


def _gather(report: Report) -> _Gathered:
    rules: list[dict[str, Any]] = []
    rule_index: dict[str, int] = {}
    not_checked: list[dict[str, Any]] = []
    grades: dict[str, str | None] = {}
    for target in report.targets:
        for finding in target.findings:
            if rule_id(finding) not in rule_index:
                rule_index[rule_id(finding)] = len(rules)
                rules.append(_rule_descriptor(finding))
        not_checked += _notifications(report, target, rule_index)
        grades[target.target] = target.grade
    # each target's grade (none when not graded): absent when no target has one
    return _Gathered(rules, rule_index, not_checked, grades if any(g is not None for g in grades.values()) else {})


def _artifacts(report: Report) -> Iterator[dict[str, Any]]:
    # every target judged, passing or not, so the log says what was covered and not only what failed
    for target in report.targets:
        yield {
            "location": {"uri": target_uri(target.facts)},
            "description": {"text": target.target},
            "roles": ["analysisTarget"],
            **({"properties": _grade_properties(target)} if target.grade is not None else {}),
        }


def _results(report: Report, rule_index: dict[str, int]) -> Iterator[dict[str, Any]]:
    for target in report.targets:
        for finding in target.findings:
            if finding.status in (Status.failed, Status.waived):
                yield _result(report, target, finding, rule_index[rule_id(finding)])


def _log(report: Report, gathered: _Gathered, artifacts: list[Any], results: list[Any]) -> dict[str, Any]:
    rules, _, not_checked, grades = gathered
    notifications = not_checked + [_expired_waiver_notification(use) for use in expired_waivers(report)]
    invocation: dict[str, Any] = {
        # false when anything could not be checked: the run is then incomplete, whatever it found (an expired
        # waiver is a warning about the policy, not about the run)
        "executionSuccessful": not not_checked,
        "startTimeUtc": _utc(report.started_at),
        "endTimeUtc": _utc(report.finished_at),
    }
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": TOOL_NAME,
                "version": report.tool.version,
                "semanticVersion": report.tool.version,
                "informationUri": INFORMATION_URI,
                "rules": rules,
            }
        },
        "invocations": [invocation],
        "artifacts": artifacts,
        "results": results,
        "properties": {
            "packs": [{"id": p.id, "version": p.version, "sha256": p.sha256} for p in report.packs],
            "summary": report.summary.model_dump(mode="json"),
            **({"grades": grades} if grades else {}),
            "renderedBy": f"{TOOL_NAME} {__version__}",
            **({"gate": _gate_properties(report)} if gate_in_use(report.gate) else {}),
        },
    }
    return {"$schema": SARIF_SCHEMA_URI, "version": SARIF_VERSION, "runs": [run]}


def sarif_log(report: Report) -> dict[str, Any]:
    """The whole log as one value."""
    gathered = _gather(report)
    return _log(report, gathered, list(_artifacts(report)), list(_results(report, gathered.rule_index)))


def _printable(value: Any) -> Any:
    """Every string of the log with its controls shown escaped: a viewer shows SARIF messages to people, and JSON
    escapes only C0 controls, not C1 controls or bidi overrides."""
    if isinstance(value, str):
        return printable_lines(value)
    if isinstance(value, dict):
        return {key: _printable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_printable(item) for item in value]
    return value


def chunks(report: Report) -> Iterator[str]:
    """The log streamed: what it gathers across targets first (rules, notifications, grades: one pass), then its
    artifacts and its results a target at a time (a pass each); the same text as ``render_whole``."""
    gathered = _gather(report)
    artifacts, results = mark("artifacts"), mark("results")
    document = dumps(_printable(_log(report, gathered, [artifacts], [results])))
    lists = {artifacts: _artifacts(report), results: _results(report, gathered.rule_index)}
    yield from splice(document, lists, lambda item: dumps(_printable(item)))
    yield "\n"


def render(report: Report) -> str:
    return "".join(chunks(report))


def render_whole(report: Report) -> str:
    """The log dumped as one value: what ``chunks`` streams (the tests compare the two)."""
    return dumps(_printable(sarif_log(report))) + "\n"
