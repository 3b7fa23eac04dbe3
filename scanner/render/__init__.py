"""Renderers: one module per output format behind ``render(report) -> str``; files are written atomically."""

from __future__ import annotations

import contextlib
import os
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import assert_never

from scanner.render import html, json_report
from scanner.report import Report


class OutputFormat(StrEnum):
    json = "json"
    html = "html"


def render(report: Report, output_format: OutputFormat) -> str:
    if output_format is OutputFormat.json:
        return json_report.render(report)
    if output_format is OutputFormat.html:
        return html.render(report)
    assert_never(output_format)


def write_atomic(path: Path, text: str) -> None:
    """Write the whole file or nothing: a temp file in the same directory, fsync, then rename over."""
    directory = path.parent if str(path.parent) else Path()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; a report is an ordinary file for the user's umask.
        umask = os.umask(0)
        os.umask(umask)
        Path(tmp_name).chmod(0o666 & ~umask)
        Path(tmp_name).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp_name).unlink()
        raise
