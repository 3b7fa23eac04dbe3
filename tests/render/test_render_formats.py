"""The SARIF, JUnit, Markdown and CSV renderers, on a report built in memory (no network)."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import jsonschema
import pytest
from junitparser import Error, Failure, JUnitXml, Skipped

from scanner.facts import ErrorClass, Facts, ProbeError, TargetInfo
from scanner.findings import SEVERITIES, Finding, Status
from scanner.render import OutputFormat, csv_report, junit, markdown, render, sarif, write_atomic_all
from scanner.report import PackInfo, Report, ScanOptions, TargetReport, summarise
from scanner.schemas import schema_dir
from scanner.textsafe import printable, printable_lines
from tests.helpers import decided_report, target_report

START = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
# Strings a hostile server or a careless pack author could put in a report.
HOSTILE = 'a|b *c* [x](https://evil.example) <script>\x07 "q", =HYPERLINK("x")\nsecond line'


def _facts(host: str, port: int = 443, error: ProbeError | None = None) -> Facts:
    info = TargetInfo(input=f"{host}:{port}", host=host.strip("[]"), port=port, server_name=None, ip_address=None)
    status = "error" if error else "ok"
    return Facts(target=info, started_at=START, finished_at=START + timedelta(seconds=2), status=status, error=error)


def _finding(rule: str, status: Status, severity: str = "high", message: str = "observed", **extra: object) -> Finding:
    fields: dict[str, object] = {
        "pack": "demo-pack",
        "rule": rule,
        "title": f"title of {rule}",
        "severity": severity,
        "status": status,
        "message": message,
        "evidence": {"observed": ["TLSv1.2"]},
        "rationale": f"why {rule}",
        "remediation": f"fix {rule}",
        "references": ["RFC 8446", "https://www.rfc-editor.org/rfc/rfc8446"],
    }
    fields.update(extra)
    return Finding.model_validate(fields)


def _target(facts: Facts, findings: list[Finding], name: str | None = None) -> TargetReport:
    return target_report(facts, findings, name)


@pytest.fixture
def report() -> Report:
    """Four targets: one passing, one failing twice (plus an inconclusive rule), a hostile one, an unreachable one."""
    refused = ProbeError(error_class=ErrorClass.refused, message="connection refused")
    targets = [
        _target(
            _facts("good.example"),
            [
                _finding("R-1", Status.passed),
                _finding("R-2", Status.not_applicable, "low"),
                _finding("R-3", Status.waived, "medium"),
            ],
        ),
        _target(
            _facts("bad.example"),
            [
                _finding("R-1", Status.failed, "high", "TLSv1.2 accepted"),
                _finding("R-2", Status.failed, "low"),
                _finding("R-3", Status.error, "medium", "could not observe sessions"),
                _finding("R-4", Status.passed, "info"),
            ],
        ),
        _target(
            _facts("[::1]", 8443),
            [_finding("R-5", Status.failed, "critical", HOSTILE, title=HOSTILE, remediation=HOSTILE)],
            name=f"[::1]:8443 {HOSTILE}",
        ),
        _target(
            _facts("down.example", error=refused),
            [_finding("R-1", Status.error, "high", "not scanned: connection refused")],
        ),
    ]
    return decided_report(
        started_at=START,
        finished_at=START + timedelta(seconds=9),
        options=ScanOptions(timeout=5, packs=["demo-pack"]),
        packs=[PackInfo(id="demo-pack", title="Demo", version="1.0", sha256="0" * 64, rules=5)],
        targets=targets,
        summary=summarise(targets),
    )


def _sarif_schema() -> dict:
    return json.loads((schema_dir() / "sarif-2.1.0.json").read_text(encoding="utf-8"))


def _validate_sarif(log: dict) -> None:
    validator = jsonschema.Draft7Validator(_sarif_schema(), format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    validator.validate(log)


def test_vendored_sarif_schema_is_the_oasis_schema():
    """The vendored schema is the OASIS SARIF 2.1.0 schema (draft-07) and is itself a valid JSON Schema."""
    schema = _sarif_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["title"] == "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema"
    assert schema["properties"]["version"]["enum"] == ["2.1.0"]


def test_format_checks_are_really_applied():
    """uri and date-time formats are checked (their validators are dev dependencies), so a bad value fails."""
    checker = jsonschema.Draft7Validator.FORMAT_CHECKER
    assert not checker.conforms("not a uri", "uri")
    assert not checker.conforms("2026-01-02 03:04", "date-time")


def test_sarif_validates_and_has_one_result_per_failed_rule_per_target(report):
    """The SARIF log validates; results are exactly the failed and waived findings; rules are listed once each."""
    log = json.loads(sarif.render(report))
    _validate_sarif(log)
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("tlsgate", report.tool.version)
    assert driver["informationUri"].startswith("https://")
    ids = [rule["id"] for rule in driver["rules"]]
    assert ids == sorted(set(ids), key=ids.index)  # no duplicates
    assert set(ids) == {f"demo-pack/R-{n}" for n in range(1, 6)}
    # every string is shown printable: the hostile target's BEL arrives as the text \x07
    assert [a["description"]["text"] for a in run["artifacts"]] == [printable_lines(t.target) for t in report.targets]
    failed = [
        (printable_lines(t.target), f"demo-pack/{f.rule}")
        for t in report.targets
        for f in t.findings
        if f.status in ("fail", "waived")
    ]
    results = [(r["properties"]["target"], r["ruleId"]) for r in run["results"]]
    assert results == failed
    assert ["suppressions" in r for r in run["results"]] == [True, False, False, False]  # the waived one
    for result in run["results"]:
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].startswith("tls://")
    assert run["results"][1]["message"]["text"] == "TLSv1.2 accepted"
    assert run["results"][1]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "tls://bad.example:443"
    ipv6 = run["results"][3]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert ipv6 == "tls://[::1]:8443"


def test_sarif_rule_metadata_carries_help(report):
    """A rule's title, rationale and remediation become its descriptions and help; a web reference its helpUri."""
    rules = {r["id"]: r for r in json.loads(sarif.render(report))["runs"][0]["tool"]["driver"]["rules"]}
    rule = rules["demo-pack/R-1"]
    assert rule["name"] == "R-1"
    assert rule["shortDescription"]["text"] == "title of R-1"
    assert rule["fullDescription"]["text"] == "why R-1"
    assert rule["help"]["text"] == "fix R-1"
    assert rule["helpUri"] == "https://www.rfc-editor.org/rfc/rfc8446"  # the first reference that is a URL
    assert rule["defaultConfiguration"]["level"] == "error"
    assert rule["properties"]["security-severity"] == "8.0"
    assert "security" in rule["properties"]["tags"]


