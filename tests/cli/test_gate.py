"""The gate end to end: --baseline, --waivers and --fail-on on the real command line against loopback servers."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import jsonschema
import pytest
from junitparser import JUnitXml, Skipped

from scanner.exitcodes import ExitCode
from scanner.schemas import schema_dir
from tests.helpers import python_tls_server, server_context

OLD_PROTOCOL = """\
id: old-protocol
title: An old protocol is offered
version: "1"
rules:
  - id: OLD-001
    title: TLS 1.1 is accepted
    severity: low
    fact: protocols
    some: {version: TLSv1.1, status: accepted}
"""


def _json(path: Path) -> dict:
    report = json.loads(path.read_text())
    jsonschema.validate(report, json.loads((schema_dir() / "report.schema.json").read_text()))
    return report


def _findings(report: dict, target: str) -> dict[str, dict]:
    (found,) = [t for t in report["targets"] if t["target"] == target]
    return {f["rule"]: f for f in found["findings"]}


def _waivers(tmp_path: Path, rule: str, target: str, expires: str) -> Path:
    path = tmp_path / "waivers.yaml"
    path.write_text(
        "waivers:\n"
        f"  - rule: {rule}\n"
        f"    target: '{target}'\n"
        "    reason: Vendor appliance; TLS 1.3 firmware is due in Q3\n"
        "    owner: platform-team\n"
        f"    expires: {expires}\n"
    )
    return path


def test_baseline_makes_second_run_pass_and_new_violations_fail(tlsgate, tls12_13_server, pki, tmp_path):
    """A baseline made from the first run makes the second pass; a new target or a new rule failing then fails it."""
    target = tls12_13_server.target
    first, baseline = tmp_path / "first.json", tmp_path / "baseline.json"
    run = tlsgate("scan", "--pack", "tls13-only", target, "--json", str(first))
    assert run.code == ExitCode.POLICY_FAILED, run.stdout + run.stderr

    made = tlsgate("baseline", "create", str(first), "-o", str(baseline))
    assert made.code == ExitCode.OK, made.stderr
    assert f"baseline: {baseline} (1 failing finding on 1 target)" in made.stdout
    entries = json.loads(baseline.read_text())["findings"]
    assert [(e["target"], e["pack"], e["rule"]) for e in entries] == [(target, "tls13-only", "TLS13ONLY-001")]

    second, junit = tmp_path / "second.json", tmp_path / "second.xml"
    run = tlsgate("scan", "--pack", "tls13-only", target, "--baseline", str(baseline), "--json", str(second),
                  "--format", f"junit={junit}")  # fmt: skip
    assert run.code == ExitCode.OK, run.stdout + run.stderr
    assert "fail (baseline) [high] TLS13ONLY-001" in run.stdout
    assert "gate: 0 failures counted; not counted: 1 in the baseline" in run.stdout
    report = _json(second)
    assert report["gate"]["baseline"] == str(baseline)
    assert report["targets"][0]["verdict"] == "fail"  # still out of policy, and the reports say so
    failed = _findings(report, target)["TLS13ONLY-001"]
    assert (failed["status"], failed["baseline"]) == ("fail", True)
    assert junit.exists()

    rendered = tmp_path / "rendered.json"
    assert tlsgate("report", "render", str(second), "--format", f"json={rendered}").code == ExitCode.OK
    assert _findings(_json(rendered), target)["TLS13ONLY-001"]["baseline"] is True

    with python_tls_server(server_context(pki, ssl.TLSVersion.TLSv1_2)) as other:
        third = tmp_path / "third.json"
        run = tlsgate(
            "scan", "--pack", "tls13-only", target, other.target, "--baseline", str(baseline), "--json", str(third)
        )
        assert run.code == ExitCode.POLICY_FAILED, run.stdout + run.stderr
        assert "gate: 1 failure counted; not counted: 1 in the baseline" in run.stdout
        report = _json(third)
        assert _findings(report, target)["TLS13ONLY-001"]["baseline"] is True
        assert _findings(report, other.target)["TLS13ONLY-001"]["baseline"] is False

    pack = tmp_path / "old.yaml"
    pack.write_text(OLD_PROTOCOL)
    run = tlsgate("scan", target, "--pack", "tls13-only", "--pack", str(pack), "--baseline", str(baseline))
    assert run.code == ExitCode.POLICY_FAILED, run.stdout + run.stderr
    assert "fail [low] OLD-001" in run.stdout


def test_expired_waiver_is_reported_and_does_not_apply(tlsgate, tls12_13_server, tmp_path):
    """An expired waiver waives nothing: the run fails, stderr warns, and the report lists it as expired."""
    waivers = _waivers(tmp_path, "tls13-only/TLS13ONLY-001", "127.0.0.1:*", "2020-01-31")
    out = tmp_path / "r.json"
    run = tlsgate("scan", "--pack", "tls13-only", tls12_13_server.target, "--waivers", str(waivers), "--json", str(out))
    assert run.code == ExitCode.POLICY_FAILED, run.stdout + run.stderr
    assert (
        f"tlsgate: warning: waiver {waivers}:2 (tls13-only/TLS13ONLY-001 on 127.0.0.1:*, owner platform-team) "
        "expired on 2020-01-31 and no longer applies; 1 finding it covered fails again"
    ) in run.stderr
    report = _json(out)
    (use,) = report["gate"]["waivers"]
    assert use["status"] == "expired"
    assert use["findings"] == [{"target": tls12_13_server.target, "pack": "tls13-only", "rule": "TLS13ONLY-001"}]
    assert _findings(report, tls12_13_server.target)["TLS13ONLY-001"]["status"] == "fail"


def test_valid_waiver_turns_exit_1_into_0(tlsgate, tls12_13_server, tmp_path):
    """A waiver in force waives the failure: exit 0, the finding is waived with its reason and owner."""
    waivers = _waivers(tmp_path, "TLS13ONLY-*", "127.0.0.1:*", "2999-12-31")
    out, junit = tmp_path / "r.json", tmp_path / "r.xml"
    run = tlsgate("scan", "--pack", "tls13-only", tls12_13_server.target, "--waivers", str(waivers), "--json", str(out),
                  "--format", f"junit={junit}")  # fmt: skip
    assert run.code == ExitCode.OK, run.stdout + run.stderr
    assert "gate: 0 failures counted; not counted: 1 waived" in run.stdout
    assert "warning" not in run.stderr
    report = _json(out)
    assert report["targets"][0]["verdict"] == "pass"
    waived = _findings(report, tls12_13_server.target)["TLS13ONLY-001"]
    assert waived["status"] == "waived"
    assert waived["evidence"]["waiver"]["owner"] == "platform-team"
    assert waived["evidence"]["offending"]  # what the rule saw is still there
    assert [u["status"] for u in report["gate"]["waivers"]] == ["applied"]
    cases = [c for suite in JUnitXml.fromfile(str(junit)) for c in suite if "TLS13ONLY-001" in c.name]
    assert [type(r) for c in cases for r in c.result] == [Skipped]


def test_fail_on_critical_ignores_a_high_failure(tlsgate, tls12_13_server, tmp_path):
    """--fail-on critical lets a high failure through (exit 0); --fail-on high does not (exit 1)."""
    out = tmp_path / "r.json"
    run = tlsgate("scan", "--pack", "tls13-only", tls12_13_server.target, "--fail-on", "critical", "--json", str(out))
    assert run.code == ExitCode.OK, run.stdout + run.stderr
    assert "gate: 0 failures counted; not counted: 1 below --fail-on critical" in run.stdout
    assert _json(out)["gate"]["fail_on"] == "critical"
    run = tlsgate("scan", "--pack", "tls13-only", tls12_13_server.target, "--fail-on", "HIGH")
    assert run.code == ExitCode.POLICY_FAILED, run.stdout + run.stderr


def test_could_not_check_survives_the_gate(tlsgate, tls12_13_server, refused_port, tmp_path):
    """A target that cannot be scanned is exit 3 whatever --fail-on says, and when the only failure is baselined."""
    run = tlsgate("scan", f"127.0.0.1:{refused_port}", "--fail-on", "critical", "--timeout", "2")
    assert run.code == ExitCode.NOT_CHECKED, run.stdout + run.stderr
    first, baseline = tmp_path / "first.json", tmp_path / "baseline.json"
    assert tlsgate("scan", tls12_13_server.target, "--json", str(first)).code == ExitCode.POLICY_FAILED
    assert tlsgate("baseline", "create", str(first), "-o", str(baseline)).code == ExitCode.OK
    run = tlsgate("scan", tls12_13_server.target, f"127.0.0.1:{refused_port}", "--baseline", str(baseline),
                  "--timeout", "2")  # fmt: skip
    assert run.code == ExitCode.NOT_CHECKED, run.stdout + run.stderr


def test_evaluate_applies_the_gate_offline(tlsgate, tls12_13_server, tmp_path):
    """evaluate re-judges a saved report through the same baseline, waivers and --fail-on as scan."""
    saved, baseline = tmp_path / "saved.json", tmp_path / "baseline.json"
    assert (
        tlsgate("scan", "--pack", "tls13-only", tls12_13_server.target, "--json", str(saved)).code
        == ExitCode.POLICY_FAILED
    )
    assert tlsgate("baseline", "create", str(saved), "-o", str(baseline)).code == ExitCode.OK
    assert tlsgate("evaluate", str(saved), "--pack", "tls13-only").code == ExitCode.POLICY_FAILED
    assert tlsgate("evaluate", str(saved), "--pack", "tls13-only", "--baseline", str(baseline)).code == ExitCode.OK
    waivers = _waivers(tmp_path, "TLS13ONLY-001", "*", "2999-01-01")
    assert tlsgate("evaluate", str(saved), "--pack", "tls13-only", "--waivers", str(waivers)).code == ExitCode.OK
    lenient = tlsgate("evaluate", str(saved), "--pack", "tls13-only", "--fail-on", "critical")
    assert lenient.code == ExitCode.OK


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fail-on", "hgih"], "--fail-on 'hgih': not a severity (did you mean 'high'?)"),
        (["--waivers", "{dir}/missing.yaml"], "cannot read waivers file"),
        (["--baseline", "{dir}/missing.json"], "cannot read tlsgate baseline"),
        (["--waivers", "{dir}/bad.yaml"], "{dir}/bad.yaml:3:5: unknown waiver key 'ower' (did you mean 'owner'?)"),
        (["--baseline", "{dir}/report.json"], "this is a tlsgate report, not a baseline"),
    ],
)
def test_bad_gate_options_are_usage_errors_before_scanning(tlsgate, tmp_path, refused_port, args, message):
    """A bad --fail-on, waivers or baseline file exits 2 with the problem and scans nothing."""
    (tmp_path / "bad.yaml").write_text(
        "waivers:\n  - rule: R-1\n    ower: me\n    target: '*'\n    reason: r\n    expires: 2030-01-01\n"
    )
    (tmp_path / "report.json").write_text('{"targets": []}')
    out = tmp_path / "r.json"
    args = [a.replace("{dir}", str(tmp_path)) for a in args]
    run = tlsgate("scan", f"127.0.0.1:{refused_port}", *args, "--json", str(out))
    assert run.code == ExitCode.USAGE, run.stdout + run.stderr
    assert message.replace("{dir}", str(tmp_path)) in run.stderr
    assert not out.exists()


def test_baseline_create_to_stdout_and_warnings(tlsgate, refused_port, tmp_path):
    """baseline create writes to stdout with -o -, and warns that an unscanned target's failures will be new."""
    saved = tmp_path / "saved.json"
    target = f"127.0.0.1:{refused_port}"
    assert tlsgate("scan", target, "--json", str(saved), "--timeout", "2").code == ExitCode.NOT_CHECKED
    run = tlsgate("baseline", "create", str(saved), "-o", "-")
    assert run.code == ExitCode.OK, run.stderr
    assert json.loads(run.stdout)["findings"] == []
    assert f"{target} was not scanned; any failure it has later is new" in run.stderr
    assert "baseline: standard output (0 failing findings on 0 targets)" in run.stderr


