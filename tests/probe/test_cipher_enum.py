"""The ClientHello-level cipher suite enumerator against real servers: it agrees with sslyze where both can test,
finds suites sslyze cannot, tells server from client order, survives fragile servers, and costs about
(accepted + 1) connections per version."""

from __future__ import annotations

import pytest

from scanner.facts import ErrorClass, ProtocolSupport, ProtocolVersion
from scanner.probe import iana
from scanner.probe.checks.ciphers import (
    ENUMERABLE_VERSIONS,
    ConnectionCounter,
    candidate_suites,
    enumerate_all,
    enumerate_version,
)
from tests.helpers import (
    gnutls_server,
    hello_filter_proxy,
    ipv6_tls13_server,
    issue_certificate,
    loopback_endpoint,
    openssl_server,
    sslyze_cipher_suites,
)

TLS10, TLS11, TLS12, TLS13 = (
    ProtocolVersion.TLSv1_0,
    ProtocolVersion.TLSv1_1,
    ProtocolVersion.TLSv1_2,
    ProtocolVersion.TLSv1_3,
)


@pytest.fixture(scope="module")
def rsa_cert(tmp_path_factory):
    return issue_certificate(tmp_path_factory.mktemp("enum-rsa"), "enum-rsa", key_type="rsa2048")


@pytest.fixture(scope="module")
def ecdsa_cert(tmp_path_factory):
    return issue_certificate(tmp_path_factory.mktemp("enum-ec"), "enum-ec", key_type="p384")


def _enumerate(
    port: int, *, timeout: float = 3.0, counter: ConnectionCounter | None = None
) -> dict[str, ProtocolSupport]:
    endpoint = loopback_endpoint(port, server_name="localhost", timeout=timeout)
    return {p.version.value: p for p in enumerate_all(endpoint, counter=counter)}


def _names(support: ProtocolSupport) -> list[str]:
    return [s.name for s in support.cipher_suites]


def _accepted(found: dict[str, ProtocolSupport]) -> dict[str, set[str]]:
    return {version: set(_names(p)) for version, p in found.items() if p.status == "accepted"}


# --- the registry ---------------------------------------------------------------------------------------------


def test_registry_has_every_assigned_suite_with_parsed_attributes():
    """Every assigned IANA suite loads with attributes read from its name; reserved, unassigned, GREASE and SCSV
    entries are left out, and TLS 1.3-only suites are offered only with TLS 1.3."""
    suites = iana.cipher_suites()
    assert len(suites) == 350
    for excluded in (0x00FF, 0x5600, 0x0A0A, 0x0060, 0xFEFE, 0xFF00):
        assert iana.cipher_suite(excluded) is None
    gcm = iana.cipher_suite(0xC02F)
    assert gcm is not None
    assert (gcm.name, gcm.key_exchange, gcm.authentication, gcm.encryption, gcm.mac, gcm.key_bits) == (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE", "RSA", "AES_128_GCM", "SHA256", 128,
    )  # fmt: skip
    export = iana.cipher_suite_by_name("TLS_DH_anon_EXPORT_WITH_DES40_CBC_SHA")
    assert export is not None
    assert (export.key_exchange, export.authentication, export.anonymous, export.export, export.key_bits) == (
        "DHE", "anon", True, True, 40,
    )  # fmt: skip
    ccm8 = iana.cipher_suite(0xC0AA)  # spelt TLS_PSK_DHE_WITH_... in the registry
    assert ccm8 is not None and (ccm8.key_exchange, ccm8.encryption, ccm8.mac) == ("DHE_PSK", "AES_128_CCM_8", "SHA256")
    null = iana.cipher_suite(0x0002)
    assert null is not None and (null.encryption, null.key_bits, null.mac) == ("NULL", 0, "SHA")
    tls13_only = {s.code for s in iana.suites_for_version(TLS13)} - {s.code for s in iana.suites_for_version(TLS12)}
    assert {0x1301, 0x1305, 0x00C6, 0xC0B4, 0xC103} <= tls13_only
    assert not {0xC02F, 0xC102, 0x0041} & tls13_only
    assert len(iana.suites_for_version(TLS12)) == 335 and len(iana.suites_for_version(TLS13)) == 19
    fact = iana.to_fact(gcm, "ECDH x25519 253")
    assert (fact.code, fact.openssl_name, fact.ephemeral_key) == (
        "0xC02F",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDH x25519 253",
    )


