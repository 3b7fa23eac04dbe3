"""Reports written in pieces from a spool of targets: the same documents as rendered whole, all or nothing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scanner.facts import ErrorClass, Facts, ProbeError, TargetInfo
from scanner.findings import Finding, Status
from scanner.render import OutputFormat, chunks, html, json_report, junit, markdown, render, sarif, write_atomic_all
from scanner.report import PackInfo, Report, ScanOptions, Tally, TargetReport, summarise
from scanner.saved import read_report
from scanner.targetspool import MEMORY_BYTES, TargetSpool
from tests.helpers import decided_report, target_report

START = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
LEGACY = Path(__file__).parent / "data" / "legacy-report.json"
# a hostile message: quotes, a line break, a backslash and text outside ASCII survive as JSON escapes
ODD = 'says "hi"\nsecond line \\ é \u2028 \x07'


def _facts(host: str, error: ProbeError | None = None) -> Facts:
    info = TargetInfo(input=f"{host}:443", host=host, port=443, server_name=None, ip_address=None)
    status = "error" if error else "ok"
    return Facts(target=info, started_at=START, finished_at=START + timedelta(seconds=2), status=status, error=error)


def _finding(rule: str, status: Status, severity: str, message: str = "observed") -> Finding:
    return Finding.model_validate(
        {
            "pack": "p",
            "rule": rule,
            "title": f"title {rule}",
            "severity": severity,
            "status": status,
            "message": message,
            "evidence": {"observed": ["TLSv1.2", ODD]},
            "rationale": "why",
            "remediation": "fix",
        }
    )


def _targets() -> list[TargetReport]:
    refused = ProbeError(error_class=ErrorClass.refused, message="connection refused")
    return [
        target_report(_facts("a.example"), [_finding("R-1", Status.passed, "high")]),
        target_report(
            _facts("b.example"),
            [_finding("R-1", Status.failed, "low", ODD), _finding("R-2", Status.failed, "critical")],
        ),
        target_report(_facts("c.example", refused), [_finding("R-1", Status.error, "high")]),
        target_report(_facts("d.example"), [_finding("R-2", Status.failed, "critical")]),
    ]


PACK = PackInfo(id="p", title="P", version="1", sha256="0" * 64, rules=2)


def _report(targets: list[TargetReport]) -> Report:
    run = {"started_at": START, "finished_at": START + timedelta(seconds=9), "packs": [PACK]}
    return decided_report(
        **run, options=ScanOptions(timeout=5, packs=["p"]), targets=targets, summary=summarise(targets)
    )


def _spooled(report: Report) -> Report:
    return report.model_copy(update={"targets": TargetSpool.of(report.targets)})


@pytest.fixture(params=["built", "legacy", "empty"])
def report(request: pytest.FixtureRequest) -> Report:
    if request.param == "legacy":
        return read_report(LEGACY)
    return _report(_targets() if request.param == "built" else [])


def test_streamed_json_is_the_model_dump_byte_for_byte(report):
    """The JSON report written target by target from a spool is model_dump_json(indent=2) of the whole report."""
    whole = report.model_dump_json(indent=2) + "\n"
    assert "".join(json_report.chunks(_spooled(report))) == whole
    assert json_report.render(report) == whole
    assert Report.model_validate_json(whole) == report


def test_streamed_junit_is_the_tree_built_whole(report):
    assert "".join(junit.chunks(_spooled(report))) == junit.render_whole(report)


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_a_spooled_report_renders_as_the_listed_one(report, fmt):
    """Every format, streamed or not, says the same of a report whose targets are in a spool."""
    assert "".join(chunks(_spooled(report), fmt)) == render(report, fmt)


def test_a_spool_keeps_the_targets_order_whatever_order_they_finish_in():
    targets = _targets()
    spool = TargetSpool(len(targets))
    for index in (2, 0, 3):
        spool.put(index, targets[index])
    assert len(spool) == 3 and not spool.filled(1)
    assert list(spool) == [targets[0], targets[2], targets[3]]
    spool.put(1, targets[1])
    assert list(spool) == targets and spool == targets
    assert spool[1] == targets[1] and spool[-1] == targets[3] and spool[1:3] == targets[1:3]
    with pytest.raises(ValueError, match="filled already"):
        spool.put(1, targets[1])


def test_a_spool_past_its_memory_goes_to_a_temp_file_and_reads_back():
    one = _targets()[1]
    spool = TargetSpool()
    count = 0
    while not spool._file._rolled:
        spool.append(one.model_copy(update={"target": f"t{count}"}))
        count += 1
    assert spool._end > MEMORY_BYTES
    assert [t.target for t in spool] == [f"t{n}" for n in range(count)]
    assert spool[count // 2].findings == one.findings


def test_the_tally_counts_in_report_order_whatever_order_targets_come_in():
    """failed_by_severity lists severities as the report's order first meets them, as summarise does."""
    targets = _targets()
    tally = Tally()
    for index in (3, 1, 0, 2):
        tally.add(targets[index], index)
    assert tally.summary() == summarise(targets)
    assert list(tally.summary().failed_by_severity) == ["low", "critical"]


def _breaking(report: Report) -> Iterator[str]:
    yield from json_report.chunks(report)
    raise RuntimeError("the renderer broke")


def test_a_render_that_breaks_midway_writes_nothing(tmp_path):
    """Pieces already written to a temp file, or rendered for standard output, are dropped: no file is replaced,
    none is left behind, and nothing reaches the stream."""
    report = _spooled(_report(_targets()))
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text("old a")
    second.write_text("old b")
    read, write = os.pipe()
    try:
        pieces = [(first, chunks(report, OutputFormat.json)), (Path(f"/dev/fd/{write}"), _breaking(report))]
        with pytest.raises(RuntimeError, match="broke"):
            write_atomic_all([*pieces, (second, _breaking(report))])
        os.close(write)
        write = -1
        assert os.read(read, 100) == b""
    finally:
        os.close(read)
        if write >= 0:
            os.close(write)
    assert (first.read_text(), second.read_text()) == ("old a", "old b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]


def test_pieces_reach_a_file_and_a_stream_whole(tmp_path):
    report = _spooled(_report(_targets()))
    whole = report.model_dump_json(indent=2) + "\n"
    read, write = os.pipe()  # the report is a few kB: the pipe holds it all
    try:
        pieces = [(tmp_path / "r.json", chunks(report, OutputFormat.json)), (Path(f"/dev/fd/{write}"), [whole])]
        write_atomic_all(pieces)
        assert os.read(read, 1 << 20).decode() == whole
    finally:
        os.close(read)
        os.close(write)
    assert (tmp_path / "r.json").read_text() == whole


def test_streamed_sarif_is_the_log_dumped_whole(report):
    assert "".join(sarif.chunks(_spooled(report))) == sarif.render_whole(report)


def test_streamed_markdown_and_html_are_the_pages_rendered_whole():
    """A fleet's page is written in pieces of about 64 kB, unindented piece by piece as the whole page is."""
    one = _targets()
    fleet = [t.model_copy(update={"target": f"{n}-{t.target}"}) for n in range(40) for t in one]
    report = _report(fleet)
    pieces = list(html.chunks(_spooled(report)))
    assert len(pieces) > 2 and "".join(pieces) == html.render_whole(report)
    assert "".join(markdown.chunks(_spooled(report))) == markdown.render(report)