@pytest.mark.parametrize(
    ("content", "output", "message"),
    [
        (None, "b.json", "cannot read tlsgate JSON report"),
        ('{"target": {}}', "b.json", "not a tlsgate JSON report"),
        ('{"targets": []}', "no-such-dir/b.json", "directory"),
    ],
)
def test_baseline_create_usage_errors(tlsgate, tmp_path, content, output, message):
    """A missing or wrong report, or an unwritable output, is exit 2 and writes no baseline."""
    report = tmp_path / "report.json"
    if content is not None:
        report.write_text(content)
    run = tlsgate("baseline", "create", str(report), "-o", str(tmp_path / output))
    assert run.code == ExitCode.USAGE, run.stdout + run.stderr
    assert message in run.stderr
    assert not (tmp_path / output).exists()


HUGE_KEY = """\
id: huge-key
title: Leaf key size
version: "1"
rules:
  - id: KEY-001
    title: The leaf key is huge
    severity: medium
    fact: certificate.leaf.public_key.size
    min: 100000
"""


def test_cert_files_take_waivers_by_file_name(tlsgate, pki, tmp_path):
    """tlsgate cert takes --waivers too, a target pattern matching the certificate file's name."""
    pack = tmp_path / "huge.yaml"
    pack.write_text(HUGE_KEY)
    assert tlsgate("cert", str(pki.cert), "--pack", str(pack)).code == ExitCode.POLICY_FAILED
    waivers = _waivers(tmp_path, "huge-key/KEY-001", "server.pem", "2999-01-01")
    run = tlsgate("cert", str(pki.cert), "--pack", str(pack), "--waivers", str(waivers))
    assert run.code == ExitCode.OK, run.stdout + run.stderr
    assert "not counted: 1 waived" in run.stdout
