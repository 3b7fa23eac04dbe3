"""A graded target's grade reaches every format that shows it, the metrics and the store (constructed facts)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from scanner.facts import ProtocolVersion
from scanner.findings import Finding, Status
from scanner.gate import decided_target, run_outcome
from scanner.render import OutputFormat, render
from scanner.render.terminal import summary_lines
from scanner.report import GateInfo, Report, ScanOptions, summarise
from scanner.serve.metrics import TargetCollector, exposition, registry_of
from scanner.store import open_store
from tests.grade.test_grade_rules import AT, facts, version


def _report() -> Report:
    """One target graded B, gated with --min-grade A: TLS 1.0 and 1.2 with AES-128-GCM and ECDHE x25519, RSA 2048:
    protocol (100 + 90) / 2 = 95, key exchange 90, cipher 80: 28.5 + 27 + 32 = 87.5 -> 88 -> A, capped at B."""
    item = facts(version(ProtocolVersion.TLSv1_0), version(ProtocolVersion.TLSv1_2))
    target = decided_target(item, [], "info", "A")
    verdict, code = run_outcome([target])
    return Report(
        started_at=AT, finished_at=AT, options=ScanOptions(timeout=5, packs=[]), packs=[], targets=[target],
        summary=summarise([target]), verdict=verdict, exit_code=code, gate=GateInfo(min_grade="A"),
    )  # fmt: skip


def test_the_gate_decides_on_the_grade() -> None:
    report = _report()
    target = report.targets[0]
    assert (target.grade, target.verdict, target.gate_verdict, report.exit_code) == ("B", "pass", "fail", 1)
    assert target.grade_gate == "grade B is below --min-grade A"


def test_formats_show_the_grade() -> None:
    report = _report()
    assert "| B |" in render(report, OutputFormat.markdown)
    assert "Gate: grade B is below --min-grade A" in render(report, OutputFormat.markdown)
    sarif = render(report, OutputFormat.sarif)
    assert '"grades": {\n' in sarif and '"gradeScore": 88' in sarif and '"rule": "tls10-tls11"' in sarif
    assert '"min_grade": "A"' in render(report, OutputFormat.json)
    lines = [line.plain for line in summary_lines(report)]
    assert "grade B" in lines[0] and lines[1].strip() == "gate: grade B is below --min-grade A"


def test_csv_grade_is_on_every_row() -> None:
    item = facts(version(ProtocolVersion.TLSv1_2))
    finding = Finding(pack="p", rule="R-1", title="t", severity="high", status=Status.passed, message="m")
    target = decided_target(item, [finding, finding.model_copy(update={"rule": "R-2"})])
    report = _report().model_copy(update={"targets": [target]})
    rows = list(csv.DictReader(io.StringIO(render(report, OutputFormat.csv), newline="")))
    assert [row["grade"] for row in rows] == ["A", "A"]


def test_metrics_carry_the_grade() -> None:
    target = _report().targets[0]
    body = exposition(registry_of(TargetCollector(lambda: [target])), None, None)[0].decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(body)
               for s in f.samples}  # fmt: skip
    label = target.target
    assert samples[("tlsgate_grade_score", (("target", label),))] == 88
    assert samples[("tlsgate_grade", (("grade", "B"), ("target", label)))] == 1


def test_the_store_keeps_the_grade(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        run_id = store.record_report("scan", _report())
        rebuilt = store.report(run_id)
        assert [t.grade for t in rebuilt.targets] == ["B"]
        assert [e.grade for e in store.latest_states()] == ["B"]
    finally:
        store.close()
