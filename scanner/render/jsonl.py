"""JSON Lines: one target per line, each a ``TargetReport`` object of the JSON report's schema.

A scan writes this as it goes, a line (flushed to disk) the moment a target is finished, in the order they
finish: a run that is killed keeps every finished target, and ``tlsgate evaluate`` and ``scan --resume``
read the file back. Rendered from a whole report, the lines come in the report's order.
"""

from __future__ import annotations

from collections.abc import Iterator

from scanner.report import Report, TargetReport


def line(target: TargetReport) -> str:
    """One target as one line of JSON, newline included."""
    return target.model_dump_json() + "\n"


def chunks(report: Report) -> Iterator[str]:
    for target in report.targets:
        yield line(target)


def render(report: Report) -> str:
    return "".join(chunks(report))
