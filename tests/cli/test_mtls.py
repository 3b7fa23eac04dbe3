"""Mutual TLS end to end: an mTLS-only server scanned without, with, and with the wrong client certificate."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from scanner.render import OutputFormat
from tests.helpers import client_pki, issue_certificate, openssl_server


@pytest.fixture
def mtls_server(tmp_path):
    """openssl s_server (TLS 1.2 and 1.3) that requires a client certificate from the test client CA."""
    pki = client_pki(tmp_path / "client")
    server = issue_certificate(tmp_path / "server", "mtls-server", key_type="rsa2048")
    args = ("-Verify", "1", "-verify_return_error", "-CAfile", str(pki.ca))
    with openssl_server(server.cert, server.key, *args) as port:
        yield port, pki


def _facts(path):
    return json.loads(path.read_text())["targets"][0]["facts"]


def test_without_certificate_is_reported_as_required(tlsgate, mtls_server, tmp_path):
    """Without credentials: client auth 'required' with the CA name, suites still listed, never 'not TLS'."""
    port, pki = mtls_server
    run = tlsgate("scan", f"127.0.0.1:{port}", "--all-facts", "--json", str(tmp_path / "r.json"))
    facts = _facts(tmp_path / "r.json")
    assert facts["status"] == "ok", facts["error"]
    client_auth = facts["client_auth"]
    assert client_auth["requirement"]["value"] == "required"
    assert client_auth["ca_names"]["value"] == [pki.ca_name]
    assert client_auth["throwaway_certificate_accepted"]["value"] is False
    assert client_auth["provided_certificate_accepted"]["status"] == "not_probed"
    accepted = {p["version"] for p in facts["protocols"] if p["status"] == "accepted"}
    assert accepted == {"TLSv1.2", "TLSv1.3"}
    assert run.code == 1  # TLS 1.2 is accepted: tls13-only fails; the scan itself worked


def test_with_pkcs12_certificate(tlsgate, mtls_server, tmp_path):
    """With the right PKCS#12 (password from an env var) the certificate is accepted and the scan is complete."""
    port, pki = mtls_server
    env_name = "TLSGATE_TEST_P12_PASSWORD"
    out = tmp_path / "out"
    out.mkdir()
    args = ["scan", f"127.0.0.1:{port}", "--all-facts", "--client-p12", str(pki.p12), "--client-password-env", env_name]
    for fmt in OutputFormat:
        args += ["--format", f"{fmt.value}={out / f'r.{fmt.value}'}"]
    proc = subprocess.run(
        [sys.executable, "-m", "scanner.cli", *args],
        capture_output=True, text=True, timeout=300, check=False, env={**os.environ, env_name: pki.password},
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    facts = _facts(out / "r.json")
    assert facts["client_auth"]["provided_certificate_accepted"]["value"] is True
    assert facts["certificate"]["status"] == "ok"  # sslyze, given the credentials, completes the handshake
    assert facts["sessions"]["tls13_resumption"]["status"] == "ok"
    # the password and the private key never reach a report or the terminal
    key_body = "".join(pki.key.read_text().splitlines()[1:3])
    for produced in [*out.iterdir()]:
        text = produced.read_text()
        assert pki.password not in text and key_body not in text, produced
    assert pki.password not in proc.stdout + proc.stderr


def test_wrong_password_is_a_usage_error(tlsgate, mtls_server, tmp_path):
    """A wrong PKCS#12 password exits 2 with one line that does not contain the password."""
    port, pki = mtls_server
    password_file = tmp_path / "pw"
    password_file.write_text("not the password\n")
    run = tlsgate(
        "scan", f"127.0.0.1:{port}", "--client-p12", str(pki.p12), "--client-password-file", str(password_file)
    )
    assert run.code == 2
    assert len(run.stderr.strip().splitlines()) == 1
    assert "not the password" not in run.stderr and "Traceback" not in run.stderr