def test_group_registry_kinds():
    """Named groups load with their kind: EC, finite-field, post-quantum and hybrid; to_fact gives the facts' view."""
    kinds = {g.name: g.kind for g in iana.named_groups()}
    assert kinds["x25519"] == kinds["secp256r1"] == kinds["brainpoolP256r1tls13"] == "ecdhe"
    assert kinds["ffdhe2048"] == kinds["ffdhe8192"] == "ffdhe"
    assert kinds["X25519MLKEM768"] == kinds["SecP256r1MLKEM768"] == kinds["X25519Kyber768Draft00"] == "hybrid_pq"
    assert kinds["MLKEM768"] == "pq"
    assert kinds["arbitrary_explicit_prime_curves"] == "other"
    assert "Reserved" not in kinds and "Unassigned" not in kinds
    hybrid = iana.named_group(0x11EC)
    assert hybrid is not None
    assert iana.to_fact(hybrid).model_dump() == {"name": "X25519MLKEM768", "code": "0x11EC", "kind": "hybrid_pq"}


def test_candidates_put_common_suites_first():
    """The offer leads with what servers commonly accept, so a short first hello to a fragile server finds them."""
    first = [iana.cipher_suite(c).name for c in candidate_suites(TLS12)[:6]]  # type: ignore[union-attr]
    assert first[:2] == ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]
    assert candidate_suites(TLS13)[:3] == [0x1301, 0x1302, 0x1303]
    assert len(set(candidate_suites(TLS10))) == 335


# --- (a) agreement with sslyze --------------------------------------------------------------------------------

_AGREEMENT_SERVERS = {
    "openssl-all-suites": ("rsa", ["-cipher", "ALL:COMPLEMENTOFALL:@SECLEVEL=0"]),
    "openssl-tls10-12-cbc-dhe": (
        "rsa",
        ["-no_tls1_3", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA:"
         "DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-SHA:AES256-SHA:DES-CBC3-SHA:@SECLEVEL=0"],
    ),
    "openssl-tls13-ciphersuites": (
        "rsa",
        ["-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_CCM_8_SHA256"],
    ),
    "openssl-ecdsa-ccm-aria": (
        "ecdsa",
        ["-cipher", "ECDHE-ECDSA-AES128-CCM8:ECDHE-ECDSA-ARIA256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:"
         "ECDHE-ECDSA-AES256-SHA:@SECLEVEL=0"],
    ),
}  # fmt: skip


def _assert_agrees_with_sslyze(port: int) -> dict[str, ProtocolSupport]:
    ours = _enumerate(port)
    theirs = sslyze_cipher_suites(port)
    for version, sslyze in theirs.items():
        support = ours[version]
        assert support.status in ("accepted", "not_accepted"), (version, support.error)
        found = set(_names(support))
        assert found & sslyze.tested == sslyze.accepted, version
        assert (support.status == "accepted") == bool(found)
        for suite in support.cipher_suites:
            if suite.name in sslyze.dh_bits:
                assert suite.ephemeral_key == f"DH {sslyze.dh_bits[suite.name]}", (version, suite.name)
            elif suite.key_exchange in ("ECDHE", "any"):
                assert suite.ephemeral_key == "ECDH x25519 253", (version, suite.name)
    assert any(p.status == "accepted" for p in ours.values())
    return ours


@pytest.mark.parametrize("server", sorted(_AGREEMENT_SERVERS))
def test_agrees_with_sslyze_on_openssl(server, rsa_cert, ecdsa_cert):
    """On openssl s_server configurations, the enumerator and sslyze accept the same suites wherever both test,
    and see the same DH sizes."""
    key_type, args = _AGREEMENT_SERVERS[server]
    cert = rsa_cert if key_type == "rsa" else ecdsa_cert
    with openssl_server(cert.cert, cert.key, *args) as port:
        _assert_agrees_with_sslyze(port)


def test_agrees_with_sslyze_on_python_ssl(tls12_13_server):
    """On a Python ssl TLS 1.2 + 1.3 server, the enumerator and sslyze accept the same suites."""
    ours = _assert_agrees_with_sslyze(tls12_13_server.port)
    assert {v for v, p in ours.items() if p.status == "accepted"} == {"TLSv1.2", "TLSv1.3"}


