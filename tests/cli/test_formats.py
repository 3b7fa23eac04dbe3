"""Report formats end to end: `--format FORMAT[=PATH]` on scan, cert and evaluate, and `tlsgate report render`."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import jsonschema
import pytest
from junitparser import JUnitXml

from scanner.exitcodes import ExitCode
from scanner.facts import Facts, ProtocolSupport, TargetInfo
from scanner.render import FILE_SUFFIXES, OutputFormat
from scanner.schemas import schema_dir
from tests.helpers import Run, client_pki, issue_certificate, openssl_server


def _validate_sarif(path) -> dict:
    log = json.loads(path.read_text(encoding="utf-8"))
    schema = json.loads((schema_dir() / "sarif-2.1.0.json").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER).validate(log)
    return log


def _all_formats(directory, skip: OutputFormat | None = None) -> list[str]:
    args = []
    for fmt in OutputFormat:
        if fmt is not skip:
            args += ["--format", f"{fmt.value}={directory / ('r' + FILE_SUFFIXES[fmt])}"]
    return args


def _run_with_env(args: list[str], env: dict[str, str]) -> Run:
    proc = subprocess.run(
        [sys.executable, "-m", "scanner.cli", *args],
        capture_output=True, text=True, timeout=300, check=False, env={**os.environ, **env},
    )  # fmt: skip
    return Run(proc.returncode, proc.stdout, proc.stderr, 0.0)


def test_three_targets_produce_every_format(tlsgate, tls13_server, tls12_13_server, refused_port, tmp_path):
    """One scan of a passing, a failing and an unreachable target writes every format with the same verdicts."""
    out = tmp_path / "out"
    out.mkdir()
    unreachable = f"127.0.0.1:{refused_port}"
    targets = [tls13_server.target, tls12_13_server.target, unreachable]
    run = tlsgate("scan", *targets, "--pack", "tls13-only", "--timeout", "3", *_all_formats(out))
    assert run.code == ExitCode.POLICY_FAILED, run.stdout + run.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(f"r{suffix}" for suffix in FILE_SUFFIXES.values())
    for fmt in OutputFormat:
        assert f"report: {out / ('r' + FILE_SUFFIXES[fmt])}" in run.stdout

    log = _validate_sarif(out / "r.sarif")
    (sarif_run,) = log["runs"]
    results = [(r["properties"]["target"], r["ruleId"], r["level"]) for r in sarif_run["results"]]
    assert results == [(tls12_13_server.target, "tls13-only/TLS13ONLY-001", "error")]
    (note,) = sarif_run["invocations"][0]["toolExecutionNotifications"]
    assert note["level"] == "error" and note["message"]["text"].startswith(f"{unreachable}: could not be scanned")

    junit = JUnitXml.fromfile(str(out / "r.junit.xml"))
    assert (junit.tests, junit.failures, junit.errors, junit.skipped) == (6, 1, 2, 0)
    assert [(s.name, s.failures, s.errors) for s in junit] == [
        (tls13_server.target, 0, 0),
        (tls12_13_server.target, 1, 0),
        (unreachable, 0, 2),
    ]

    rows = list(csv.DictReader(io.StringIO((out / "r.csv").read_text(encoding="utf-8"), newline="")))
    assert [(r["target"], r["rule"], r["status"]) for r in rows] == [
        (tls13_server.target, "TLS13ONLY-001", "pass"),
        (tls13_server.target, "TLS13ONLY-002", "pass"),
        (tls12_13_server.target, "TLS13ONLY-001", "fail"),
        (tls12_13_server.target, "TLS13ONLY-002", "pass"),
        (unreachable, "TLS13ONLY-001", "error"),
        (unreachable, "TLS13ONLY-002", "error"),
    ]

    summary = (out / "r.md").read_text(encoding="utf-8")
    table = [line for line in summary.splitlines() if line.startswith("| 127.0.0.1")]
    assert [line.split(" | ")[1] for line in table] == ["\u2705 pass", "\u274c fail", "\u26a0\ufe0f not checked"]
    assert "TLS13ONLY\\-001" not in summary and "tls13-only/TLS13ONLY-001" in summary
    assert "Not scanned: refused" in summary


def test_saved_report_renders_again_identically(tlsgate, tls12_13_server, refused_port, tmp_path):
    """`report render` turns the saved JSON into every other format, byte for byte what the scan wrote."""
    scanned, again = tmp_path / "scanned", tmp_path / "again"
    scanned.mkdir()
    again.mkdir()
    targets = [tls12_13_server.target, f"127.0.0.1:{refused_port}"]
    run = tlsgate("scan", "--pack", "tls13-only", *targets, "--timeout", "3", *_all_formats(scanned))
    assert run.code == ExitCode.POLICY_FAILED, run.stderr
    render = tlsgate("report", "render", str(scanned / "r.json"), *_all_formats(again))
    assert render.code == 0, render.stderr
    assert render.stderr == ""
    assert render.stdout.splitlines() == [f"report: {again / ('r' + FILE_SUFFIXES[fmt])}" for fmt in OutputFormat]
    for fmt in OutputFormat:
        name = "r" + FILE_SUFFIXES[fmt]
        if fmt is OutputFormat.jsonl:  # the scan's journal is in the order targets finished; the same lines
            assert sorted((again / name).read_text().splitlines()) == sorted((scanned / name).read_text().splitlines())
            continue
        assert (again / name).read_bytes() == (scanned / name).read_bytes(), name


def test_report_to_stdout_keeps_stdout_clean(tlsgate, tls13_server, tmp_path):
    """With a report on standard output, stdout is that report alone; the summary and report paths go to stderr."""
    junit_path = tmp_path / "r.xml"
    run = tlsgate(
        "scan", "--pack", "tls13-only", tls13_server.target, "--format", "sarif", "--format", f"junit={junit_path}"
    )
    assert run.code == 0, run.stderr
    log = json.loads(run.stdout)  # nothing but the SARIF log
    assert log["version"] == "2.1.0"
    assert f"PASS  {tls13_server.target}" in run.stderr
    assert f"report: {junit_path}" in run.stderr
    assert JUnitXml.fromfile(str(junit_path)).tests == 2


def test_json_alias_and_dash(tlsgate, tls13_server, tmp_path):
    """`--json -` is `--format json=-`: the JSON report on stdout; `--html FILE` still writes the page."""
    html_path = tmp_path / "r.html"
    run = tlsgate("scan", "--pack", "tls13-only", tls13_server.target, "--json", "-", "--html", str(html_path))
    assert run.code == 0, run.stderr
    assert json.loads(run.stdout)["targets"][0]["verdict"] == "pass"
    assert "<html" in html_path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "pdf=r.pdf"], "unknown format 'pdf' (one of json, html, sarif, junit, markdown, csv, jsonl)"),
        (["--format", "sarif=a.sarif", "--format", "sarif=b.sarif"], "the sarif report is asked for twice"),
        (["--format", "json=a.json", "--json", "b.json"], "the json report is asked for twice"),
        (["--format", "sarif", "--format", "csv=-"], "only one report can go to standard output, not sarif and csv"),
        (["--format", "csv=same", "--format", "markdown=same"], "two reports would be written to the same file"),
        (["--format", "junit=no/such/dir/r.xml"], "directory no/such/dir does not exist"),
        (["--format", "csv="], "no path after '='"),
    ],
)
def test_bad_format_is_a_usage_error_before_scanning(tlsgate, refused_port, tmp_path, args, message):
    """A bad --format exits 2 with one line, before any target is touched and without writing anything."""
    run = tlsgate("scan", f"127.0.0.1:{refused_port}", *args, cwd=tmp_path)
    assert run.code == ExitCode.USAGE, run.stdout + run.stderr
    assert run.stdout == ""
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith("tlsgate: error: ") and message in line
    assert list(tmp_path.iterdir()) == []


def test_report_render_rejects_what_is_not_a_report(tlsgate, tmp_path):
    """A missing file, facts alone, or no --format at all is a usage error (2) and writes nothing."""
    facts = tmp_path / "facts.json"
    facts.write_text(_facts_json())
    out = tmp_path / "r.sarif"
    missing = tlsgate("report", "render", str(tmp_path / "nope.json"), "--format", f"sarif={out}")
    assert missing.code == ExitCode.USAGE and "cannot read" in missing.stderr
    not_report = tlsgate("report", "render", str(facts), "--format", f"sarif={out}")
    assert not_report.code == ExitCode.USAGE and "not a tlsgate JSON report" in not_report.stderr
    assert "Traceback" not in not_report.stderr
    no_format = tlsgate("report", "render", str(facts))
    assert no_format.code == ExitCode.USAGE
    assert not out.exists()


def _facts_json() -> str:
    now = datetime.now(UTC)
    facts = Facts(
        target=TargetInfo(input="saved.example:443", host="saved.example", port=443, server_name=None, ip_address=None),
        started_at=now,
        finished_at=now,
        status="ok",
        protocols=[
            ProtocolSupport(version="TLSv1.2", status="accepted"),
            ProtocolSupport(version="TLSv1.3", status="accepted"),
        ],
    )
    return facts.model_dump_json()


def test_evaluate_writes_formats(tlsgate, tmp_path):
    """evaluate takes --format too: Markdown on stdout for a step summary, CSV to a file."""
    facts = tmp_path / "facts.json"
    facts.write_text(_facts_json())
    csv_path = tmp_path / "r.csv"
    run = tlsgate("evaluate", str(facts), "--pack", "tls13-only", "--format", "markdown", "--format", f"csv={csv_path}")
    assert run.code == ExitCode.POLICY_FAILED, run.stderr
    assert run.stdout.startswith("## \u274c tlsgate: policy violated\n")
    assert "| saved\\.example:443 |" not in run.stdout and "| saved.example:443 | \u274c fail |" in run.stdout
    assert "FAIL  saved.example:443" in run.stderr
    assert "saved.example:443,tls13-only,TLS13ONLY-001,high,fail," in csv_path.read_text(encoding="utf-8")


def _secrets(pki) -> list[str]:
    """The password and every line of the private key's body: none may appear in any output."""
    body = [line for line in pki.key.read_text().splitlines() if line and not line.startswith("-----")]
    assert body
    return [pki.password, *body]


