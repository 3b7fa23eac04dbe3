"""Reports are written whole or not at all."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from scanner.render import OutputFormat, render, write_atomic
from scanner.report import ScanOptions, summarise
from tests.helpers import decided_report


def test_write_atomic_replaces_and_leaves_no_temp_files(tmp_path):
    """An existing report is replaced in one step; no temporary file is left behind."""
    target = tmp_path / "r.json"
    target.write_text("old")
    write_atomic(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_write_atomic_failure_keeps_the_old_file(tmp_path, monkeypatch):
    """If writing fails midway, the previous report is untouched and the temp file is removed."""
    target = tmp_path / "r.json"
    target.write_text("old")

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("scanner.render.files.os.fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        write_atomic(target, "new" * 1000)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_every_format_renders(tmp_path):
    """Every OutputFormat member is wired to a renderer (a new format cannot be half-added)."""
    now = datetime.now(UTC)
    report = decided_report(
        started_at=now, finished_at=now, options=ScanOptions(timeout=1, packs=[]), packs=[], targets=[],
        summary=summarise([]),
    )  # fmt: skip
    for fmt in OutputFormat:
        if fmt is OutputFormat.jsonl:
            assert render(report, fmt) == ""  # a line per target, and there is none
            continue
        assert render(report, fmt).strip()
