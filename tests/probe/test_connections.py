"""How many connections a scan costs beyond the enumeration, counted by the server side, and the handshakes it
saved still giving the facts they gave (issue 18).

The certificate costs one handshake (sslyze's chain job without its connectivity test, ``chain_only``) and one per
kind of key the facts do not already answer (pki/deployments ``answered_offers``); the preflight one more.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from scanner.facts import Facts, ProtocolVersion
from scanner.probe import sslyze_adapter
from scanner.probe.checks.ciphers import enumerate_all
from scanner.probe.checks.sslv2 import probe_sslv2
from scanner.probe.connect.endpoint import ClientCredentials
from scanner.probe.options import ConnectOptions, ProbeOptions
from scanner.probe.pki.certchain import CertificateOptions
from scanner.probe.pki.stores import TrustStoreSpec
from scanner.probe.registry import BASELINE, Extra
from scanner.probe.run import probe_targets
from scanner.probe.sslyze_adapter import ServedCertificates, SslyzeRequest
from scanner.targets import parse_target
from tests import pki
from tests.helpers import client_pki, hello_filter_proxy, loopback_endpoint, openssl_server
from tests.nginx import nginx_server
from tests.probe.test_big_chain import good_response


@pytest.fixture(scope="module")
def chains(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An RSA and an ECDSA leaf for localhost under one intermediate: PEM chains, keys, the root, a stapled
    OCSP response for the RSA leaf."""
    directory = tmp_path_factory.mktemp("connections")
    root = pki.issue(pki.name("connections root CA"), ca=True, days=3650, key=pki.new_key("p384"))
    intermediate = pki.issue(pki.name("connections intermediate CA"), issuer=root, ca=True, path_length=0, days=1825)
    leaf: dict[str, Any] = {"sans": ("localhost", "127.0.0.1"), "eku": pki.SERVER_AUTH, "days": 90}
    rsa = pki.issue(pki.name("localhost"), issuer=intermediate, key=pki.new_key("rsa2048"), **leaf)
    ecdsa = pki.issue(pki.name("localhost"), issuer=intermediate, key=pki.new_key("p256"), **leaf)
    status = directory / "status.der"
    status.write_bytes(good_response(rsa, intermediate))
    (directory / "intermediate.pem").write_bytes(intermediate.pem)
    (directory / "root.pem").write_bytes(root.pem)
    return {
        "rsa": rsa.write(directory, "rsa", chain=[intermediate]),
        "ecdsa": ecdsa.write(directory, "ecdsa", chain=[intermediate]),
        "rsa_leaf": rsa.write(directory / "leaf", "rsa"),
        "intermediate": directory / "intermediate.pem",
        "root": directory / "root.pem",
        "status": status,
    }


def _der(served: ServedCertificates) -> tuple[list[bytes], bytes | None]:
    stapled = served.stapled.public_bytes(Encoding.DER) if served.stapled is not None else None
    return [c.public_bytes(Encoding.DER) for c in served.chain], stapled


_VERSIONS = {"-tls1_3": ProtocolVersion.TLSv1_3, "-tls1_2": ProtocolVersion.TLSv1_2, "-tls1_1": ProtocolVersion.TLSv1_1}


@pytest.mark.parametrize("flag", list(_VERSIONS))
def test_the_chain_job_alone_reads_what_sslyze_reads(chains: dict[str, Any], flag: str) -> None:
    """The one handshake of chain_only brings the very chain and stapled response sslyze's full run (connectivity
    test, then its chain job) brings, at each version the server may top out at."""
    cert, key = chains["rsa_leaf"]
    args = [flag, "-status_file", str(chains["status"])]
    if flag == "-tls1_1":
        args += ["-cipher", "DEFAULT:@SECLEVEL=0"]
    with openssl_server(cert, key, *args, chain=chains["intermediate"], www=False) as port:
        endpoint = loopback_endpoint(port, server_name="localhost", timeout=5)
        alone = sslyze_adapter.chain_only(endpoint, _VERSIONS[flag])
        full = sslyze_adapter.scan_one(SslyzeRequest(endpoint, frozenset({Extra.certificate})))
    assert full is not None
    assert isinstance(full.certificate, ServedCertificates), full
    assert isinstance(alone, ServedCertificates)
    assert alone.stapled is not None, "s_server stapled nothing"
    assert _der(alone) == _der(full.certificate)
    assert len(alone.chain) == 2


