"""The probe against real servers: protocol versions, cipher suites by IANA name, leaf certificate facts."""

from __future__ import annotations

import datetime as dt
import ssl

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from scanner.facts import Facts, ProtocolVersion
from scanner.probe.options import ConnectOptions, ProbeOptions
from scanner.probe.run import probe_targets
from scanner.targets import parse_target
from tests.helpers import issue_certificate, openssl_server, python_tls_server, server_context

OPTIONS = ProbeOptions(timeout=3)


def _probe(target: str) -> Facts:
    (facts,) = probe_targets([(parse_target(target), ConnectOptions())], OPTIONS)
    assert facts.status == "ok", facts.error
    return facts


def _accepted(facts: Facts) -> dict[str, set[str]]:
    return {p.version.value: {s.name for s in p.cipher_suites} for p in facts.protocols if p.status == "accepted"}


def test_every_version_is_reported(tls13_server):
    """All six versions appear in the facts, each accepted or not, none left undetermined."""
    facts = _probe(tls13_server.target)
    assert [p.version for p in facts.protocols] == list(ProtocolVersion)
    assert {p.version.value: p.status for p in facts.protocols} == {
        "SSLv2": "not_accepted",
        "SSLv3": "not_accepted",
        "TLSv1.0": "not_accepted",
        "TLSv1.1": "not_accepted",
        "TLSv1.2": "not_accepted",
        "TLSv1.3": "accepted",
    }


def test_openssl_tls12_single_suite_and_rsa3072_leaf(tmp_path):
    """openssl s_server limited to one TLS 1.2 suite: exactly that suite, and the RSA 3072 leaf as made."""
    issued = issue_certificate(
        tmp_path, "rsa-server", key_type="rsa3072", eku=[ExtendedKeyUsageOID.SERVER_AUTH], days=730
    )
    with openssl_server(
        issued.cert, issued.key, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256", chain=issued.ca
    ) as port:
        facts = _probe(f"127.0.0.1:{port}")
    assert _accepted(facts) == {"TLSv1.2": {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}}
    (suite,) = next(p for p in facts.protocols if p.version == ProtocolVersion.TLSv1_2).cipher_suites
    assert suite.key_bits == 128 and suite.ephemeral_key and suite.ephemeral_key.startswith("ECDH")
    leaf = facts.certificate.leaf
    assert leaf is not None
    assert (leaf.public_key.type, leaf.public_key.size) == ("RSA", 3072)
    assert leaf.signature_hash == "sha256"
    assert [(e.name, e.oid) for e in leaf.extended_key_usage or []] == [("serverAuth", "1.3.6.1.5.5.7.3.1")]
    assert leaf.subject_alt_names == ["DNS:localhost", "IP:127.0.0.1"]
    assert leaf.subject == "CN=rsa-server,O=tlsgate tests"
    assert leaf.not_before == issued.leaf.not_valid_before_utc
    assert leaf.not_after == issued.leaf.not_valid_after_utc
    assert leaf.validity_days == pytest.approx(730, abs=0.01)
    assert leaf.serial == format(issued.leaf.serial_number, "x")
    assert len(facts.certificate.chain) == 2 and facts.certificate.chain[1].subject == "CN=rsa-server test CA"


def test_openssl_tls13_single_suite_p384_leaf(tmp_path):
    """openssl s_server with TLS 1.3 and one suite: that suite only; an EC P-384 key with no EKU."""
    issued = issue_certificate(tmp_path, "ec-server", key_type="p384", eku=None)
    with openssl_server(issued.cert, issued.key, "-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384") as port:
        facts = _probe(f"127.0.0.1:{port}")
    assert _accepted(facts) == {"TLSv1.3": {"TLS_AES_256_GCM_SHA384"}}
    leaf = facts.certificate.leaf
    assert leaf is not None
    assert (leaf.public_key.type, leaf.public_key.size, leaf.public_key.curve) == ("EC", 384, "secp384r1")
    assert leaf.extended_key_usage is None


def test_openssl_legacy_tls10_and_tls11(tmp_path):
    """A server that still accepts TLS 1.0 and 1.1 (security level 0) is seen accepting them."""
    issued = issue_certificate(tmp_path, "legacy", key_type="rsa2048")
    with openssl_server(
        issued.cert, issued.key, "-no_tls1_3", "-cipher", "ECDHE-RSA-AES128-SHA:AES256-SHA:@SECLEVEL=0"
    ) as port:
        facts = _probe(f"127.0.0.1:{port}")
    accepted = _accepted(facts)
    assert set(accepted) == {"TLSv1.0", "TLSv1.1", "TLSv1.2"}
    assert accepted["TLSv1.0"] == {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_256_CBC_SHA"}


def test_ed25519_leaf_and_both_eku(tmp_path):
    """An Ed25519 leaf with serverAuth and clientAuth is described with its key type and both EKUs."""
    issued = issue_certificate(
        tmp_path,
        "ed-server",
        key_type="ed25519",
        eku=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(issued.cert, issued.key)
    with python_tls_server(context) as server:
        facts = _probe(server.target)
    leaf = facts.certificate.leaf
    assert leaf is not None
    assert leaf.public_key.type == "Ed25519"
    assert (leaf.signature_algorithm, leaf.signature_hash) == (
        "ecdsa-with-SHA256",
        "sha256",
    )  # the CA's signature
    assert {e.name for e in leaf.extended_key_usage or []} == {"serverAuth", "clientAuth"}


def test_python_server_with_restricted_tls12_ciphers(pki):
    """A Python server limited to AES-256-GCM on TLS 1.2 shows just that suite beside its TLS 1.3 suites."""
    context = server_context(pki, ssl.TLSVersion.TLSv1_2, ciphers="ECDHE-ECDSA-AES256-GCM-SHA384")
    with python_tls_server(context) as server:
        facts = _probe(server.target)
    accepted = _accepted(facts)
    assert accepted["TLSv1.2"] == {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"}
    assert "TLS_AES_128_GCM_SHA256" in accepted["TLSv1.3"]


def test_facts_round_trip_through_json(tls12_13_server):
    """Facts serialise to JSON and load back equal, so saved facts can be judged offline."""
    facts = _probe(tls12_13_server.target)
    assert Facts.model_validate_json(facts.model_dump_json()) == facts
    assert facts.finished_at >= facts.started_at
    assert facts.started_at.tzinfo == dt.UTC
