"""CSV of findings (RFC 4180: comma-separated, CRLF record ends, quotes where needed), one row per target x rule.

For spreadsheets and ad-hoc filtering; the JSON report stays the complete record. The last column, ``gate``, says
what the gate made of a row (appended last, so readers of the earlier columns keep working): ``counted`` (decides
the exit code), ``baseline``, ``below_fail_on``, ``waived``, or empty for a rule that passed or does not apply.
``grade``, after it, is the target's grade (docs/grade.md), the same on each of its rows; empty when not scanned.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from scanner.render.gate_marks import state
from scanner.report import Report
from scanner.textsafe import printable_lines

COLUMNS: tuple[str, ...] = (
    "target",
    "pack",
    "rule",
    "severity",
    "status",
    "title",
    "message",
    "remediation",
    "gate",
    "grade",
)

# A cell starting with one of these is a formula to Excel and LibreOffice. Messages quote what scanned servers
# said (certificate names, error replies), so such a cell gets a leading apostrophe (the OWASP advice against
# CSV injection); spreadsheets show the text as written.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: str) -> str:
    """A cell as written, controls shown escaped (line breaks kept: CSV quotes them), formulas defused."""
    value = printable_lines(value)
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def chunks(report: Report) -> Iterator[str]:
    """The header row, then each target's rows (one chunk a target)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, dialect="excel", lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for target in report.targets:
        for f in target.findings:
            gate = state(f) or ""
            row = (
                *(target.target, f.pack, f.rule, f.severity, f.status.value, f.title, f.message, f.remediation),
                *(gate, target.grade or ""),
            )
            writer.writerow([cell(value) for value in row])
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    yield out.getvalue()


def render(report: Report) -> str:
    return "".join(chunks(report))