@pytest.mark.parametrize(
    ("severity", "level"),
    [("critical", "error"), ("high", "error"), ("medium", "warning"), ("low", "note"), ("info", "note")],
)
def test_sarif_level_per_severity(severity, level):
    """Severities map to SARIF levels through the one table: critical/high error, medium warning, low/info note."""
    assert sarif.sarif_severity(severity).level == level


def test_sarif_severity_table_covers_every_severity():
    """Every severity a pack may declare has a row in the SARIF table, and no row is for an unknown one."""
    assert set(sarif.SEVERITY_TABLE) == set(SEVERITIES)


def test_sarif_could_not_check_is_a_notification_not_a_result(report):
    """An unreachable target and an inconclusive rule become tool notifications; the run is then not successful."""
    (invocation,) = json.loads(sarif.render(report))["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is False
    notes = invocation["toolExecutionNotifications"]
    texts = [n["message"]["text"] for n in notes]
    assert texts == [
        "bad.example:443: demo-pack/R-3 could not be checked: could not observe sessions",
        "down.example:443: could not be scanned (refused: connection refused)",
    ]
    assert [n["level"] for n in notes] == ["warning", "error"]
    assert notes[0]["associatedRule"]["id"] == "demo-pack/R-3"


def test_sarif_fingerprints_are_stable_and_distinct(report):
    """The same target and rule give the same fingerprint in every run; different ones never collide."""
    first = [r["partialFingerprints"] for r in json.loads(sarif.render(report))["runs"][0]["results"]]
    again = [r["partialFingerprints"] for r in json.loads(sarif.render(report))["runs"][0]["results"]]
    assert first == again
    assert len({json.dumps(f) for f in first}) == len(first)


def test_sarif_uri_of_a_certificate_file():
    """A certificate file judged by `tlsgate cert` is located by its path, relative as given or as a file URI."""
    info = TargetInfo(input="certs/my server.pem", host="my server.pem", port=0, server_name=None, ip_address=None)
    facts = Facts(target=info.model_copy(update={"source": "file"}), started_at=START, finished_at=START, status="ok")
    assert sarif.target_uri(facts) == "certs/my%20server.pem"
    absolute = facts.model_copy(update={"target": facts.target.model_copy(update={"input": "/etc/ssl/a.pem"})})
    assert sarif.target_uri(absolute) == "file:///etc/ssl/a.pem"


def test_junit_counts_and_names(report):
    """junitparser reads one suite per target with the right counts; cases are named [SEVERITY][RULE-ID] title."""
    xml = JUnitXml.fromstring(junit.render(report))
    suites = list(xml)
    assert [s.name for s in suites] == [printable(t.target) for t in report.targets]
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (9, 3, 2, 2)
    counts = [(s.tests, s.failures, s.errors, s.skipped) for s in suites]
    assert counts == [(3, 0, 0, 2), (4, 2, 1, 0), (1, 1, 0, 0), (1, 0, 1, 0)]
    bad = suites[1]
    cases = {case.name: case for case in bad}
    case = cases["[HIGH][R-1] title of R-1"]
    assert case.classname == "bad.example:443"
    (failure,) = case.result
    assert isinstance(failure, Failure)
    assert failure.message == "TLSv1.2 accepted"
    assert failure.type == "high"
    assert '"TLSv1.2"' in failure.text and "fix R-1" in failure.text  # the evidence and the remediation
    assert isinstance(cases["[MEDIUM][R-3] title of R-3"].result[0], Error)
    assert cases["[INFO][R-4] title of R-4"].is_passed
    good = {case.name: case for case in suites[0]}
    assert all(isinstance(good[name].result[0], Skipped) for name in good if "R-1" not in name)


def test_junit_every_status_has_an_outcome():
    """Each finding status maps to a JUnit outcome in the one table (a new status cannot be forgotten)."""
    assert set(junit.OUTCOMES) == set(Status)


def test_junit_keeps_hostile_text_well_formed(report):
    """Control characters, quotes and markup from a server leave the XML well-formed and the text readable."""
    xml = JUnitXml.fromstring(junit.render(report))
    hostile = list(xml)[2]
    assert hostile.name.startswith("[::1]:8443 a|b *c*")
    (case,) = hostile
    assert "\\x07" in case.result[0].message and "<script>" in case.result[0].message


def _table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


def _cells(row: str) -> list[str]:
    """Split a GitHub table row on unescaped pipes, as GitHub does."""
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", row.strip())[1:-1]]


def test_markdown_summary_table(report):
    """One table row per target with its verdict and failed counts by severity, then the failures per target."""
    text = markdown.render(report)
    assert text.startswith("## \u274c tlsgate: policy violated\n")
    header, align, *rows = _table_rows(text)
    assert _cells(header) == ["Target", "Verdict", "Critical", "High", "Medium", "Low", "Info", "Not checked"]
    assert len(rows) == len(report.targets)
    assert all(len(_cells(row)) == len(_cells(header)) for row in [align, *rows])  # hostile pipes stay escaped
    assert _cells(rows[0])[1:] == ["\u2705 pass", "0", "0", "0", "0", "0", "0"]
    assert _cells(rows[1])[1:] == ["\u274c fail", "0", "1", "0", "1", "0", "1"]
    assert _cells(rows[3])[1:] == ["\u26a0\ufe0f not checked", "0", "0", "0", "0", "0", "1"]
    assert "- **high** fail \u00b7 demo\\-pack/R\\-1" not in text  # list markers are not escaped needlessly
    assert "- **high** fail \u00b7 demo-pack/R-1 \u00b7 title of R-1: TLSv1.2 accepted" in text
    assert "Not scanned: refused: connection refused" in text
    assert not re.search(r"^### .*good\.example", text, re.MULTILINE)  # a passing target has no details
    assert "- **medium** good.example:443 \u00b7 demo-pack/R-3" in text.split("### Waived", 1)[1]  # but its waiver


def test_markdown_escapes_server_text(report):
    """Text from a server cannot open a link, an HTML tag, emphasis or a new line in the summary."""
    text = markdown.render(report)
    assert "<script>" not in text and "](https" not in text and "*c*" not in text
    assert "\\<script\\>" in text and "\\*c\\*" in text
    assert "https:\\/\\/evil" in text  # no bare-URL autolink either
    assert "\nsecond line" not in text


def test_markdown_stays_within_a_comment(report):
    """Many failing targets are cut with a note rather than making a comment GitHub would refuse."""
    many = [t.model_copy(update={"target": f"host{i}.example:443"}) for i in range(2000) for t in report.targets[1:2]]
    big = report.model_copy(update={"targets": many, "summary": summarise(many)})
    text = markdown.render(big)
    details = text.split("\n\n### ", 1)[1]
    assert len(details) < markdown.MAX_DETAIL_CHARS + 1000
    assert "more not shown here: see the full report" in text


def test_csv_one_row_per_finding(report):
    """The CSV (RFC 4180: CRLF, quoted fields) reads back as one row per finding with the documented columns."""
    text = csv_report.render(report)
    assert text.endswith("\r\n") and "\r\n" in text.split("\n", 1)[0] + "\n"
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert tuple(rows[0]) == csv_report.COLUMNS
    findings = [(t, f) for t in report.targets for f in t.findings]
    assert len(rows) - 1 == len(findings)
    first_target = findings[0][0]
    assert rows[1] == [
        first_target.target, "demo-pack", "R-1", "high", "pass", "title of R-1", "observed", "fix R-1", "", "",
    ]  # fmt: skip  # the last two: the gate (nothing to count), the grade (no suites observed: none)
    assert [row[-2] for row in rows[2:4]] == ["", "waived"]  # the gate column: nothing to count, waived
    hostile = next(row for row in rows if row[2] == "R-5")
    assert hostile[6] == printable_lines(HOSTILE)  # commas, quotes and the newline survive, the BEL shown escaped


def test_csv_neutralises_formulas():
    """A cell a spreadsheet would run as a formula is prefixed with an apostrophe; other text is unchanged."""
    assert csv_report.cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert csv_report.cell("@SUM(A1)") == "'@SUM(A1)"
    assert csv_report.cell("TLSv1.2 accepted") == "TLSv1.2 accepted"


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_every_format_renders_the_whole_report(report, fmt):
    """Every format renders the four-target report, and names every target."""
    text = render(report, fmt)
    for name in ("good.example", "bad.example", "down.example"):
        assert name in text


def test_write_atomic_all_is_all_or_nothing(tmp_path, monkeypatch):
    """When the second report cannot be written, the first is not replaced either and no temp file is left."""
    first, second = tmp_path / "a.sarif", tmp_path / "b.csv"
    first.write_text("old a")
    second.write_text("old b")
    calls = []

    def fsync_failing_second(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr("scanner.render.files.os.fsync", fsync_failing_second)
    with pytest.raises(OSError, match="No space") as raised:
        write_atomic_all([(first, "new a"), (second, "new b")])
    assert raised.value.filename == str(second)
    assert (first.read_text(), second.read_text()) == ("old a", "old b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.sarif", "b.csv"]
