"""The gate, in memory: the exit code from findings and --fail-on, waivers files, baselines, and applying them."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from scanner.exitcodes import EXIT_CODE_HELP, ExitCode, gate_exit_code, gate_verdict, report_exit_code
from scanner.facts import Facts, TargetInfo
from scanner.findings import Finding, Status
from scanner.gate import (
    Baseline,
    Gate,
    GateFileError,
    WaiverFile,
    apply_gate,
    baseline_text,
    load_baseline,
    load_waivers,
    make_baseline,
    matches,
    parse_severity,
    target_names,
)
from scanner.pipeline import judge
from scanner.policy.pack import resolve_pack
from scanner.report import Report, ScanOptions
from scanner.saved import SavedFileError, read_report
from tests.helpers import REPO, protocol_facts, run_tlsgate

TODAY = date(2026, 3, 15)
START = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


def _f(rule: str = "R-1", status: Status = Status.failed, severity: str = "high", **extra: object) -> Finding:
    return Finding.model_validate(
        {"pack": "p", "rule": rule, "title": f"title {rule}", "severity": severity, "status": status,
         "message": "observed", "evidence": {"observed": "TLSv1.2"}, **extra}
    )  # fmt: skip


# --- the exit code ----------------------------------------------------------------------------------------

FAIL, ERROR, PASS, WAIVED, NA = Status.failed, Status.error, Status.passed, Status.waived, Status.not_applicable


@pytest.mark.parametrize(
    ("targets", "fail_on", "code"),
    [
        # (scanned, [(status, severity, in baseline)]) per target
        ([], "info", ExitCode.OK),
        ([(True, [])], "info", ExitCode.OK),
        ([(True, [(PASS, "high", False), (NA, "high", False)])], "info", ExitCode.OK),
        ([(True, [(FAIL, "info", False)])], "info", ExitCode.POLICY_FAILED),
        ([(True, [(FAIL, "high", False)])], "high", ExitCode.POLICY_FAILED),
        ([(True, [(FAIL, "critical", False)])], "high", ExitCode.POLICY_FAILED),
        ([(True, [(FAIL, "high", False)])], "critical", ExitCode.OK),
        ([(True, [(FAIL, "medium", False)])], "high", ExitCode.OK),
        ([(True, [(FAIL, "low", False), (FAIL, "medium", False)])], "medium", ExitCode.POLICY_FAILED),
        ([(True, [(FAIL, "high", True)])], "info", ExitCode.OK),
        ([(True, [(FAIL, "high", True), (FAIL, "low", False)])], "info", ExitCode.POLICY_FAILED),
        ([(True, [(FAIL, "high", True), (FAIL, "low", False)])], "medium", ExitCode.OK),
        ([(True, [(WAIVED, "critical", False)])], "info", ExitCode.OK),
        ([(True, [(ERROR, "high", False)])], "info", ExitCode.NOT_CHECKED),
        ([(True, [(ERROR, "low", False)])], "high", ExitCode.OK),
        ([(True, [(ERROR, "high", False), (FAIL, "high", True)])], "info", ExitCode.NOT_CHECKED),
        ([(True, [(ERROR, "high", False), (FAIL, "high", False)])], "info", ExitCode.POLICY_FAILED),
        ([(False, [])], "info", ExitCode.NOT_CHECKED),
        ([(False, [(ERROR, "low", False)])], "critical", ExitCode.NOT_CHECKED),
        ([(False, []), (True, [(FAIL, "high", False)])], "info", ExitCode.POLICY_FAILED),
        ([(False, []), (True, [(FAIL, "high", True)])], "info", ExitCode.NOT_CHECKED),
        ([(True, [(PASS, "high", False)]), (True, [(FAIL, "low", False)])], "info", ExitCode.POLICY_FAILED),
        ([(True, [(FAIL, "severe", False)])], "critical", ExitCode.POLICY_FAILED),
    ],
)
def test_gate_exit_code_table(targets, fail_on, code):
    """Only new failures at or above --fail-on fail the run; unscanned targets and counted inconclusive rules are 3."""
    built = [
        (scanned, [_f(f"R-{i}", status, severity, baseline=base) for i, (status, severity, base) in enumerate(found)])
        for scanned, found in targets
    ]
    assert gate_exit_code(built, fail_on) == code


def test_gate_verdict_defaults_to_any_failure():
    """With no gate options a target's gate verdict is its plain verdict: any failure fails."""
    assert gate_verdict(True, [_f(severity="info")]) == "fail"
    assert gate_verdict(True, [_f(status=PASS)]) == "pass"
    assert gate_verdict(False, []) == "error"


