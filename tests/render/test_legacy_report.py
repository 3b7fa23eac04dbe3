"""A report saved before reports carried the gate's decisions renders exactly as it did.

``data/legacy-report.json`` was written by tlsgate before this change (commit 7182477), from the gate scenario of
test_render_gate (a failure in the baseline, a waived one, one whose waiver expired, one below --fail-on medium,
an inconclusive rule, a target not scanned); ``data/legacy-report.*`` are what that tlsgate rendered from it.
``legacy-report.csv`` was rendered again when CSV gained its last column, ``grade`` (issue 17): the other columns
are as that tlsgate wrote them, and the grade is empty (its facts hold no cipher suites to grade).
The HTML rendering is stored gzip-compressed: it is generated output, and kept as plain HTML it would be read as
source (its repeated markup counted as repeated code).
The HTML page's layout changed since (issue 17: failures first, fact tables folded), so its expected rendering was
made again from the same legacy JSON by the new template; it still changes by a byte if a decision read from the
old report does.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from scanner.render import FILE_SUFFIXES, OutputFormat, render
from scanner.report import Report
from scanner.saved import read_report
from tests.render.test_render_gate import START, _judge

DATA = Path(__file__).parent / "data"
LEGACY = DATA / "legacy-report.json"
# JSON and JSON Lines gain the new fields; every other format must not change by a byte.
UNCHANGED = [fmt for fmt in OutputFormat if fmt not in (OutputFormat.json, OutputFormat.jsonl)]
NEW_REPORT_FIELDS = ("verdict", "exit_code")
NEW_TARGET_FIELDS = ("gate_verdict", "grade", "grading", "grade_gate")
NEW_GATE_FIELDS = ("min_grade",)
# Facts the model gained since, by group: read from the old report as not probed.
NEW_FACT_FIELDS = {
    "client_auth": ("enforcement", "untrusted_enforcement"),
    "certificate": ("hostname_match_cn_only",),
    "sessions": (
        "legacy_version",
        "legacy_session_id_resumption",
        "legacy_ticket_resumption",
        "legacy_ticket_lifetime",
    ),
}
# ... and those whose default is null rather than not probed, or an empty list.
NEW_NULL_FACT_FIELDS = {"certificate": ("hostname_mismatch",)}
NEW_LIST_FACT_FIELDS = {"certificate": ("lints",)}
# ... and lists the facts gained at the top level.
NEW_TOP_LIST_FACT_FIELDS = ("certificate_deployments",)
# Renderings stored compressed, by the suffix of the file that tlsgate writes.
COMPRESSED = {FILE_SUFFIXES[OutputFormat.html]}


def _expected(fmt: OutputFormat) -> bytes:
    """The bytes that tlsgate rendered from the legacy report in this format, before this change."""
    suffix = FILE_SUFFIXES[fmt]
    if suffix in COMPRESSED:
        return gzip.decompress((DATA / f"legacy-report{suffix}.gz").read_bytes())
    return (DATA / f"legacy-report{suffix}").read_bytes()


@pytest.fixture(scope="module")
def legacy() -> Report:
    return read_report(LEGACY)


def test_the_fixture_predates_the_decisions() -> None:
    data = json.loads(LEGACY.read_text(encoding="utf-8"))
    assert not set(NEW_REPORT_FIELDS) & set(data)
    assert all("gate_verdict" not in t for t in data["targets"])
    assert all("decision" not in f for t in data["targets"] for f in t["findings"])


@pytest.mark.parametrize("fmt", UNCHANGED, ids=lambda fmt: fmt.value)
def test_an_old_report_renders_as_it_did(legacy: Report, fmt: OutputFormat) -> None:
    assert render(legacy, fmt) == _expected(fmt).decode("utf-8")


def _without_new_facts(facts: dict[str, Any]) -> dict[str, Any]:
    for group, fields in NEW_FACT_FIELDS.items():
        for name in fields:
            assert facts[group].pop(name) == {"status": "not_probed", "value": None, "error": None, "source": None}
    for group, fields in NEW_NULL_FACT_FIELDS.items():
        for name in fields:
            assert facts[group].pop(name) is None
    for group, fields in NEW_LIST_FACT_FIELDS.items():
        for name in fields:
            assert facts[group].pop(name) == []
    for name in NEW_TOP_LIST_FACT_FIELDS:
        assert facts.pop(name) == []
    return facts


def _without_new_fields(data: dict[str, Any]) -> dict[str, Any]:
    data = {k: v for k, v in data.items() if k not in NEW_REPORT_FIELDS}
    data["gate"] = {k: v for k, v in data["gate"].items() if k not in NEW_GATE_FIELDS}
    data["targets"] = [
        {k: v for k, v in t.items() if k not in NEW_TARGET_FIELDS}
        | {"facts": _without_new_facts(t["facts"])}
        | {"findings": [{k: v for k, v in f.items() if k not in ("decision", "section")} for f in t["findings"]]}
        for t in data["targets"]
    ]
    return data


def test_an_old_report_keeps_everything_it_recorded(legacy: Report) -> None:
    """Rendered as JSON it is the saved report, key for key, plus the decisions derived when it was read."""
    rendered = render(legacy, OutputFormat.json)
    assert json.dumps(_without_new_fields(json.loads(rendered)), indent=2) + "\n" == LEGACY.read_text("utf-8")
    assert (legacy.verdict, legacy.exit_code) == ("fail", 1)
    assert [t.gate_verdict for t in legacy.targets] == ["pass", "pass", "fail", "error"]


def _decisions(report: Report) -> list[list[tuple[str | None, str | None]]]:
    return [
        [
            (f.decision.state, f.decision.waiver and f.decision.waiver.reason) if f.decision else (None, None)
            for f in t.findings
        ]
        for t in report.targets
    ]


def test_the_decisions_derived_are_those_a_run_writes(legacy: Report, tmp_path: Path) -> None:
    """Judging the saved facts again through the same scenario's gate writes the decisions the reader derived."""
    assert legacy.started_at == START  # the day that decides which waivers are in force
    fresh = _judge(tmp_path, [t.facts for t in legacy.targets])
    assert _decisions(legacy) == _decisions(fresh)
    assert [t.gate_verdict for t in legacy.targets] == [t.gate_verdict for t in fresh.targets]
    assert (legacy.verdict, legacy.exit_code) == (fresh.verdict, fresh.exit_code)


def test_report_render_of_an_old_report(tlsgate: Any, tmp_path: Path) -> None:
    """The command line renders the old report to every format, byte for byte as before."""
    args = [f"--format={fmt.value}={tmp_path / f'out{FILE_SUFFIXES[fmt]}'}" for fmt in UNCHANGED]
    result = tlsgate("report", "render", str(LEGACY), *args)
    assert result.code == 0, result.stderr
    for fmt in UNCHANGED:
        assert (tmp_path / f"out{FILE_SUFFIXES[fmt]}").read_bytes() == _expected(fmt), fmt.value
