"""Behaviour facts (sslyze's plugins and tlsgate's ALPN probe) against openssl s_server configured to show them."""

from __future__ import annotations

import json

import pytest

from tests.helpers import issue_certificate, openssl_server
from tests.nginx import nginx_server


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return issue_certificate(tmp_path_factory.mktemp("behaviours"), "behaviours", key_type="rsa2048")


def _behaviours(tlsgate, port: int, tmp_path) -> dict:
    run = tlsgate(
        "scan", f"127.0.0.1:{port}", "--pack", "tls13-only", "--all-facts", "--json", str(tmp_path / "r.json")
    )
    assert run.code in (0, 1), run.stdout + run.stderr
    facts = json.loads((tmp_path / "r.json").read_text())["targets"][0]["facts"]
    assert facts["behaviours"]["status"] == "ok"
    return {name: value for name, value in facts["behaviours"].items() if isinstance(value, dict)}


def _value(behaviours: dict, name: str):
    fact = behaviours[name]
    assert fact["status"] == "ok", (name, fact)
    return fact["value"]


def test_modern_openssl_defaults(tlsgate, cert, tmp_path):
    """OpenSSL 3 defaults: secure renegotiation, EMS and fallback SCSV on; no compression, 0-RTT or stapling."""
    with openssl_server(cert.cert, cert.key, "-alpn", "h2,http/1.1") as port:
        behaviours = _behaviours(tlsgate, port, tmp_path)
    assert _value(behaviours, "secure_renegotiation") is True
    assert _value(behaviours, "extended_master_secret") is True
    assert _value(behaviours, "fallback_scsv") is True
    assert _value(behaviours, "compression") is False
    assert _value(behaviours, "early_data") is False
    assert _value(behaviours, "ocsp_stapling") is False
    assert _value(behaviours, "heartbleed") is False
    assert _value(behaviours, "ccs_injection") is False
    assert _value(behaviours, "client_renegotiation") is False
    assert _value(behaviours, "alpn") == ["h2", "http/1.1"]
    assert behaviours["alpn"]["source"] == "tlsgate" and behaviours["heartbleed"]["source"] == "sslyze"


def test_client_renegotiation_allowed(tlsgate, cert, tmp_path):
    """With -client_renegotiation the server is seen honouring client-initiated renegotiation."""
    with openssl_server(cert.cert, cert.key, "-no_tls1_3", "-client_renegotiation") as port:
        behaviours = _behaviours(tlsgate, port, tmp_path)
    assert _value(behaviours, "client_renegotiation") is True
    assert _value(behaviours, "alpn") == []


def test_early_data_accepted(tlsgate, cert, tmp_path):
    """nginx with ssl_early_data on is seen accepting TLS 1.3 0-RTT early data."""
    with nginx_server(cert.cert, cert.key, protocols=("TLSv1.3",), extra="ssl_early_data on;") as server:
        behaviours = _behaviours(tlsgate, server.port, tmp_path)
    assert _value(behaviours, "early_data") is True