def test_ipv6_loopback_server(pki):
    """A server on ::1 is enumerated like one on 127.0.0.1."""
    with ipv6_tls13_server(pki) as server:
        support = enumerate_version(loopback_endpoint(server.port, host="::1"), TLS13)
    assert support.status == "accepted"
    assert {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"} <= set(_names(support))


# --- (b) suites beyond sslyze ---------------------------------------------------------------------------------


def test_gnutls_camellia_suites_including_those_sslyze_cannot_offer(rsa_cert):
    """gnutls-serv limited to Camellia is enumerated exactly, Camellia-GCM included, which sslyze cannot test."""
    priority = "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+CAMELLIA-128-GCM:+CAMELLIA-256-CBC:+SHA384:+SHA1"
    with gnutls_server(rsa_cert.cert, rsa_cert.key, "--priority", priority) as port:
        found = _enumerate(port)
        sslyze = sslyze_cipher_suites(port)
    camellia_gcm = {
        "TLS_ECDHE_RSA_WITH_CAMELLIA_128_GCM_SHA256",
        "TLS_DHE_RSA_WITH_CAMELLIA_128_GCM_SHA256",
        "TLS_RSA_WITH_CAMELLIA_128_GCM_SHA256",
    }
    assert _accepted(found) == {
        "TLSv1.2": camellia_gcm
        | {
            "TLS_ECDHE_RSA_WITH_CAMELLIA_256_CBC_SHA384",
            "TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA",
            "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA",
        }
    }
    assert not camellia_gcm & sslyze["TLSv1.2"].tested
    assert set(_names(found["TLSv1.2"])) & sslyze["TLSv1.2"].tested == sslyze["TLSv1.2"].accepted


def test_openssl_aria_suites(rsa_cert):
    """openssl s_server limited to ARIA-GCM suites is enumerated to exactly those suites."""
    ciphers = "ECDHE-ARIA128-GCM-SHA256:DHE-RSA-ARIA256-GCM-SHA384:ARIA256-GCM-SHA384"
    with openssl_server(rsa_cert.cert, rsa_cert.key, "-tls1_2", "-cipher", ciphers) as port:
        found = _enumerate(port)
    assert _accepted(found) == {
        "TLSv1.2": {
            "TLS_ECDHE_RSA_WITH_ARIA_128_GCM_SHA256",
            "TLS_DHE_RSA_WITH_ARIA_256_GCM_SHA384",
            "TLS_RSA_WITH_ARIA_256_GCM_SHA384",
        }
    }
    aria = next(s for s in found["TLSv1.2"].cipher_suites if s.code == "0xC060")
    assert (aria.encryption, aria.key_bits, aria.mac, aria.openssl_name) == (
        "ARIA_128_GCM", 128, "SHA256", "ECDHE-ARIA128-GCM-SHA256",
    )  # fmt: skip


# --- (c) server preference ------------------------------------------------------------------------------------

_SERVER_ORDER_12 = [
    ("AES128-SHA", "TLS_RSA_WITH_AES_128_CBC_SHA"),
    ("ECDHE-RSA-AES256-GCM-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
    ("DHE-RSA-AES128-GCM-SHA256", "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"),
    ("ECDHE-RSA-CHACHA20-POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
]
_SERVER_ORDER_13 = ["TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"]


@pytest.mark.parametrize("serverpref", [True, False], ids=["serverpref", "client-order"])
def test_cipher_order(serverpref, rsa_cert):
    """With -serverpref the server's order is detected and reported as configured; without it, client order."""
    args = ["-cipher", ":".join(o for o, _ in _SERVER_ORDER_12), "-ciphersuites", ":".join(_SERVER_ORDER_13)]
    with openssl_server(rsa_cert.cert, rsa_cert.key, *args, *(["-serverpref"] if serverpref else [])) as port:
        found = _enumerate(port)
    tls12, tls13 = found["TLSv1.2"], found["TLSv1.3"]
    if serverpref:
        assert (tls12.cipher_order, _names(tls12)) == ("server", [name for _, name in _SERVER_ORDER_12])
        assert (tls13.cipher_order, _names(tls13)) == ("server", _SERVER_ORDER_13)
    else:
        assert tls12.cipher_order == tls13.cipher_order == "client"
        ours = [iana.cipher_suite(c).name for c in candidate_suites(TLS12)]  # type: ignore[union-attr]
        assert _names(tls12) == [n for n in ours if n in {name for _, name in _SERVER_ORDER_12}]
        assert _names(tls13) == ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]


def test_single_suite_has_no_order(rsa_cert):
    """With one suite accepted there is no order to tell, and no connection is spent trying."""
    counter = ConnectionCounter()
    with openssl_server(rsa_cert.cert, rsa_cert.key, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256") as port:
        support = enumerate_version(loopback_endpoint(port), TLS12, counter=counter)
    assert (support.status, support.cipher_order, _names(support)) == (
        "accepted", None, ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
    )  # fmt: skip
    assert counter.enumeration == {TLS12: 2} and counter.ordering == {}


# --- (d) fragile servers --------------------------------------------------------------------------------------

_ALL_SUITES = ["-cipher", "ALL:@SECLEVEL=0"]


@pytest.mark.parametrize("mode", ["reset", "close", "alert", "silent"])
def test_server_choking_on_long_hellos_is_fully_enumerated(mode, rsa_cert):
    """Behind a proxy that fails every ClientHello over 600 bytes (reset, close, decode_error alert or silence),
    the enumerator splits its offer and finds exactly what it finds talking to the server directly."""
    with openssl_server(rsa_cert.cert, rsa_cert.key, *_ALL_SUITES, "-serverpref") as port:
        direct = _enumerate(port)
        with hello_filter_proxy(port, lambda hello: mode if len(hello) > 600 else "forward") as proxy:
            counter = ConnectionCounter()
            behind = _enumerate(proxy.port, timeout=0.5 if mode == "silent" else 3.0, counter=counter)
    assert mode in proxy.actions and max(proxy.hello_lengths) > 600
    for version in ("SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"):
        assert behind[version].status == direct[version].status, (version, behind[version].error)
        assert _names(behind[version]) == _names(direct[version]), version
        assert behind[version].cipher_order == direct[version].cipher_order
    assert len(direct["TLSv1.2"].cipher_suites) > 40  # the offer had to be split for this to be complete
    # Splitting costs a few connections per version, not one per suite.
    accepted = len(direct["TLSv1.2"].cipher_suites)
    assert counter.enumeration[TLS12] <= accepted + 6


def test_version_refused_by_reset_is_not_accepted_after_one_connection(rsa_cert):
    """A server that resets TLS 1.0/1.1 hellos (as some stacks refuse versions) has them not accepted, at the cost
    of one connection each once it has answered a longer hello for another version."""

    def decide(hello: bytes) -> str:
        return "reset" if hello[9:11] in (b"\x03\x01", b"\x03\x02") else "forward"

    with (
        openssl_server(rsa_cert.cert, rsa_cert.key, *_ALL_SUITES) as port,
        hello_filter_proxy(port, decide) as proxy,
    ):
        counter = ConnectionCounter()
        found = _enumerate(proxy.port, counter=counter)
    assert found["TLSv1.0"].status == found["TLSv1.1"].status == "not_accepted"
    assert found["TLSv1.2"].status == found["TLSv1.3"].status == "accepted"
    assert counter.enumeration[TLS10] == counter.enumeration[TLS11] == 1


def test_refused_server_name_is_an_error_not_a_refusal(rsa_cert):
    """A fatal unrecognized_name alert refuses the name we sent, not the suites: an error, never 'not accepted'."""
    args = ("--sni-hostname", "example.test", "--sni-hostname-fatal")
    with gnutls_server(rsa_cert.cert, rsa_cert.key, *args) as port:
        wrong = enumerate_version(loopback_endpoint(port, server_name="localhost"), TLS12)
        right = enumerate_version(loopback_endpoint(port, server_name="example.test"), TLS12)
    assert wrong.status == "error" and wrong.error is not None
    assert wrong.error.error_class == ErrorClass.handshake_failed and "unrecognized_name" in wrong.error.message
    assert right.status == "accepted"


def test_silent_server_is_an_error_not_a_refusal(silent_server):
    """A server that never answers makes the version an error (timeout), never 'not accepted'."""
    support = enumerate_version(loopback_endpoint(silent_server.port, timeout=0.3), TLS12)
    assert support.status == "error"
    assert support.error is not None and support.error.error_class == ErrorClass.timeout


@pytest.mark.parametrize(("fixture", "error_class"), [("refused_port", "refused"), ("http_server", "not_tls")])
def test_unreachable_target_costs_one_connection(fixture, error_class, request):
    """A target that refuses connections, or is not TLS, is an error for every version after one attempt."""
    server = request.getfixturevalue(fixture)
    port = server if isinstance(server, int) else server.port
    counter = ConnectionCounter()
    found = _enumerate(port, counter=counter)
    assert [p.status for p in found.values()] == ["error"] * 5
    assert {p.error.error_class.value for p in found.values() if p.error} == {error_class}
    assert counter.total == 1


# --- (e) cost -------------------------------------------------------------------------------------------------


def test_connections_per_version_are_accepted_plus_one(rsa_cert):
    """Each version costs (accepted + 1) connections to enumerate, plus one to test the order when two or more
    suites are accepted; versions the server refuses cost one."""
    counter = ConnectionCounter()
    with openssl_server(rsa_cert.cert, rsa_cert.key, *_ALL_SUITES) as port:
        found = _enumerate(port, counter=counter)
    for version in ENUMERABLE_VERSIONS:
        accepted = len(found[version.value].cipher_suites)
        assert counter.enumeration[version] == accepted + 1, version
        assert counter.ordering.get(version, 0) == (1 if accepted >= 2 else 0), version
    assert len(found["TLSv1.2"].cipher_suites) > 40 and found["SSLv3"].status == "not_accepted"
