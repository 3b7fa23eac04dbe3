"""The JSON report: the complete record, valid against reports/schema/report.schema.json.

Streamed: the report's own fields, then its targets one at a time (a scan's report holds them in a spool), the
same document, byte for byte, as ``model_dump_json(indent=2)`` of the whole report.
"""

from __future__ import annotations

from collections.abc import Iterator

from scanner.report import Report

_EMPTY = '\n  "targets": [],\n'  # the one top-level key indented by two spaces; nested keys are deeper


def chunks(report: Report) -> Iterator[str]:
    shell = report.model_copy(update={"targets": []}).model_dump_json(indent=2)
    head, found, tail = shell.partition(_EMPTY)
    if not found:  # cannot happen for a Report; never guess at a document
        raise ValueError("the report's JSON has no top-level targets")
    if not report.targets:
        yield shell + "\n"
        return
    yield head + '\n  "targets": ['
    separator = "\n"
    for target in report.targets:
        # JSON strings hold no raw line breaks: every line of a target is indented as the report nests it
        yield separator + "    " + target.model_dump_json(indent=2).replace("\n", "\n    ")
        separator = ",\n"
    yield "\n  ],\n" + tail + "\n"


def render(report: Report) -> str:
    return "".join(chunks(report))
