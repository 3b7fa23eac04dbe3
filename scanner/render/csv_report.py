"""CSV of findings (RFC 4180: comma-separated, CRLF record ends, quotes where needed), one row per target x rule.

For spreadsheets and ad-hoc filtering; the JSON report stays the complete record.
"""

from __future__ import annotations

import csv
import io

from scanner.report import Report

COLUMNS: tuple[str, ...] = ("target", "pack", "rule", "severity", "status", "title", "message", "remediation")

# A cell starting with one of these is a formula to Excel and LibreOffice. Messages quote what scanned servers
# said (certificate names, error replies), so such a cell gets a leading apostrophe (the OWASP advice against
# CSV injection); spreadsheets show the text as written.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: str) -> str:
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def render(report: Report) -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out, dialect="excel", lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for target in report.targets:
        for f in target.findings:
            row = (target.target, f.pack, f.rule, f.severity, f.status.value, f.title, f.message, f.remediation)
            writer.writerow([cell(value) for value in row])
    return out.getvalue()
