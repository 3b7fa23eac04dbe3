"""One target's lines, as a scan prints them when the target finishes, and the summary that leaves out the
targets already printed."""

from __future__ import annotations

import datetime as dt

from scanner.render.terminal import print_summary, shown_key, target_lines
from scanner.report import ScanOptions, summarise
from tests.helpers import decided_report, protocol_facts, target_report

AT = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)


def test_the_verdict_line_shows_the_grade_once_there_is_one():
    target = target_report(protocol_facts("a.example:443", ["TLSv1.3"], AT), [])
    assert [line.plain for line in target_lines(target)] == ["PASS  a.example:443  (no rules)"]
    graded = target.model_copy(update={"grade": "B"})
    assert [line.plain for line in target_lines(graded)] == ["PASS  a.example:443  grade B  (no rules)"]


def test_the_summary_leaves_out_the_targets_already_shown(capsys):
    first, second = (
        target_report(protocol_facts(name, ["TLSv1.3"], AT), []) for name in ("a.example:443", "b.example:443")
    )
    refused = target_report(protocol_facts("c.example:443", [], AT, scanned=False), [])
    targets = [first, second, refused]
    options = ScanOptions(timeout=5, packs=[])
    report = decided_report(
        started_at=AT, finished_at=AT, options=options, packs=[], targets=targets, summary=summarise(targets)
    )
    print_summary(report, shown=[shown_key(second)])
    assert capsys.readouterr().out.splitlines() == [
        "PASS  a.example:443  (no rules)",
        "ERROR c.example:443  not scanned (refused)",
    ]
