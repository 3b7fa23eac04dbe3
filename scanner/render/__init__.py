"""Renderers: one module per output format behind ``render(report) -> str``; files are written atomically."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path

from scanner.render import csv_report, html, json_report, jsonl, junit, markdown, sarif
from scanner.report import Report


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


def render(report: Report, output_format: OutputFormat) -> str:
    return _RENDERERS[output_format](report)


def _write_temp(path: Path, text: str) -> Path:
    """The whole text in a fsynced temp file beside ``path``, with the permissions of a freshly created file."""
    directory = path.parent if str(path.parent) else Path()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        # newline="": the text is written as rendered (CSV's CRLF record ends must not be translated).
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; a report is an ordinary file for the user's umask.
        umask = os.umask(0)
        os.umask(umask)
        Path(tmp_name).chmod(0o666 & ~umask)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp_name).unlink()
        raise
    return Path(tmp_name)


class ReportWriteError(OSError):
    """A report file that could not be written; ``filename`` is the report's path, not the temp file's."""

    def __init__(self, path: Path, cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror or str(cause), str(path))


def write_atomic_all(files: Sequence[tuple[Path, str]]) -> None:
    """Write every file whole, or replace none: all temp files are written and fsynced before the first rename.

    A full disk or an unwritable directory therefore leaves every previous report as it was.
    """
    written: list[tuple[Path, Path]] = []
    try:
        for path, text in files:
            try:
                written.append((_write_temp(path, text), path))
            except OSError as exc:
                raise ReportWriteError(path, exc) from exc
        for tmp, path in written:
            try:
                tmp.replace(path)
            except OSError as exc:
                raise ReportWriteError(path, exc) from exc
    except BaseException:
        for tmp, _ in written:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, text: str) -> None:
    """Write the whole file or nothing: a temp file in the same directory, fsync, then rename over."""
    write_atomic_all([(path, text)])