def test_report_exit_code_reads_the_recorded_fail_on(tmp_path):
    """A report's own --fail-on decides its exit code, so a re-rendered report keeps the same gate."""
    facts = _facts("a.example:443", ["TLSv1.2", "TLSv1.3"])
    report = judge([facts], [resolve_pack("tls13-only")], ScanOptions(timeout=1, packs=["tls13-only"]), START)
    assert report_exit_code(report) == ExitCode.POLICY_FAILED
    lenient = judge(
        [facts], [resolve_pack("tls13-only")], ScanOptions(timeout=1, packs=[]), START, Gate(fail_on="critical")
    )
    assert lenient.gate.fail_on == "critical"
    assert report_exit_code(lenient) == ExitCode.OK
    assert lenient.targets[0].verdict == "fail"  # the report still says what failed


def _first_words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())[:3]


def test_every_exit_code_is_documented():
    """--help's table and the README's list exactly the exit codes there are, 130 included, each with the same
    meaning (the same first words: the README says more)."""
    readme = (REPO / "README.md").read_text().split("### Exit codes", 1)[1].split("\n#", 1)[0]  # its own section
    in_help = {int(m[1]): m[2] for m in re.finditer(r"^\s+(\d+)\s+(\S.*)$", EXIT_CODE_HELP, re.MULTILINE)}
    in_readme = {int(m[1]): m[2] for m in re.finditer(r"^\| (\d+) \| (.+) \|$", readme, re.MULTILINE)}
    assert set(in_help) == {code.value for code in ExitCode}
    assert set(in_readme) == {code.value for code in ExitCode}
    for code in ExitCode:
        assert _first_words(in_help[code.value]) == _first_words(in_readme[code.value]), code


def test_help_shows_every_exit_code():
    """The real ``tlsgate --help`` (click keeps the table's layout), not only the constant."""
    shown = run_tlsgate("--help", timeout=60).stdout
    for code in ExitCode:
        assert re.search(rf"^\s+{code.value}\s+\S", shown, re.MULTILINE), code


@pytest.mark.parametrize(("text", "severity"), [("high", "high"), (" CRITICAL ", "critical"), ("hgih", None)])
def test_parse_severity(text, severity):
    """--fail-on takes a severity in any case; anything else is not one."""
    assert parse_severity(text) == severity


# --- patterns ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "text", "matched"),
    [
        ("api.internal:443", "API.internal:443", True),
        ("*.internal:*", "mq.internal:1414", True),
        ("*.internal:*", "mq.internal", False),
        ("[::1]:8443", "[::1]:8443", True),  # brackets are literal, not a character class
        ("[::1]:8443", ":", False),
        ("TLS13ONLY-00?", "TLS13ONLY-001", True),
        ("TLS13ONLY-00?", "TLS13ONLY-0010", False),
        ("a.b", "axb", False),  # '.' is literal
    ],
)
def test_patterns(pattern, text, matched):
    """'*' is any text, '?' one character, case-insensitively; every other character is itself."""
    assert matches(pattern, text) is matched


def _info(label: str, host: str, port: int, source: str = "network") -> TargetInfo:
    return TargetInfo(input=label, host=host, port=port, server_name=None, ip_address=None, source=source)


def test_target_names_add_host_port():
    """A target written as a URL or without a port is also matched as host:port, a certificate file by its name."""
    assert target_names(_info("https://api.internal", "api.internal", 443)) == (
        "https://api.internal",
        "api.internal:443",
    )
    assert target_names(_info("api.internal:443", "api.internal", 443)) == ("api.internal:443",)
    assert target_names(_info("::1", "::1", 8443)) == ("::1", "[::1]:8443")
    assert target_names(_info("certs/client.pem", "client.pem", 0, "file")) == ("certs/client.pem", "client.pem")


# --- waivers files ----------------------------------------------------------------------------------------

VALID = """\
waivers:
  - rule: tls13-only/TLS13ONLY-001
    target: "legacy.internal:*"
    reason: Vendor appliance, TLS 1.3 firmware due in Q3
    owner: platform-team@example.com
    expires: 2026-09-30
  - rule: "CERT-*"
    target: "*"
    reason: "Internal CA, accepted by the risk board"
    owner: security
    expires: "2026-03-15"
"""


def test_waivers_file_loads(tmp_path):
    """A valid waivers file gives its waivers in order, each with the line it starts on."""
    path = tmp_path / "waivers.yaml"
    path.write_text(VALID)
    loaded = load_waivers(path)
    assert [w.rule for w in loaded.waivers] == ["tls13-only/TLS13ONLY-001", "CERT-*"]
    assert loaded.waivers[0].expires == date(2026, 9, 30)
    assert loaded.waivers[1].expires == date(2026, 3, 15)
    assert [w.source for w in loaded.waivers] == [f"{path}:2", f"{path}:7"]


