"""The scoring tables and caps of the rating guide on constructed facts: the cases no local server can offer
(SSL 2.0, SSL 3.0, export and anonymous suites, vulnerabilities), and the order --min-grade compares."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from scanner.facts import (
    Behaviours,
    Certificate,
    CertificateFacts,
    CipherSuite,
    ErrorClass,
    Facts,
    ProbeError,
    ProtocolSupport,
    ProtocolVersion,
    PublicKey,
    RevocationResult,
    TargetInfo,
    TrustResult,
    observed,
)
from scanner.gate import grade_gate
from scanner.grade import ec_strength, ephemeral_strength, grade, letter_for, meets, parse_grade

AT = dt.datetime(2026, 12, 5, tzinfo=dt.UTC)
GOOD_TLS12 = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
GOOD_TLS13 = "TLS_AES_256_GCM_SHA384"


def suite(name: str, kx: str = "ECDHE", enc: str = "AES_128_GCM", bits: int = 128, eph: str | None = "ECDH x25519 253",
          **more: Any) -> CipherSuite:  # fmt: skip
    return CipherSuite(name=name, key_exchange=kx, encryption=enc, key_bits=bits, ephemeral_key=eph, **more)


def tls13() -> ProtocolSupport:
    return ProtocolSupport(
        version=ProtocolVersion.TLSv1_3, status="accepted", cipher_suites=[suite(GOOD_TLS13, "any", "AES_256_GCM", 256)]
    )


def version(v: ProtocolVersion, *suites: CipherSuite) -> ProtocolSupport:
    return ProtocolSupport(version=v, status="accepted", cipher_suites=list(suites) or [suite(GOOD_TLS12)])


def leaf(
    key: PublicKey | None = None, signature: str = "sha256WithRSAEncryption", hash_: str = "sha256"
) -> Certificate:
    return Certificate(
        subject="CN=example.test", issuer="CN=test CA", serial="01", sha256="00" * 32,
        public_key=key or PublicKey(type="RSA", size=2048), signature_algorithm=signature, signature_hash=hash_,
        not_before=AT - dt.timedelta(days=10), not_after=AT + dt.timedelta(days=80), validity_days=90,
        self_signed=False,
    )  # fmt: skip


def certificate(trusted: bool = True, reason: str | None = None, **more: Any) -> CertificateFacts:
    trust = [TrustResult(store="mozilla", trusted=trusted, reason=reason)]  # type: ignore[arg-type]
    options: dict[str, Any] = {
        "leaf": leaf(), "trust": trust, "trust_name": "example.test", "hostname_match": observed(True), **more,
    }  # fmt: skip
    return CertificateFacts(status="ok", **options)


def facts(*protocols: ProtocolSupport, cert: CertificateFacts | None = None, **more: Any) -> Facts:
    target = TargetInfo(input="example.test:443", host="example.test", port=443, server_name="example.test",
                        ip_address="192.0.2.1")  # fmt: skip
    return Facts(
        target=target, started_at=AT, finished_at=AT, status="ok",
        protocols=list(protocols) or [version(ProtocolVersion.TLSv1_2), tls13()],
        certificate=cert or certificate(), **more,
    )  # fmt: skip


def caps_of(item: Facts) -> set[str]:
    grading = grade(item)
    assert grading is not None
    return {cap.rule for cap in grading.caps}


def test_a_good_server_gets_an_a_and_never_an_a_plus() -> None:
    """TLS 1.2 + 1.3, ECDHE, AES-GCM, RSA 2048: 100, 90, (100 + 80) / 2 = 90 -> 93 -> A; A+ needs HSTS."""
    grading = grade(facts())
    assert grading is not None
    assert (grading.grade, grading.score, grading.caps) == ("A", 93, [])
    assert any("HSTS" in w or "Strict Transport Security" in w for w in grading.warnings)


@pytest.mark.parametrize(
    ("protocols", "expected"),
    [
        ([ProtocolVersion.SSLv2, ProtocolVersion.TLSv1_2], "F"),  # SSL 2.0 (2009c); its score 0 makes it 50 too
        ([ProtocolVersion.SSLv3], "F"),  # SSL 3.0 the best version (2009i)
        ([ProtocolVersion.SSLv3, ProtocolVersion.TLSv1_2], "C"),  # with CBC suites: POODLE (2009g)
        ([ProtocolVersion.TLSv1_0, ProtocolVersion.TLSv1_2], "B"),  # TLS 1.0 (2020)
        ([ProtocolVersion.TLSv1_0], "C"),  # no TLS 1.2 (2009j)
        ([ProtocolVersion.TLSv1_2], "A"),
    ],
)
def test_protocol_caps(protocols: list[ProtocolVersion], expected: str) -> None:
    cbc = suite("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", enc="AES_128_CBC")
    gcm = suite(GOOD_TLS12)
    item = facts(*(version(v, cbc, gcm) if v != ProtocolVersion.TLSv1_2 else version(v, gcm) for v in protocols))
    assert grade(item).grade == expected  # type: ignore[union-attr]


def test_protocol_score_is_best_plus_worst_halved() -> None:
    """SSL 2.0 (0) and TLS 1.3 (100): 50; a zero in any category makes the whole score zero."""
    item = facts(version(ProtocolVersion.SSLv2), tls13())
    grading = grade(item)
    assert grading is not None and grading.protocol_score == 50
    anonymous = facts(
        version(ProtocolVersion.TLSv1_2, suite("TLS_DH_anon_WITH_AES_128_GCM_SHA256", "DH", anonymous=True))
    )
    grading = grade(anonymous)
    assert grading is not None and (grading.key_exchange_score, grading.score, grading.grade) == (0, 0, "F")


@pytest.mark.parametrize(
    ("suites", "rule", "expected"),
    [
        ([suite("TLS_RSA_EXPORT_WITH_RC4_40_MD5", "RSA", "RC4_40", 40, None, export=True)], "export", "F"),
        ([suite("TLS_ECDHE_RSA_WITH_RC4_128_SHA", enc="RC4_128")], "rc4-only", "F"),
        ([suite(GOOD_TLS12), suite("TLS_ECDHE_RSA_WITH_RC4_128_SHA", enc="RC4_128")], "rc4-modern", "C"),
        (
            [suite(GOOD_TLS12), suite("TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", enc="3DES_EDE_CBC", bits=168)],
            "64-bit-block",
            "C",
        ),
        ([suite("TLS_RSA_WITH_AES_128_GCM_SHA256", "RSA", eph=None)], "no-forward-secrecy", "B"),
        ([suite("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", enc="AES_128_CBC")], "no-aead", "B"),
        ([suite("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", "DHE", eph="DH 1024")], "weak-dh", "B"),
    ],
)
def test_suite_caps(suites: list[CipherSuite], rule: str, expected: str) -> None:
    item = facts(version(ProtocolVersion.TLSv1_2, *suites))
    assert rule in caps_of(item)
    assert grade(item).grade == expected  # type: ignore[union-attr]


def test_rc4_with_only_old_versions_is_capped_at_b_not_c() -> None:
    """RC4 with TLS 1.0 alone is 2009i's B; 2009j's C is for RC4 with TLS 1.1 or newer."""
    rc4 = suite("TLS_ECDHE_RSA_WITH_RC4_128_SHA", enc="RC4_128")
    item = facts(version(ProtocolVersion.TLSv1_0, rc4, suite(GOOD_TLS12)), version(ProtocolVersion.TLSv1_2))
    assert {"rc4"} <= caps_of(item) and "rc4-modern" not in caps_of(item)


@pytest.mark.parametrize(
    ("key", "expected", "kx_score"),
    [
        (PublicKey(type="RSA", size=1024), "B", 80),  # below 2048: weak (2009e); < 2048 -> 80
        (PublicKey(type="RSA", size=512), "F", 40),  # below 1024: insecure (2009e)
        (PublicKey(type="RSA", size=4096), "A", 90),  # x25519 (3072) is now the weaker part
        (PublicKey(type="EC", size=384, curve="secp384r1"), "A", 90),
    ],
)
def test_certificate_key(key: PublicKey, expected: str, kx_score: int) -> None:
    item = facts(cert=certificate(leaf=leaf(key)))
    grading = grade(item)
    assert grading is not None and (grading.grade, grading.key_exchange_score) == (expected, kx_score)


def test_md5_signature_fails() -> None:
    item = facts(cert=certificate(leaf=leaf(signature="md5WithRSAEncryption", hash_="md5")))
    assert grade(item).grade == "F" and "signature-insecure" in caps_of(item)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("behaviours", "rule", "expected"),
    [
        ({"compression": observed(True)}, "crime", "C"),
        ({"heartbleed": observed(True)}, "heartbleed", "F"),
        ({"ccs_injection": observed(True)}, "ccs-injection", "F"),
        ({"robot": observed("vulnerable_weak")}, "robot", "F"),
        (
            {"secure_renegotiation": observed(False), "client_renegotiation": observed(True)},
            "insecure-renegotiation",
            "F",
        ),
        ({"secure_renegotiation": observed(False)}, "no-secure-renegotiation", "A-"),
    ],
)
def test_behaviour_caps(behaviours: dict[str, Any], rule: str, expected: str) -> None:
    item = facts(behaviours=Behaviours(status="ok", **behaviours))
    assert rule in caps_of(item) and grade(item).grade == expected  # type: ignore[union-attr]


def test_behaviours_not_probed_are_a_warning_not_a_cap() -> None:
    grading = grade(facts())
    assert grading is not None and any("behaviours were not probed" in w for w in grading.warnings)
    clean = grade(facts(behaviours=Behaviours(status="ok", secure_renegotiation=observed(True))))
    assert clean is not None and not any("behaviours" in w for w in clean.warnings)


@pytest.mark.parametrize(
    ("cert", "expected"),
    [
        (certificate(trusted=False, reason="expired"), "T"),
        (certificate(trusted=False, reason="self_signed"), "T"),
        (certificate(trusted=False, reason="name_mismatch"), "M"),
        (certificate(hostname_match=observed(False), hostname_mismatch="no_matching_name"), "M"),
        (
            certificate(
                revocation=[
                    RevocationResult(certificate="00", subject="CN=x", leaf=True, source="ocsp", status="revoked")
                ]
            ),
            "T",
        ),
        # --no-name-check: identified by the DN, the name is no problem
        (certificate(hostname_match=observed(False), trust_name=None), "A"),
    ],
)
def test_certificate_problems_replace_the_letter(cert: CertificateFacts, expected: str) -> None:
    assert grade(facts(cert=cert)).grade == expected  # type: ignore[union-attr]


def test_t_outranks_a_capped_letter() -> None:
    """A server that would be F and is not trusted shows T, as SSL Labs does."""
    item = facts(version(ProtocolVersion.SSLv2), tls13(), cert=certificate(trusted=False, reason="unknown_issuer"))
    assert grade(item).grade == "T"  # type: ignore[union-attr]


def test_no_grade_without_something_to_score() -> None:
    """Not scanned, a certificate file, or no suite observed: no grade (None), never a made-up F."""
    target = TargetInfo(input="x:443", host="x", port=443, server_name=None, ip_address=None)
    down = Facts(target=target, started_at=AT, finished_at=AT, status="error",
                 error=ProbeError(error_class=ErrorClass.refused, message="refused"))  # fmt: skip
    assert grade(down) is None
    file = facts().model_copy(update={"target": target.model_copy(update={"source": "file"})})
    assert grade(file) is None
    bare = facts(ProtocolSupport(version=ProtocolVersion.TLSv1_2, status="accepted"))
    assert grade(bare) is None


def test_strengths() -> None:
    assert ephemeral_strength("ECDH x25519 253") == 3072
    assert ephemeral_strength("ECDH secp384r1 384") == 7680
    assert ephemeral_strength("DH ffdhe2048 2048") == 2048
    assert ephemeral_strength("DH 1024") == 1024
    assert ephemeral_strength("X25519MLKEM768") == 3072
    assert ephemeral_strength(None) is None
    assert ec_strength(521) == 15360 and ec_strength(160) == 1024
    assert [letter_for(s) for s in (80, 79, 65, 50, 35, 20, 19)] == ["A", "B", "B", "C", "D", "E", "F"]


def test_grade_order_for_min_grade() -> None:
    """A+ > A > A- > B > C > D > E > F; T and M meet no minimum; grade text is read case- and space-insensitively."""
    assert parse_grade(" a- ") == "A-" and parse_grade("b") == "B"
    assert parse_grade("T") is None and parse_grade("A++") is None and parse_grade("") is None
    assert meets("A+", "A") and meets("A", "A") and not meets("A-", "A") and meets("A-", "B")
    assert not meets("F", "E") and meets("F", "F")
    assert not meets("T", "F") and not meets("M", "F") and not meets(None, "F")


def test_grade_gate() -> None:
    grading = grade(facts(version(ProtocolVersion.TLSv1_0), version(ProtocolVersion.TLSv1_2)))
    assert grading is not None and grading.grade == "B"
    assert grade_gate(grading, True, None) == ("pass", None)
    assert grade_gate(grading, True, "B") == ("pass", None)
    assert grade_gate(grading, True, "A") == ("fail", "grade B is below --min-grade A")
    assert grade_gate(None, True, "A")[0] == "error"
    assert grade_gate(None, False, "A") == ("pass", None)  # not scanned: already "could not check"


def test_incomplete_chain_caps_at_b() -> None:
    item = facts(cert=certificate(chain_complete=observed(False)))
    assert "incomplete-chain" in caps_of(item) and grade(item).grade == "B"  # type: ignore[union-attr]
