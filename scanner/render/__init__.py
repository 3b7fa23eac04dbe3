"""Renderers: one module per output format behind ``render(report) -> str`` and ``chunks(report)`` (the same
text in pieces, for writing a report of thousands of targets without holding it whole); written by ``files``
where the user said (files atomically)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from enum import StrEnum

from scanner.render import csv_report, html, json_report, jsonl, junit, markdown, sarif
from scanner.render.files import ReportWriteError, write_atomic, write_atomic_all
from scanner.report import Report

__all__ = [
    "FILE_SUFFIXES",
    "OutputFormat",
    "ReportWriteError",
    "chunks",
    "render",
    "write_atomic",
    "write_atomic_all",
]


class OutputFormat(StrEnum):
    json = "json"
    html = "html"
    sarif = "sarif"
    junit = "junit"
    markdown = "markdown"
    csv = "csv"
    jsonl = "jsonl"  # streamed by scan as targets finish; rendered whole elsewhere


# The file name ending each format is written with when tlsgate picks the name itself (the demo).
FILE_SUFFIXES: dict[OutputFormat, str] = {
    OutputFormat.json: ".json",
    OutputFormat.html: ".html",
    OutputFormat.sarif: ".sarif",
    OutputFormat.junit: ".junit.xml",
    OutputFormat.markdown: ".md",
    OutputFormat.csv: ".csv",
    OutputFormat.jsonl: ".jsonl",
}


# A table rather than a chain of ifs: one line a format. The type checker cannot see a format missing here;
# tests/render render the report in every OutputFormat, so they do.
_RENDERERS: dict[OutputFormat, Callable[[Report], str]] = {
    OutputFormat.json: json_report.render,
    OutputFormat.html: html.render,
    OutputFormat.sarif: sarif.render,
    OutputFormat.junit: junit.render,
    OutputFormat.markdown: markdown.render,
    OutputFormat.csv: csv_report.render,
    OutputFormat.jsonl: jsonl.render,
}


# The formats written in pieces, a target at a time: their report need never be whole in memory. What SARIF,
# Markdown and HTML say across targets (rules, notifications, the page's "What failed" ...) is gathered in a first
# pass over the targets, then the per-target parts are written a target at a time.
_STREAMED: dict[OutputFormat, Callable[[Report], Iterator[str]]] = {
    OutputFormat.json: json_report.chunks,
    OutputFormat.sarif: sarif.chunks,
    OutputFormat.markdown: markdown.chunks,
    OutputFormat.html: html.chunks,
    OutputFormat.junit: junit.chunks,
    OutputFormat.csv: csv_report.chunks,
    OutputFormat.jsonl: jsonl.chunks,
}


def render(report: Report, output_format: OutputFormat) -> str:
    return _RENDERERS[output_format](report)


def chunks(report: Report, output_format: OutputFormat) -> Iterator[str]:
    """The report in the format, in pieces (lazily: nothing is rendered before the first piece is asked for)."""
    streamed = _STREAMED.get(output_format)
    if streamed is not None:
        yield from streamed(report)
    else:
        yield _RENDERERS[output_format](report)