def test_empty_waivers_list_is_valid(tmp_path):
    """A team with no waivers yet can keep an empty list."""
    path = tmp_path / "w.yaml"
    path.write_text("waivers: []\n")
    assert load_waivers(path).waivers == ()


def test_every_problem_of_a_waivers_file_has_its_position(tmp_path):
    """Every problem of every waiver is reported together, each as file:line:column."""
    path = tmp_path / "w.yaml"
    path.write_text(
        "waivers:\n"
        "  - rule: TLS13ONLY-001\n"  # 2: missing owner and expires
        "    target: a\n"
        "    reason: r\n"
        "  - rule: 'not a rule!'\n"  # 5
        "    target: a\n"
        "    reason: r\n"
        "    owner: o\n"
        "    expires: 2026-02-30\n"  # 9: no such day
        "  - rule: R\n"  # 10
        "    target: a\n"
        "    reason: ''\n"  # 12: empty reason
        "    owner: o\n"
        "    expire: 2026-01-01\n"  # 14: typo
        "  - rule: R\n"
        "    target: a\n"
        "    reason: r\n"
        "    owner: o\n"
        "    expires: 2026-01-01T10:00:00\n"  # 19: a time, not a date
        "  - just text\n"  # 20
    )
    with pytest.raises(GateFileError) as caught:
        load_waivers(path)
    lines = [str(p) for p in caught.value.problems]
    expected = [
        (2, "waiver is missing 'owner', 'expires'"),
        (5, "is not PACK/RULE-ID or RULE-ID"),
        (9, "YAML value"),
        (10, "waiver is missing 'expires'"),
        (14, "unknown waiver key 'expire' (did you mean 'expires'?)"),
        (19, "'expires' must be a date"),
        (20, "a waiver is a mapping"),
    ]
    for line, text in expected:
        assert any(p.startswith(f"{path}:{line}:") and text in p for p in lines), (line, text, lines)
    assert sum(p.startswith(f"{path}:9:") for p in lines) == 1  # the bad date once, not again as "not a date"


# A waivers file that is not a mapping with a list of waivers, and a baseline that is not JSON or not a tlsgate
# baseline, each say so in a problem that points into the file.
MALFORMED_GATE_FILES = [
    (load_waivers, "w.yaml", "", "waivers file is empty"),
    (load_waivers, "w.yaml", "waivers: [\n", "YAML syntax"),
    (load_waivers, "w.yaml", "- rule: R\n", "a mapping with one key, 'waivers'"),
    (load_waivers, "w.yaml", "waivers: {}\n", "'waivers' must be a list"),
    (load_waivers, "w.yaml", "waivers: []\nwaiver: []\n", "unknown key 'waiver'"),
    (load_baseline, "b.json", "{", "not valid JSON"),
    (
        load_baseline,
        "b.json",
        '{"kind": "tlsgate-baseline", "schema_version": "1", "sources": []}',
        "findings: Field required",
    ),
    (load_baseline, "b.json", "[]", "not a tlsgate baseline"),
]


@pytest.mark.parametrize(
    ("load", "name", "text", "message"),
    MALFORMED_GATE_FILES,
    ids=[f"{c[0].__name__}-{c[3]}" for c in MALFORMED_GATE_FILES],
)
def test_malformed_gate_files(tmp_path, load, name, text, message):
    """The file is refused with a problem that names it and says what is wrong."""
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(GateFileError) as caught:
        load(path)
    assert any(message in str(p) and str(p).startswith(f"{path}:") for p in caught.value.problems)


def test_unreadable_waivers_file(tmp_path):
    """A waivers file that is not there is one problem about the whole file."""
    with pytest.raises(GateFileError) as caught:
        load_waivers(tmp_path / "missing.yaml")
    (problem,) = caught.value.problems
    assert problem.line == 0 and "cannot read" in problem.message


# --- applying waivers and the baseline --------------------------------------------------------------------


def _waivers(tmp_path: Path, body: str) -> WaiverFile:
    path = tmp_path / "w.yaml"
    path.write_text("waivers:\n" + body)
    return load_waivers(path)


def _waiver(rule: str, target: str, expires: str, owner: str = "ops") -> str:
    return f"  - {{rule: '{rule}', target: '{target}', reason: why, owner: {owner}, expires: {expires}}}\n"


