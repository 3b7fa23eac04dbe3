"""Key-exchange groups against real servers: TLS 1.3 groups via HelloRetryRequest, TLS 1.2 curves, DH size."""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess

import pytest
import tlslite.api as tlslite

from scanner.demo import LoopbackServer
from scanner.probe.checks.groups import probe_groups
from scanner.probe.connect.endpoint import Endpoint
from scanner.targets import parse_target
from tests.helpers import issue_certificate, openssl_server, python_tls_server, server_context


def _endpoint(port: int) -> Endpoint:
    return Endpoint(target=parse_target(f"127.0.0.1:{port}"), address="127.0.0.1", server_name=None, timeout=3)


def _names(observed) -> list[str]:
    assert observed.status == "ok", observed.error
    return [g.name for g in observed.value]


@pytest.fixture(scope="module")
def rsa_cert(tmp_path_factory):
    return issue_certificate(tmp_path_factory.mktemp("groups"), "groups", key_type="rsa2048")


def test_tls13_and_tls12_groups_as_configured(rsa_cert):
    """A server limited to X25519 and P-384 shows exactly those for TLS 1.3 and TLS 1.2, and no hybrid PQ group."""
    with openssl_server(rsa_cert.cert, rsa_cert.key, "-groups", "X25519:P-384") as port:
        facts = probe_groups(_endpoint(port))
    assert facts.status == "ok"
    assert sorted(_names(facts.tls13)) == ["secp384r1", "x25519"]
    assert sorted(_names(facts.tls12)) == ["secp384r1", "x25519"]
    assert facts.preferred.value in ("x25519", "secp384r1")
    assert facts.hybrid_pq_accepted.status == "ok" and facts.hybrid_pq_accepted.value is False
    assert {g.kind for g in facts.tls13.value} == {"ecdhe"}


def test_tls13_server_preference_order(rsa_cert):
    """With -serverpref the TLS 1.3 list is in the server's configured order, whatever order we offer in."""
    with openssl_server(rsa_cert.cert, rsa_cert.key, "-groups", "P-521:X25519:P-256", "-serverpref") as port:
        facts = probe_groups(_endpoint(port))
    assert _names(facts.tls13) == ["secp521r1", "x25519", "secp256r1"]
    assert facts.preferred.value == "secp521r1"


def test_ffdhe_group_in_tls13(rsa_cert):
    """An FFDHE group configured for TLS 1.3 is found and classed as ffdhe."""
    with openssl_server(rsa_cert.cert, rsa_cert.key, "-groups", "ffdhe3072:P-256") as port:
        facts = probe_groups(_endpoint(port))
    kinds = {g.name: g.kind for g in facts.tls13.value}
    assert kinds == {"ffdhe3072": "ffdhe", "secp256r1": "ecdhe"}
    assert _names(facts.tls12) == ["secp256r1"]  # FFDHE groups are not TLS 1.2 curves


def test_dh_parameter_size(rsa_cert, tmp_path):
    """The DHE prime size is read from the ServerKeyExchange: a 1024-bit parameter file shows 1024."""
    dhparam = tmp_path / "dh1024.pem"
    subprocess.run(
        ["openssl", "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", "dh_paramgen_prime_len:1024",
         "-out", str(dhparam)],
        check=True, capture_output=True,
    )  # fmt: skip
    args = ("-no_tls1_3", "-cipher", "DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0", "-dhparam", str(dhparam))
    with openssl_server(rsa_cert.cert, rsa_cert.key, *args) as port:
        facts = probe_groups(_endpoint(port))
    assert facts.dh_parameter_bits.status == "ok" and facts.dh_parameter_bits.value == 1024
    assert _names(facts.tls13) == []  # no TLS 1.3 at all
    assert _names(facts.tls12) == []  # no ECDHE suite


def test_no_dhe_is_not_applicable(pki):
    """A server without DHE suites reports the DH size as not applicable, not as a number or a failure."""
    context = server_context(pki, ssl.TLSVersion.TLSv1_2)
    with python_tls_server(context) as server:
        facts = probe_groups(_endpoint(server.port))
    assert facts.dh_parameter_bits.status == "not_probed"
    assert facts.dh_parameter_bits.error is not None
    assert facts.dh_parameter_bits.error.error_class == "not_applicable"
    assert "x25519" in _names(facts.tls13)


def test_refused_port_is_an_error(refused_port):
    """Nothing listening: every group fact is an error with class refused, never an empty list."""
    facts = probe_groups(_endpoint(refused_port))
    assert facts.status == "error"
    assert facts.tls13.status == "error" and facts.tls13.error.error_class == "refused"
    assert facts.hybrid_pq_accepted.status == "error"


@contextlib.contextmanager
def tlslite_server(cert, groups: list[str]):
    """A tlslite-ng TLS 1.3 server (a pure-Python TLS stack with ML-KEM hybrids) on loopback."""
    chain = tlslite.X509CertChain()
    chain.parsePemList(cert.cert.read_text())
    key = tlslite.parsePEMKey(cert.key.read_text(), private=True)
    settings = tlslite.HandshakeSettings()
    settings.eccCurves = groups
    settings.keyShares = []
    settings.minVersion, settings.maxVersion = (3, 3), (3, 4)

    def handle(conn: socket.socket) -> None:
        tls = tlslite.TLSConnection(conn)
        tls.handshakeServer(certChain=chain, privateKey=key, settings=settings)
        tls.close()

    with LoopbackServer(handle) as server:
        yield server


def test_hybrid_post_quantum_group_accepted(rsa_cert):
    """A server that offers X25519MLKEM768 first is seen accepting it: hybrid_pq_accepted is true."""
    with tlslite_server(rsa_cert, ["x25519mlkem768", "x25519", "secp256r1"]) as server:
        facts = probe_groups(_endpoint(server.port))
    names = _names(facts.tls13)
    assert names[:3] == ["X25519MLKEM768", "x25519", "secp256r1"]
    assert facts.tls13.value[0].kind == "hybrid_pq"
    assert facts.hybrid_pq_accepted.value is True
    assert facts.preferred.value == "X25519MLKEM768"


def test_tls12_curves_behind_an_ecdsa_certificate(tmp_path):
    """With an ECDSA P-384 certificate every TLS 1.2 curve is still found (its curve stays in each offer)."""
    ecdsa = issue_certificate(tmp_path, "ecdsa-groups", key_type="p384")
    rsa = issue_certificate(tmp_path, "rsa-groups", key_type="rsa2048")
    found = {}
    for name, cert in (("ecdsa", ecdsa), ("rsa", rsa)):
        with openssl_server(cert.cert, cert.key, "-groups", "P-256:P-384:X25519") as port:
            found[name] = sorted(_names(probe_groups(_endpoint(port)).tls12))
    assert found["ecdsa"] == found["rsa"] == ["secp256r1", "secp384r1", "x25519"]