def test_the_chain_job_alone_leaves_hard_cases_to_sslyze(chains: dict[str, Any], tmp_path: Path) -> None:
    """No answer where sslyze's connectivity test would have a say: a version the server does not speak, a server
    that asks for a client certificate, client credentials given."""
    cert, key = chains["rsa"]
    with openssl_server(cert, key, "-tls1_2", www=False) as port:
        endpoint = loopback_endpoint(port, server_name="localhost", timeout=5)
        assert sslyze_adapter.chain_only(endpoint, ProtocolVersion.TLSv1_3) is None
        assert sslyze_adapter.chain_only(endpoint, ProtocolVersion.SSLv2) is None
        assert isinstance(sslyze_adapter.chain_only(endpoint, ProtocolVersion.TLSv1_2), ServedCertificates)
        client = client_pki(tmp_path)
        credentials = ClientCredentials(cert_chain=client.cert, key=client.key, description="client.pem")
        with_credentials = loopback_endpoint(port, server_name="localhost", timeout=5, credentials=credentials)
        assert sslyze_adapter.chain_only(with_credentials, ProtocolVersion.TLSv1_2) is None
    with openssl_server(cert, key, "-tls1_2", "-verify", "1", www=False) as port:
        endpoint = loopback_endpoint(port, server_name="localhost", timeout=5)
        assert sslyze_adapter.chain_only(endpoint, ProtocolVersion.TLSv1_2) is None


def _options(root: Path) -> ProbeOptions:
    certificates = CertificateOptions(stores=(TrustStoreSpec("file", root),), revocation=False)
    return ProbeOptions(timeout=5, plan=BASELINE, certificates=certificates, offline=True)


def _counted(port: int, root: Path, server_name: str | None = "localhost") -> tuple[int, int, Facts]:
    """Connections a whole scan (default plan) of the server costs, and those of its protocol probes alone,
    counted by a proxy in front of the server; and the scan's facts."""
    connect = ConnectOptions(server_name=server_name, no_sni=server_name is None)
    with hello_filter_proxy(port, lambda hello: "forward") as proxy:
        target = parse_target(f"127.0.0.1:{proxy.port}")
        [facts] = probe_targets([(target, connect)], _options(root))
        scan = len(proxy.actions)
        endpoint = loopback_endpoint(proxy.port, server_name=server_name, timeout=5)
        protocols = [probe_sslv2(endpoint), *enumerate_all(endpoint)]
        enumeration = len(proxy.actions) - scan
    assert [p.status for p in protocols] == [p.status for p in facts.protocols]
    return scan, enumeration, facts


@pytest.fixture
def nginx(chains: dict[str, Any]) -> Iterator[Any]:
    def serve(key: str, *protocols: str, extra: str = "") -> Any:
        return nginx_server(*chains[key], protocols=protocols, extra=extra)

    yield serve


# (server, protocols, ssl directives) -> connections beyond the enumeration: the preflight, the chain, and the
# offers not answered by the facts (TLS 1.3: the two kinds other than the default's; TLS 1.2 highest: the offers
# whose suites the server accepts, other than the default's kind).
_CASES = {
    "rsa, TLS 1.2 + 1.3": ("rsa", ("TLSv1.2", "TLSv1.3"), "", 1 + 1 + 2),  # was 1 + 3 + 3
    "ecdsa, TLS 1.3 only": ("ecdsa", ("TLSv1.3",), "", 1 + 1 + 2),  # was 1 + 3 + 3
    "rsa, TLS 1.2 only": ("rsa", ("TLSv1.2",), "", 1 + 1 + 0),  # was 1 + 3 + 3
    # ECDSA suites serve the "other" offer (Ed25519) too: asked.
    "ecdsa, TLS 1.2 only": ("ecdsa", ("TLSv1.2",), "ssl_ciphers ECDHE+AESGCM;", 1 + 1 + 1),  # was 1 + 3 + 3
}