def test_a_waiver_in_force_waives_a_failure(tmp_path):
    """A covering waiver in force turns a failure into waived, with the waiver in its evidence."""
    gate = Gate(waivers=_waivers(tmp_path, _waiver("p/R-1", "a:*", "2026-03-15")))
    (findings,), info = apply_gate(gate, [(("a:443",), [_f("R-1"), _f("R-2")])], TODAY)
    assert [f.status for f in findings] == [WAIVED, FAIL]
    assert findings[0].evidence.observed == "TLSv1.2"  # the rule's own evidence is kept
    assert findings[0].evidence.waiver.model_dump(mode="json") == {
        "rule": "p/R-1", "target": "a:*", "reason": "why", "owner": "ops", "expires": "2026-03-15",
        "source": f"{tmp_path / 'w.yaml'}:2",
    }  # fmt: skip
    (use,) = info.waivers
    assert use.status == "applied"
    assert [(r.target, r.pack, r.rule) for r in use.findings] == [("a:443", "p", "R-1")]


def test_an_expired_waiver_applies_to_nothing(tmp_path):
    """From the day after its expiry date a waiver waives nothing and lists the findings that fail again."""
    gate = Gate(waivers=_waivers(tmp_path, _waiver("R-1", "*", "2026-03-14")))
    (findings,), info = apply_gate(gate, [(("a:443",), [_f("R-1")])], TODAY)
    assert [f.status for f in findings] == [FAIL]
    (use,) = info.waivers
    assert use.status == "expired" and len(use.findings) == 1


def test_an_expired_waiver_that_matches_nothing_is_still_expired(tmp_path):
    """An expired waiver is reported as expired whether or not it would have matched anything."""
    gate = Gate(waivers=_waivers(tmp_path, _waiver("R-9", "*", "2020-01-01")))
    _, info = apply_gate(gate, [(("a:443",), [_f("R-1")])], TODAY)
    assert [(u.status, u.findings) for u in info.waivers] == [("expired", [])]


def test_unused_waiver_and_untouched_statuses(tmp_path):
    """A waiver in force that covers no failure is unused; passes and inconclusive rules are never waived."""
    gate = Gate(waivers=_waivers(tmp_path, _waiver("*", "*", "2027-01-01")))
    (findings,), info = apply_gate(gate, [(("a:443",), [_f("R-1", PASS), _f("R-2", ERROR), _f("R-3", NA)])], TODAY)
    assert [f.status for f in findings] == [PASS, ERROR, NA]
    assert info.waivers[0].status == "unused"


def test_first_waiver_in_force_wins(tmp_path):
    """An expired waiver listed first does not block a later one in force; both list the finding."""
    body = _waiver("R-1", "*", "2020-01-01", "old") + _waiver("R-1", "a:443", "2027-01-01", "new")
    gate = Gate(waivers=_waivers(tmp_path, body))
    (findings,), info = apply_gate(gate, [(("a:443",), [_f("R-1")])], TODAY)
    assert findings[0].status == WAIVED and findings[0].evidence.waiver.owner == "new"
    assert [u.status for u in info.waivers] == ["expired", "applied"]


def test_waiver_matches_pack_rule_and_target(tmp_path):
    """A waiver names the pack (optional), the rule and the target; each must match."""
    body = _waiver("other/R-1", "*", "2027-01-01") + _waiver("R-1", "b:*", "2027-01-01")
    gate = Gate(waivers=_waivers(tmp_path, body))
    (findings,), info = apply_gate(gate, [(("a:443",), [_f("R-1")])], TODAY)
    assert findings[0].status == FAIL
    assert [u.status for u in info.waivers] == ["unused", "unused"]


def test_waiver_matches_host_port_of_a_url_target(tmp_path):
    """A waiver on host:port covers a target written as a URL."""
    gate = Gate(waivers=_waivers(tmp_path, _waiver("R-1", "api.internal:443", "2027-01-01")))
    names = target_names(_info("https://api.internal", "api.internal", 443))
    (findings,), _ = apply_gate(gate, [(names, [_f("R-1")])], TODAY)
    assert findings[0].status == WAIVED


def test_baseline_marks_known_failures_only():
    """A failure the baseline lists is marked, still failing; other failures, targets and rules are not."""
    gate = Gate(baseline=Baseline("b.json", frozenset({("a:443", "p", "R-1")})))
    (on_a, on_b), info = apply_gate(
        gate, [(("a:443",), [_f("R-1"), _f("R-2"), _f("R-1", ERROR)]), (("b:443",), [_f("R-1")])], TODAY
    )
    assert [(f.status, f.baseline) for f in on_a] == [(FAIL, True), (FAIL, False), (ERROR, False)]
    assert [(f.status, f.baseline) for f in on_b] == [(FAIL, False)]
    assert info.baseline == "b.json"


