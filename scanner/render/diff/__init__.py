"""Renderers of a diff (``scanner.diff.ReportDiff``): one module per format behind ``render(diff) -> str``; the
terminal summary is ``terminal.print_summary``."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from scanner.diff import ReportDiff
from scanner.render.diff import html, markdown


class DiffFormat(StrEnum):
    json = "json"
    markdown = "markdown"
    html = "html"


def _json(diff: ReportDiff) -> str:
    return diff.model_dump_json(indent=2) + "\n"


# One row a format; tests render every DiffFormat, so a format missing here fails them.
_RENDERERS: dict[DiffFormat, Callable[[ReportDiff], str]] = {
    DiffFormat.json: _json,
    DiffFormat.markdown: markdown.render,
    DiffFormat.html: html.render,
}


def render(diff: ReportDiff, output_format: DiffFormat) -> str:
    return _RENDERERS[output_format](diff)
