"""The diff as one self-contained HTML page (``reports/templates/diff.html.j2``), in the report's environment:
autoescaping on, every string shown printable, the same date format."""

from __future__ import annotations

from scanner.diff import ReportDiff
from scanner.render.diff.lines import headline, pack_lines, target_lines, target_name
from scanner.render.html import _environment as report_environment  # the report page's filters and escaping

TEMPLATE = "diff.html.j2"


def render(diff: ReportDiff) -> str:
    template = report_environment().get_template(TEMPLATE)
    return template.render(
        diff=diff, headline=headline, pack_lines=pack_lines, target_lines=target_lines, target_name=target_name
    )
