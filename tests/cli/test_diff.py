"""End to end: scan loopback servers, change them, scan again, and ``tlsgate diff`` names exactly what changed."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import jsonschema
import pytest

from scanner.exitcodes import ExitCode
from scanner.schemas import schema_dir
from tests import pki
from tests.helpers import free_port, openssl_server

GCM_128 = "ECDHE-RSA-AES128-GCM-SHA256"
GCM_256 = "ECDHE-RSA-AES256-GCM-SHA384"


def _leaf(directory: Path, ca: pki.Issued, stem: str) -> tuple[Path, Path, str]:
    """A leaf for localhost and 127.0.0.1 issued by ``ca``: certificate (with the CA) and key files, its SHA-256."""
    now = dt.datetime.now(dt.UTC)
    leaf = pki.issue(pki.name(stem), issuer=ca, key=pki.new_key("rsa2048"), not_before=now - dt.timedelta(minutes=1),
                     days=90, sans=("localhost", "127.0.0.1"))  # fmt: skip
    cert, key = leaf.write(directory, stem, chain=[ca])
    return cert, key, leaf.sha256


@pytest.fixture
def ca(tmp_path: Path) -> tuple[pki.Issued, Path]:
    now = dt.datetime.now(dt.UTC)
    authority = pki.issue(pki.name("diff test CA"), ca=True, not_before=now - dt.timedelta(days=1), days=3650)
    path = tmp_path / "ca.pem"
    path.write_bytes(authority.pem)
    return authority, path


def _scan(tlsgate, out: Path, ca_file: Path, *targets: str, extra: tuple[str, ...] = ()) -> None:
    run = tlsgate("scan", *targets, "--pack", "tls12-plus", "--ca-file", str(ca_file), "--timeout", "5",
                  "--json", str(out), *extra)  # fmt: skip
    assert out.exists(), run.stderr


def _diff_schema() -> dict:
    return json.loads((schema_dir() / "diff.schema.json").read_text())


def test_suite_added_certificate_reissued_and_server_stopped(tlsgate, ca, tmp_path):
    """Between two scans one server gains a suite and a re-issued certificate, another stops: the diff names
    exactly those three changes, nothing else; gating exits 3 (a target could not be checked, nothing weakened)."""
    authority, ca_file = ca
    cert1, key1, sha1 = _leaf(tmp_path, authority, "first")
    cert2, key2, sha2 = _leaf(tmp_path, authority, "second")
    other_cert, other_key, _ = _leaf(tmp_path, authority, "other")
    port = free_port()
    target = f"127.0.0.1:{port}"
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    with openssl_server(other_cert, other_key, "-tls1_2", "-cipher", GCM_128) as other_port:
        other = f"127.0.0.1:{other_port}"
        with openssl_server(cert1, key1, "-tls1_2", "-cipher", GCM_128, port=port):
            _scan(tlsgate, first, ca_file, target, other)
    with openssl_server(cert2, key2, "-tls1_2", "-cipher", f"{GCM_128}:{GCM_256}", port=port):
        _scan(tlsgate, second, ca_file, target, other)

    out = tmp_path / "diff.json"
    run = tlsgate("diff", str(first), str(second), "--format", f"json={out}", "--format", f"markdown={tmp_path}/d.md")
    assert run.code == ExitCode.OK, run.stderr
    diff = json.loads(out.read_text())
    jsonschema.validate(diff, _diff_schema())
    changed, stopped = diff["targets"]
    assert (changed["after"], changed["state"], stopped["after"], stopped["state"]) == (
        target, "compared", other, "newly_unreachable"
    )  # fmt: skip
    assert stopped["after_error"] == "refused"
    assert changed["suites"] == [
        {"version": "TLSv1.2", "added": ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"], "removed": []}
    ]
    (rotated,) = changed["certificates"]
    # one RSA certificate: the default and the RSA-only offers both got it, before and after
    assert (rotated["offers"], rotated["before"]["sha256"], rotated["after"]["sha256"]) == (["default", "rsa"], sha1,
                                                                                           sha2)  # fmt: skip
    assert rotated["after"]["issuer"] == rotated["before"]["issuer"] == "CN=diff test CA,O=tlsgate tests"
    assert rotated["after"]["key"] == "RSA 2048"
    nothing_else = ("protocols_added", "protocols_removed", "groups", "facts", "regressions")
    assert all(changed[k] == [] for k in nothing_else), {k: changed[k] for k in nothing_else}
    assert [f for f in changed["findings"] if f["change"] != "still_failing"] == []
    assert not diff["regression"] and diff["unchecked"]
    # the terminal names the same three changes
    assert "TLSv1.2 suites: added TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" in run.stdout
    assert f"certificate (default, rsa) rotated: {sha1[:16]}" in run.stdout and sha2[:16] in run.stdout
    assert "newly unreachable (refused)" in run.stdout
    markdown = (tmp_path / "d.md").read_text()  # escaped: a name's underscores must not turn into emphasis
    assert "TLSv1.2 suites: added TLS\\_ECDHE\\_RSA\\_WITH\\_AES\\_256\\_GCM\\_SHA384" in markdown

    gated = tlsgate("diff", str(first), str(second), "--fail-on-regression")
    assert gated.code == ExitCode.NOT_CHECKED, gated.stdout + gated.stderr


def test_tls10_enabled_is_a_regression_and_the_way_back_is_not(tlsgate, ca, tmp_path):
    """TLS 1.0 enabled between two scans: --fail-on-regression exits 1 and names it (the pack's new failure and
    the older version), also against the scan's JSON Lines journal; the reverse diff (only strengthening) and a
    scan against itself exit 0."""
    authority, ca_file = ca
    cert, key, _ = _leaf(tmp_path, authority, "server")
    port = free_port()
    target = f"127.0.0.1:{port}"
    tls12, tls10 = tmp_path / "tls12.json", tmp_path / "tls10.json"
    with openssl_server(cert, key, "-tls1_2", "-cipher", GCM_128, port=port):
        _scan(tlsgate, tls12, ca_file, target)
    legacy = f"{GCM_128}:ECDHE-RSA-AES128-SHA:@SECLEVEL=0"
    with openssl_server(cert, key, "-no_tls1_3", "-no_tls1_1", "-cipher", legacy, port=port):
        _scan(tlsgate, tls10, ca_file, target, extra=("--format", f"jsonl={tmp_path}/tls10.jsonl"))

    html = tmp_path / "diff.html"
    run = tlsgate("diff", str(tls12), str(tls10), "--fail-on-regression", "--format", "json", "--format",
                  f"html={html}")  # fmt: skip
    assert run.code == ExitCode.POLICY_FAILED, run.stderr
    diff = json.loads(run.stdout)  # the JSON went to standard output, the summary to standard error
    (changed,) = diff["targets"]
    assert changed["protocols_added"] == ["TLSv1.0"] and changed["protocols_removed"] == []
    kinds = {r["kind"] for r in changed["regressions"]}
    assert {"new_failure", "older_protocol"} <= kinds
    assert any(f["change"] == "new" and f["pack"] == "tls12-plus" for f in changed["findings"])
    assert "REGRESSION: TLSv1.0 accepted, older than TLSv1.2" in run.stderr
    page = html.read_text()
    assert "TLSv1.0 accepted, older than TLSv1.2" in page and 'class="regression"' in page

    back = tlsgate("diff", str(tls10), str(tls12), "--fail-on-regression")
    assert back.code == ExitCode.OK, back.stdout + back.stderr
    assert "protocols: removed TLSv1.0" in back.stdout and "REGRESSION" not in back.stdout
    journal = tlsgate("diff", str(tls12), str(tmp_path / "tls10.jsonl"), "--fail-on-regression")
    assert journal.code == ExitCode.POLICY_FAILED, journal.stderr  # a scan's journal reads as its report
    assert "REGRESSION: tls12-plus/" in journal.stdout and "REGRESSION: TLSv1.0 accepted" in journal.stdout
    same = tlsgate("diff", str(tls12), str(tls12), "--fail-on-regression")
    assert same.code == ExitCode.OK and "0 of 1 target changed" in same.stdout


def test_bad_input_is_exit_2_with_one_line(tlsgate, tmp_path):
    """Missing, unreadable or wrong files and bad options: exit 2 and one line on standard error, no traceback."""
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps({"target": {"input": "x"}}))
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    cases = [
        (str(tmp_path / "missing.json"), str(garbage)),
        (str(garbage), str(garbage)),
        (str(facts), str(facts)),
        (str(garbage),),
    ]
    for args in cases:
        run = tlsgate("diff", *args)
        assert run.code == ExitCode.USAGE, (args, run.stderr)
        assert run.stderr.count("\n") == 1 and run.stderr.startswith("tlsgate: error: "), run.stderr
    for option in (["--format", "sarif"], ["--match", "fuzzy"], ["--format", "json", "--format", "html"]):
        run = tlsgate("diff", str(garbage), str(garbage), *option)
        assert run.code == ExitCode.USAGE and run.stderr.count("\n") == 1, (option, run.stderr)