def test_waiver_outranks_baseline(tmp_path):
    """A failure both waived and in the baseline is waived (the baseline mark is for failures only)."""
    gate = Gate(
        waivers=_waivers(tmp_path, _waiver("R-1", "*", "2027-01-01")),
        baseline=Baseline("b.json", frozenset({("a:443", "p", "R-1")})),
    )
    (findings,), _ = apply_gate(gate, [(("a:443",), [_f("R-1")])], TODAY)
    assert (findings[0].status, findings[0].baseline) == (WAIVED, False)


# --- baseline files ---------------------------------------------------------------------------------------


def _facts(target: str, accepted: list[str], scanned: bool = True) -> Facts:
    return protocol_facts(target, accepted, START, scanned=scanned)


def _report(facts: list[Facts], gate: Gate | None = None, when: datetime = START) -> Report:
    return judge(facts, [resolve_pack("tls13-only")], ScanOptions(timeout=1, packs=["tls13-only"]), when, gate)


def test_baseline_lists_failures_sorted_and_once():
    """A baseline holds each failing (target, pack, rule) once, sorted; passes, errors and waivers are left out."""
    first = _report([_facts("b:443", ["TLSv1.2"]), _facts("a:443", ["TLSv1.2", "TLSv1.3"]), _facts("c:1", [], False)])
    again = _report([_facts("a:443", ["TLSv1.2", "TLSv1.3"])])
    baseline = make_baseline([("one.json", first), ("two.json", again)])
    assert [(e.target, e.rule) for e in baseline.findings] == [
        ("a:443", "TLS13ONLY-001"),
        ("b:443", "TLS13ONLY-001"),
        ("b:443", "TLS13ONLY-002"),
    ]
    assert [s.report for s in baseline.sources] == ["one.json", "two.json"]


def test_waived_findings_stay_out_of_the_baseline(tmp_path):
    """A waived failure is not baselined, so it fails again once its waiver expires."""
    gate = Gate(waivers=_waivers(tmp_path, _waiver("TLS13ONLY-001", "*", "2026-03-15")))
    report = _report([_facts("a:443", ["TLSv1.2", "TLSv1.3"])], gate)
    assert make_baseline([("r.json", report)]).findings == []
    later = _report([_facts("a:443", ["TLSv1.2", "TLSv1.3"])], gate, START + timedelta(days=1))
    assert report_exit_code(later) == ExitCode.POLICY_FAILED


def test_baseline_file_round_trip(tmp_path):
    """A baseline written by baseline_text loads back with the same keys, and is the same bytes every time."""
    report = _report([_facts("a:443", ["TLSv1.2", "TLSv1.3"])])
    text = baseline_text(make_baseline([("r.json", report)]))
    assert text == baseline_text(make_baseline([("r.json", report)]))
    path = tmp_path / "baseline.json"
    path.write_text(text)
    assert load_baseline(path).keys == {("a:443", "tls13-only", "TLS13ONLY-001")}
    assert json.loads(text)["kind"] == "tlsgate-baseline"


def test_baseline_then_new_failure():
    """The first run's baseline makes the second run pass; a new failing target then fails it."""
    first = _report([_facts("a:443", ["TLSv1.2", "TLSv1.3"])])
    assert report_exit_code(first) == ExitCode.POLICY_FAILED
    keys = frozenset(e.key for e in make_baseline([("r.json", first)]).findings)
    gate = Gate(baseline=Baseline("b.json", keys))
    second = _report([_facts("a:443", ["TLSv1.2", "TLSv1.3"])], gate)
    assert report_exit_code(second) == ExitCode.OK
    third = _report([_facts("a:443", ["TLSv1.2", "TLSv1.3"]), _facts("b:443", ["TLSv1.2", "TLSv1.3"])], gate)
    assert report_exit_code(third) == ExitCode.POLICY_FAILED


def test_a_report_is_not_a_baseline(tmp_path):
    """Giving a report where a baseline is due says how to make the baseline."""
    path = tmp_path / "report.json"
    path.write_text(_report([_facts("a:443", ["TLSv1.3"])]).model_dump_json())
    with pytest.raises(GateFileError, match="tlsgate baseline create"):
        load_baseline(path)


def test_read_report_rejects_facts(tmp_path):
    """baseline create needs a report: facts alone have no findings to accept."""
    path = tmp_path / "facts.json"
    path.write_text(_facts("a:443", ["TLSv1.3"]).model_dump_json())
    with pytest.raises(SavedFileError, match="not a tlsgate JSON report"):
        read_report(path)
