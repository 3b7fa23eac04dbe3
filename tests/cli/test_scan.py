"""End to end: the tlsgate command against real loopback TLS servers, with its reports."""

from __future__ import annotations

import json
import ssl

import jsonschema

from scanner import __version__
from scanner.exitcodes import ExitCode
from scanner.schemas import schema_dir
from tests.helpers import ipv6_tls13_server, python_tls_server, server_context


def _report_schema() -> dict:
    return json.loads((schema_dir() / "report.schema.json").read_text())


def test_tls12_and_13_server_fails_tls13_only(tlsgate, tls12_13_server, tmp_path):
    """A TLS 1.2+1.3 server exits 1 and the JSON names the failing rule with TLSv1.2 and its suites."""
    json_path, html_path = tmp_path / "r.json", tmp_path / "r.html"
    run = tlsgate("scan", tls12_13_server.target, "--pack", "tls13-only", "--json", str(json_path),
                  "--html", str(html_path))  # fmt: skip
    assert run.code == 1, run.stderr
    report = json.loads(json_path.read_text())
    jsonschema.validate(report, _report_schema())
    (target,) = report["targets"]
    assert target["verdict"] == "fail"
    failed = [f for f in target["findings"] if f["status"] == "fail"]
    assert [f["rule"] for f in failed] == ["TLS13ONLY-001"]
    (offending,) = failed[0]["evidence"]["offending"]
    assert offending["version"] == "TLSv1.2"
    tls12_suites = {s["name"] for s in offending["cipher_suites"]}
    assert "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" in tls12_suites
    # the evidence repeats exactly what the facts say was accepted with TLS 1.2
    (tls12,) = [p for p in target["facts"]["protocols"] if p["version"] == "TLSv1.2"]
    assert {s["name"] for s in tls12["cipher_suites"]} == tls12_suites
    assert "TLS13ONLY-001" in run.stdout
    html = html_path.read_text()
    assert "TLS13ONLY-001" in html and "TLSv1.2" in html


def test_tls13_only_server_passes(tlsgate, tls13_server, tmp_path):
    """A TLS 1.3-only server passes the tls13-only pack with exit code 0."""
    json_path = tmp_path / "r.json"
    run = tlsgate("scan", tls13_server.target, "--pack", "tls13-only", "--json", str(json_path))
    assert run.code == 0, run.stdout + run.stderr
    report = json.loads(json_path.read_text())
    jsonschema.validate(report, _report_schema())
    (target,) = report["targets"]
    assert target["verdict"] == "pass"
    assert {f["status"] for f in target["findings"]} == {"pass"}
    accepted = [p["version"] for p in target["facts"]["protocols"] if p["status"] == "accepted"]
    assert accepted == ["TLSv1.3"]


def test_tls12_only_server_fails_both_rules(tlsgate, pki, tmp_path):
    """A TLS 1.2-only server breaks both rules: TLS 1.2 accepted and TLS 1.3 missing."""
    context = server_context(pki, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)
    json_path = tmp_path / "r.json"
    with python_tls_server(context) as server:
        run = tlsgate("scan", "--pack", "tls13-only", server.target, "--json", str(json_path))
    assert run.code == 1
    findings = json.loads(json_path.read_text())["targets"][0]["findings"]
    assert {f["rule"]: f["status"] for f in findings} == {"TLS13ONLY-001": "fail", "TLS13ONLY-002": "fail"}


def test_pack_given_as_file(tlsgate, tls13_server, tmp_path):
    """A pack named by path is loaded from that file; its id and hash are in the report."""
    pack = tmp_path / "mine.yaml"
    pack.write_text(
        "id: only-tls12\ntitle: Only TLS 1.2\nversion: '1'\nrules:\n"
        "  - id: T12-1\n    title: TLS 1.2 is accepted\n    severity: low\n    fact: protocols\n"
        "    some: {version: TLSv1.2, status: accepted}\n"
    )
    json_path = tmp_path / "r.json"
    run = tlsgate("scan", tls13_server.target, "--pack", str(pack), "--json", str(json_path))
    assert run.code == 1
    report = json.loads(json_path.read_text())
    assert report["packs"][0]["id"] == "only-tls12"
    assert len(report["packs"][0]["sha256"]) == 64


def test_ipv6_target(tlsgate, pki, tmp_path):
    """An [ipv6]:port target is scanned over ::1."""
    json_path = tmp_path / "r.json"
    with ipv6_tls13_server(pki) as server:
        run = tlsgate("scan", "--pack", "tls13-only", server.target, "--json", str(json_path))
    assert run.code == 0, run.stdout + run.stderr
    facts = json.loads(json_path.read_text())["targets"][0]["facts"]
    assert facts["target"]["ip_address"] == "::1"
    assert facts["target"]["server_name"] is None


def test_missing_output_directory_is_a_usage_error(tlsgate, tls13_server, tmp_path):
    """A report path in a directory that does not exist is refused before any scanning."""
    run = tlsgate("scan", tls13_server.target, "--json", str(tmp_path / "nope" / "r.json"))
    assert run.code == 2
    assert run.stderr.strip().count("\n") == 0
    assert "does not exist" in run.stderr


def test_unknown_pack_is_a_usage_error(tlsgate):
    """An unknown pack id exits 2 with a one-line error that lists the built-in packs."""
    run = tlsgate("scan", "127.0.0.1:1", "--pack", "tls13-onyl")
    assert run.code == 2
    assert "unknown pack 'tls13-onyl'" in run.stderr
    assert "tls13-only" in run.stderr
    assert "Traceback" not in run.stderr


def test_bad_target_syntax_is_a_usage_error(tlsgate):
    """A target that cannot be parsed exits 2 with one line, before anything is scanned."""
    run = tlsgate("scan", "127.0.0.1:99999")
    assert run.code == 2
    assert run.stderr.strip() == "tlsgate: error: bad target '127.0.0.1:99999': port 99999 is out of range 1-65535"


def test_unbracketed_ipv6_with_port_is_a_usage_error(tlsgate):
    """`::1:8443` exits 2 and suggests the bracketed spelling instead of scanning the address ::1:8443 on 443."""
    run = tlsgate("scan", "::1:8443")
    assert run.code == 2
    assert run.stderr.strip() == (
        "tlsgate: error: bad target '::1:8443': an IPv6 address with a port needs brackets: write [::1]:8443"
        " (or [::1:8443] for the address alone, on port 443)"
    )


def test_version_and_rules_list(tlsgate):
    """--version prints the version; rules list shows the tls13-only pack."""
    run = tlsgate("--version")
    assert run.code == 0 and run.stdout.strip() == f"tlsgate {__version__}"
    run = tlsgate("rules", "list")
    assert run.code == 0
    assert any(line.split()[0] == "tls13-only" for line in run.stdout.splitlines())


def test_help_documents_exit_codes(tlsgate):
    """scan --help lists every exit code."""
    run = tlsgate("scan", "--help")
    assert run.code == 0
    for code in ExitCode:
        assert f"  {code.value} " in run.stdout