@pytest.mark.parametrize("case", list(_CASES))
@pytest.mark.parametrize("server_name", ["localhost", None])
def test_connections_beyond_the_enumeration(
    chains: dict[str, Any], nginx: Any, case: str, server_name: str | None
) -> None:
    """Without SNI the default chain (sslyze sends the address as SNI) does not settle the offer of its kind on a
    TLS 1.3 server: one more; on a TLS 1.2 server the leaves the enumeration saw do."""
    key, protocols, extra, expected = _CASES[case]
    if server_name is None and "TLSv1.3" in protocols:
        expected += 1
    with nginx(key, *protocols, extra=extra) as server:
        scan, enumeration, facts = _counted(server.port, chains["root"], server_name)
    assert facts.status == "ok", facts.error
    assert facts.certificate.status == "ok", facts.certificate.error
    assert [d.offers for d in facts.certificate_deployments] == [["default", key]]
    assert scan - enumeration == expected, (scan, enumeration)


def test_both_kinds_still_cost_one_offer_each(chains: dict[str, Any], nginx: Any) -> None:
    """An RSA and an ECDSA certificate side by side: the offer of the default's kind is answered by the default,
    the other kind's and "other" are asked; both deployments are found as before."""
    second = f"ssl_certificate {chains['ecdsa'][0]}; ssl_certificate_key {chains['ecdsa'][1]};"
    with nginx("rsa", "TLSv1.2", "TLSv1.3", extra=second) as server:
        scan, enumeration, facts = _counted(server.port, chains["root"])
    offers = [d.offers for d in facts.certificate_deployments]
    assert sorted(offers) == sorted([["default", "ecdsa"], ["rsa"]]) or sorted(offers) == sorted(
        [["default", "rsa"], ["ecdsa"]]
    )
    assert all(d.certificate.status == "ok" for d in facts.certificate_deployments)
    assert scan - enumeration == 1 + 1 + 2, (scan, enumeration)


def test_two_kinds_on_tls12_without_sni(chains: dict[str, Any], nginx: Any) -> None:
    """TLS 1.2, no SNI, an RSA and an ECDSA certificate: the leaves the enumeration saw settle the default's kind
    only; the other kind is asked (and found), "other" too (ECDSA suites are accepted)."""
    second = f"ssl_certificate {chains['ecdsa'][0]}; ssl_certificate_key {chains['ecdsa'][1]};"
    with nginx("rsa", "TLSv1.2", extra=second) as server:
        scan, enumeration, facts = _counted(server.port, chains["root"], server_name=None)
    offers = sorted(d.offers for d in facts.certificate_deployments)
    assert offers in (sorted([["default", "ecdsa"], ["rsa"]]), sorted([["default", "rsa"], ["ecdsa"]]))
    assert all(d.certificate.status == "ok" for d in facts.certificate_deployments)
    assert scan - enumeration == 1 + 1 + 2, (scan, enumeration)


def test_no_sni_asks_the_offer_of_the_default_kind(chains: dict[str, Any]) -> None:
    """sslyze sends the address as SNI when the endpoint sends none, the offers send none: a server choosing its
    certificate by name could answer them differently, so the offer of the default's kind is made."""
    cert, key = chains["rsa_leaf"]
    with openssl_server(cert, key, "-tls1_3", chain=chains["intermediate"], www=False) as port:
        scan, enumeration, facts = _counted(port, chains["root"], server_name=None)
    assert [d.offers for d in facts.certificate_deployments] == [["default", "rsa"]]
    assert scan - enumeration == 1 + 1 + 3, (scan, enumeration)