def _assert_no_secret(secrets: list[str], run: Run, directory) -> None:
    produced = [(p.name, p.read_text(encoding="utf-8")) for p in directory.iterdir()]
    assert len(produced) == len(OutputFormat) - 1  # markdown went to stdout
    for name, text in [*produced, ("stdout", run.stdout), ("stderr", run.stderr)]:
        for secret in secrets:
            assert secret not in text, f"a secret is in {name}"


def test_no_secret_reaches_any_report(tlsgate, tmp_path):
    """A scan with a client PKCS#12 whose password is in the environment writes neither password nor key anywhere."""
    pki = client_pki(tmp_path / "client")
    server = issue_certificate(tmp_path / "server", "mtls-server", key_type="rsa2048")
    env_name = "TLSGATE_TEST_P12_PASSWORD"
    out = tmp_path / "out"
    out.mkdir()
    require_client_cert = ("-Verify", "1", "-verify_return_error", "-CAfile", str(pki.ca))
    with openssl_server(server.cert, server.key, *require_client_cert) as port:
        args = ["scan", f"127.0.0.1:{port}", "--all-facts", "--client-p12", str(pki.p12)]
        args += ["--client-password-env", env_name, "--format", "markdown"]
        run = _run_with_env([*args, *_all_formats(out, skip=OutputFormat.markdown)], {env_name: pki.password})
    assert run.code in (ExitCode.OK, ExitCode.POLICY_FAILED), run.stdout + run.stderr
    report = json.loads((out / "r.json").read_text(encoding="utf-8"))
    assert report["targets"][0]["facts"]["client_auth"]["provided_certificate_accepted"]["value"] is True
    assert run.stdout.startswith("## ")
    _assert_no_secret(_secrets(pki), run, out)


def test_no_secret_from_a_judged_pkcs12_file(tlsgate, tmp_path):
    """`tlsgate cert` on a PKCS#12 holding a private key writes every format without the key or the password."""
    pki = client_pki(tmp_path / "client")
    env_name = "TLSGATE_TEST_P12_PASSWORD"
    out = tmp_path / "out"
    out.mkdir()
    args = ["cert", str(pki.p12), "--pack", "partner-mtls", "--password-env", env_name, "--format", "markdown"]
    run = _run_with_env([*args, *_all_formats(out, skip=OutputFormat.markdown)], {env_name: pki.password})
    assert run.code in (ExitCode.OK, ExitCode.POLICY_FAILED), run.stdout + run.stderr
    assert json.loads((out / "r.json").read_text(encoding="utf-8"))["targets"][0]["facts"]["status"] == "ok"
    _validate_sarif(out / "r.sarif")
    _assert_no_secret(_secrets(pki), run, out)
