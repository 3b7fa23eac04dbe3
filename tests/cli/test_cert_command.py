"""`tlsgate cert`: certificate files judged by the same certificate rules, before they are deployed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

from scanner.cli.options import DEFAULT_PACKS
from tests.pki import CLIENT_AUTH, SERVER_AUTH, issue, name, new_key

PACK = """\
id: partner-client-cert
title: Partner client certificate
version: "1"
rules:
  - id: PCC-001
    title: EKU is clientAuth only
    severity: high
    fact: certificate.leaf.extended_key_usage
    each: {name: clientAuth}
  - id: PCC-002
    title: RSA keys are at least 3072 bits
    severity: high
    fact: certificate.leaf.public_key.size
    min: 3072
  - id: PCC-003
    title: Valid for less than 3 years
    severity: medium
    fact: certificate.leaf.validity_days
    max: 1095
  - id: PCC-004
    title: The subject names the partner
    severity: high
    fact: certificate.leaf.subject
    dn_matches: "CN=*.partner.example, O=Partner Ltd"
  - id: PCC-005
    title: TLS 1.3 is accepted
    severity: high
    fact: protocols
    some: {version: TLSv1.3, status: accepted}
"""


@pytest.fixture
def pack(tmp_path):
    path = tmp_path / "pack.yaml"
    path.write_text(PACK)
    return path


def _findings(path):
    (target,) = json.loads(path.read_text())["targets"]
    return {f["rule"]: f["status"] for f in target["findings"]}


def test_compliant_client_certificate_passes(tlsgate, pack, tmp_path):
    """An RSA 3072, clientAuth-only, 2-year certificate for the partner passes; protocol rules do not apply."""
    cert = issue(name("gw.partner.example", "Partner Ltd"), key=new_key("rsa3072"), days=730, eku=CLIENT_AUTH)
    cert_path, _ = cert.write(tmp_path, "client")
    run = tlsgate("cert", str(cert_path), "--pack", str(pack), "--json", str(tmp_path / "r.json"))
    assert run.code == 0, run.stdout + run.stderr
    assert _findings(tmp_path / "r.json") == {
        "PCC-001": "pass", "PCC-002": "pass", "PCC-003": "pass", "PCC-004": "pass", "PCC-005": "not_applicable",
    }  # fmt: skip


def test_non_compliant_certificate_fails_each_rule(tlsgate, pack, tmp_path):
    """serverAuth+clientAuth, RSA 2048, 5 years, another organisation: every certificate rule fails."""
    cert = issue(
        name("gw.partner.example", "Someone Else"), key=new_key("rsa2048"), days=5 * 365, eku=SERVER_AUTH + CLIENT_AUTH
    )
    cert_path, _ = cert.write(tmp_path, "client")
    run = tlsgate("cert", str(cert_path), "--pack", str(pack), "--json", str(tmp_path / "r.json"))
    assert run.code == 1
    findings = _findings(tmp_path / "r.json")
    assert findings == {
        "PCC-001": "fail", "PCC-002": "fail", "PCC-003": "fail", "PCC-004": "fail", "PCC-005": "not_applicable",
    }  # fmt: skip


def test_pkcs12_with_password_from_env(pack, tmp_path):
    """A PKCS#12 bundle is read with the password from an environment variable that never shows in output."""
    cert = issue(name("gw.partner.example", "Partner Ltd"), key=new_key("rsa3072"), days=365, eku=CLIENT_AUTH)
    p12 = tmp_path / "client.p12"
    p12.write_bytes(
        pkcs12.serialize_key_and_certificates(b"client", cert.key, cert.cert, None, BestAvailableEncryption(b"s3cret!"))
    )
    proc = subprocess.run(
        [sys.executable, "-m", "scanner.cli", "cert", str(p12), "--pack", str(pack), "--password-env", "P12_PW",
         "--json", str(tmp_path / "r.json")],
        capture_output=True, text=True, check=False, env={**os.environ, "P12_PW": "s3cret!"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "s3cret!" not in proc.stdout + proc.stderr + (tmp_path / "r.json").read_text()


def test_unreadable_file_is_not_checked(tlsgate, pack, tmp_path):
    """A file that holds no certificate is reported with its reason and exit code 3."""
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    run = tlsgate("cert", str(junk), "--pack", str(pack), "--json", str(tmp_path / "r.json"))
    assert run.code == 3
    (target,) = json.loads((tmp_path / "r.json").read_text())["targets"]
    assert "not PEM, DER or PKCS#12" in target["facts"]["error"]["message"]


def test_missing_or_unreadable_file_is_a_usage_error(tlsgate, pack, tmp_path):
    """A path that is not there, or cannot be read as a file, exits 2 with one line per file; nothing is judged."""
    run = tlsgate("cert", str(tmp_path / "x.pem"), "--pack", str(pack), "--json", str(tmp_path / "r.json"))
    assert run.code == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip() == f"tlsgate: error: certificate file {tmp_path / 'x.pem'}: No such file or directory"
    assert not (tmp_path / "r.json").exists()
    (tmp_path / "a-directory").mkdir()
    run = tlsgate("cert", str(tmp_path / "a-directory"), "--pack", str(pack))
    assert run.code == 2
    assert run.stderr.strip() == f"tlsgate: error: certificate file {tmp_path / 'a-directory'}: Is a directory"


def test_default_pack_without_pack(tlsgate, tmp_path):
    """Without --pack a file is judged by the default pack, essentials, as a scan is (issue 13: the default pack
    judges certificate files too; it used to be a usage error)."""
    leaf = issue(name("www.example.com"), days=90, sans=("www.example.com",), eku=SERVER_AUTH)
    path, _ = leaf.write(tmp_path, "leaf")
    run = tlsgate("cert", str(path), "--json", str(tmp_path / "r.json"))
    assert run.code == 0, run.stdout + run.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert [p["id"] for p in report["packs"]] == ["essentials"]
    assert report["options"]["packs"] == list(DEFAULT_PACKS)
    (target,) = report["targets"]
    assert {f["pack"] for f in target["findings"]} == set(DEFAULT_PACKS)
