"""The JSON report: the complete record, valid against reports/schema/report.schema.json."""

from __future__ import annotations

from scanner.report import Report


def render(report: Report) -> str:
    return report.model_dump_json(indent=2) + "\n"
