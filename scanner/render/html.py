"""The HTML report: one self-contained page (inline CSS, no scripts, no external resources).

The page is rendered from ``reports/templates/report.html.j2`` with autoescaping on, so every string
that came from a scanned server (certificate names, error messages) is escaped before it reaches the page.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import lru_cache

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from scanner.findings import Finding, Status
from scanner.policy.pack import SEVERITIES
from scanner.report import Report
from scanner.resources import reports_dir

TEMPLATE = "report.html.j2"

# Findings are listed most actionable first: failures, then inconclusive results, then the rest.
_STATUS_ORDER: dict[str, int] = {
    Status.failed.value: 0,
    Status.error.value: 1,
    Status.waived.value: 2,
    Status.passed.value: 3,
    Status.not_applicable.value: 4,
}
_STATUS_LABELS: dict[str, str] = {
    Status.passed.value: "Pass",
    Status.failed.value: "Fail",
    Status.error.value: "Error",
    Status.not_applicable.value: "N/A",
    Status.waived.value: "Waived",
}
_SEVERITY_ORDER: dict[str, int] = {severity: index for index, severity in enumerate(SEVERITIES)}


def format_datetime(value: datetime) -> str:
    """A timestamp to the second; aware values are shown in UTC."""
    if value.tzinfo is None:
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_duration(start: datetime, end: datetime) -> str:
    seconds = max((end - start).total_seconds(), 0.0)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def pretty_json(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def status_label(value: str) -> str:
    return _STATUS_LABELS.get(str(value), str(value))


def is_web_url(value: str) -> bool:
    """Only http(s) references become links; anything else (say ``javascript:``) stays text."""
    return value.startswith(("https://", "http://"))


def sort_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(
        findings,
        key=lambda f: (
            _STATUS_ORDER.get(f.status.value, len(_STATUS_ORDER)),
            _SEVERITY_ORDER.get(f.severity, len(_SEVERITY_ORDER)),
            f.pack,
            f.rule,
        ),
    )


def count_status(findings: list[Finding], status: str) -> int:
    return sum(1 for f in findings if f.status.value == status)


def failed_by_severity(findings: list[Finding]) -> list[tuple[str, int]]:
    """Counts of failed findings per severity, most severe first, only the severities that occur."""
    counts: dict[str, int] = {}
    for f in findings:
        if f.status == Status.failed:
            counts[f.severity] = counts.get(f.severity, 0) + 1
    return sorted(counts.items(), key=lambda item: (_SEVERITY_ORDER.get(item[0], len(_SEVERITY_ORDER)), item[0]))


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(reports_dir() / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["datetime"] = format_datetime
    env.filters["pretty_json"] = pretty_json
    env.filters["status_label"] = status_label
    env.filters["sort_findings"] = sort_findings
    env.filters["failed_by_severity"] = failed_by_severity
    env.tests["web_url"] = is_web_url
    env.globals["count_status"] = count_status
    env.globals["duration"] = format_duration
    return env


def render(report: Report) -> str:
    return _environment().get_template(TEMPLATE).render(report=report)
