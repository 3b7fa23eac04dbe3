"""The standards packs (NIST SP 800-52r2, PCI DSS 4.0.1, BSI TR-02102-2, CA/B Forum BR): every rule passing, failing
and not applying on constructed facts, and each pack against a real loopback server through the command line."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import pytest
from cryptography import x509

from scanner.exitcodes import ExitCode
from scanner.facts import (
    NOT_PROBED,
    BasicConstraints,
    Behaviours,
    Certificate,
    CertificateFacts,
    CertificateLint,
    CipherSuite,
    ErrorClass,
    Facts,
    GroupFacts,
    LintDocument,
    NamedGroup,
    Observed,
    RevocationResult,
    TrustResult,
    observed,
    unobserved,
)
from scanner.findings import Status
from scanner.policy.engine import evaluate
from scanner.policy.pack import PackError, RulePack, load_pack
from scanner.probe.pki.certificates import certificate_facts
from tests import pki
from tests.helpers import REPO, openssl_server
from tests.ocsp_crl_server import RevocationServer
from tests.packs import harness
from tests.packs.harness import all_pass, case_test, coverage_test, statuses

PACKS = ("nist-sp800-52r2", "pci-dss-4", "bsi-tr-02102-2", "cabf-server-cert")
SCANNED = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
PASS, FAIL, NA, ERROR = Status.passed, Status.failed, Status.not_applicable, Status.error


def pack(pack_id: str, params: dict[str, Any] | None = None) -> RulePack:
    return load_pack(REPO / "rules" / f"{pack_id}.yaml", params)


# --- facts of an endpoint, built field by field ------------------------------------------------------------------

GROUP_CODES = {
    "secp192r1": ("0x0013", "ecdhe"),
    "secp224r1": ("0x0015", "ecdhe"),
    "secp256r1": ("0x0017", "ecdhe"),
    "secp384r1": ("0x0018", "ecdhe"),
    "secp521r1": ("0x0019", "ecdhe"),
    "brainpoolP256r1": ("0x001A", "ecdhe"),
    "x25519": ("0x001D", "ecdhe"),
    "brainpoolP256r1tls13": ("0x001F", "ecdhe"),
    "ffdhe2048": ("0x0100", "ffdhe"),
    "ffdhe3072": ("0x0101", "ffdhe"),
    "X25519MLKEM768": ("0x11EC", "hybrid_pq"),
}
TLS12 = ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384")
TLS13 = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384")
P384 = ("EC", 384, "secp384r1")


def suite(name: str) -> CipherSuite:
    """A suite as the enumerator reports it (from the IANA registry): TLS 1.3 suites have key exchange 'any'."""
    return harness.iana_suite(name)


def certificate(
    subject: str = "CN=www.example.gov",
    *,
    issuer: str = "CN=Example Issuing CA",
    key: tuple[str, int | None, str | None] = P384,
    signature_hash: str | None = "sha384",
    signature_algorithm: str | None = None,
    not_before: dt.datetime = dt.datetime(2026, 4, 1, tzinfo=dt.UTC),
    validity_days: float = 90.0,
    days_remaining: float = 60.0,
    eku: tuple[str, ...] | None = ("serverAuth",),
    ocsp: bool = True,
    sans: tuple[str, ...] = ("DNS:www.example.gov",),
    ca_issuers: bool = True,
    ca: bool = False,
    self_signed: bool = False,
) -> Certificate:
    return harness.certificate(
        subject, issuer=None if self_signed else issuer, key=key,
        signature_algorithm=signature_algorithm or f"signed-with-{signature_hash}", signature_hash=signature_hash,
        not_before=not_before, days=validity_days, days_remaining=days_remaining,
        eku=eku, serial="0a1b", sha256=hashlib.sha256(subject.encode()).hexdigest(),
        basic_constraints=BasicConstraints(ca=ca), ocsp_urls=["http://ocsp.example.gov"] if ocsp else [],
        subject_alt_names=list(sans), ca_issuer_urls=["http://ca.example.gov/issuing.crt"] if ca_issuers else [],
    )  # fmt: skip


INTERMEDIATE = certificate(
    "CN=Example Issuing CA", issuer="CN=Example Root CA", validity_days=1825, days_remaining=1500, eku=None, ca=True
)


def rsa(bits: int) -> tuple[str, int, None]:
    return ("RSA", bits, None)


def revocation(leaf: Certificate, *statuses: str) -> list[RevocationResult]:
    return [RevocationResult(certificate=leaf.sha256, subject=leaf.subject, source="ocsp", status=s) for s in statuses]


def fact(value: Any) -> Observed[Any]:
    return value if isinstance(value, Observed) else observed(value)


def groups(names: tuple[str, ...]) -> Observed[Any]:
    return observed([NamedGroup(name=n, code=GROUP_CODES[n][0], kind=GROUP_CODES[n][1]) for n in names])


def endpoint(
    *,
    versions: dict[str, tuple[str, ...]] | None = None,
    leaf: Certificate | None = None,
    chain: list[Certificate] | None = None,
    groups12: tuple[str, ...] = ("secp256r1", "secp384r1"),
    groups13: tuple[str, ...] = ("secp256r1", "secp384r1"),
    dh_bits: int | None = None,
    ems: Any = True,
    renegotiation: Any = True,
    stapling: Any = True,
    client_renegotiation: Any = False,
    compression: Any = False,
    fallback_scsv: Any = True,
    trust: tuple[tuple[str, bool], ...] = (("mozilla", True),),
    revoked: tuple[str, ...] = ("good",),
    lints: tuple[CertificateLint, ...] = (),
) -> Facts:
    """A scanned endpoint; the defaults meet every rule of the four packs (or make it not apply)."""
    leaf = leaf or certificate()
    chain = chain if chain is not None else [leaf, INTERMEDIATE]
    dh = observed(dh_bits) if dh_bits else unobserved(ErrorClass.not_applicable, "the server accepts no DHE suite")
    accepted = versions if versions is not None else {"TLSv1.2": TLS12, "TLSv1.3": TLS13}
    return harness.scanned(
        harness.target("www.example.gov", 443, "192.0.2.10"), at=SCANNED,
        protocols=harness.protocols(accepted, suite=suite),
        certificate=CertificateFacts(
            status="ok", leaf=leaf, chain=chain,
            trust=[TrustResult(store=store, trusted=trusted) for store, trusted in trust],
            revocation=revocation(leaf, *revoked), lints=list(lints),
        ),
        groups=GroupFacts(status="ok", tls12=groups(groups12), tls13=groups(groups13), dh_parameter_bits=dh),
        behaviours=Behaviours(
            status="ok", extended_master_secret=fact(ems), secure_renegotiation=fact(renegotiation),
            ocsp_stapling=fact(stapling), client_renegotiation=fact(client_renegotiation),
            compression=fact(compression), fallback_scsv=fact(fallback_scsv),
        ),
    )  # fmt: skip


def lint(document: LintDocument, section: str, position: int = 1) -> CertificateLint:
    """A lint of the served certificate at ``position`` (1: the intermediate)."""
    return CertificateLint(
        certificate=position, subject="CN=Intermediate CA", sha256="cd" * 32, id=f"{document}-{section}",
        document=document, section=section, severity="error", message="deviates",
    )  # fmt: skip


def with_tls12(*names: str) -> Facts:
    return endpoint(versions={"TLSv1.2": names, "TLSv1.3": TLS13})


def with_tls13(*names: str) -> Facts:
    return endpoint(versions={"TLSv1.2": TLS12, "TLSv1.3": names})


def with_versions(*extra: str) -> Facts:
    """The default endpoint that also accepts these (older) versions."""
    return endpoint(
        versions={"TLSv1.2": TLS12, "TLSv1.3": TLS13} | dict.fromkeys(extra, ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",))
    )


def with_leaf(**changes: Any) -> Facts:
    return endpoint(leaf=certificate(**changes))


def issued(not_before: dt.datetime, lifetime: dt.timedelta) -> Facts:
    """An endpoint serving a real certificate with this notBefore and lifetime, read as the probe reads it."""
    days = lifetime / dt.timedelta(days=1)
    leaf = pki.issue(pki.name("www.example.com"), not_before=not_before, days=days, eku=pki.SERVER_AUTH)
    assert leaf.cert.not_valid_after_utc - leaf.cert.not_valid_before_utc == lifetime
    facts = certificate_facts(leaf.cert, now=SCANNED)
    return endpoint(leaf=facts, chain=[facts, INTERMEDIATE])


def utc(year: int, month: int, day: int) -> dt.datetime:
    return dt.datetime(year, month, day, tzinfo=dt.UTC)


DAY, SECOND, HOUR = dt.timedelta(days=1), dt.timedelta(seconds=1), dt.timedelta(hours=1)


# --- one case per rule and outcome -------------------------------------------------------------------------------


def case(pack_id: str, rule: str, expected: Status, facts: Facts, label: str, **params: Any) -> harness.Case:
    """One rule of one pack must give ``expected`` on ``facts`` (the pack's other rules are not judged)."""
    return harness.Case(f"{rule}-{expected.value}-{label}", pack_id, facts, {rule: expected.value}, params, others=None)


NIST, PCI, BSI, CABF = PACKS
GOLD = endpoint()
RSA_LEAF = with_leaf(key=rsa(3072))
SHA1_ROOT = endpoint(chain=[certificate(), INTERMEDIATE, certificate("CN=Old root", signature_hash="sha1", ca=True,
                                                                     self_signed=True)])  # fmt: skip
SHA1_INTERMEDIATE = endpoint(chain=[certificate(), certificate("CN=Old CA", signature_hash="sha1", ca=True)])
DHE_SUITES = ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256")

CASES = [
    # NIST SP 800-52r2
    case(NIST, "NIST52R2-001", PASS, GOLD, "tls12-tls13"),
    case(NIST, "NIST52R2-001", FAIL, with_versions("SSLv3"), "sslv3"),
    case(NIST, "NIST52R2-002", PASS, GOLD, "tls12"),
    case(NIST, "NIST52R2-002", FAIL, endpoint(versions={"TLSv1.3": TLS13}), "tls13-only"),
    case(NIST, "NIST52R2-002", NA, endpoint(versions={"TLSv1.3": TLS13}), "not-required", tls12_required=False),
    case(NIST, "NIST52R2-003", PASS, GOLD, "tls13"),
    case(NIST, "NIST52R2-003", FAIL, endpoint(versions={"TLSv1.2": TLS12}), "tls12-only"),
    case(NIST, "NIST52R2-004", PASS, GOLD, "no-tls10"),
    case(NIST, "NIST52R2-004", FAIL, with_versions("TLSv1.0"), "tls10"),
    case(NIST, "NIST52R2-004", NA, with_versions("TLSv1.0"), "citizen-facing", citizen_or_business_facing=True),
    case(NIST, "NIST52R2-005", PASS, GOLD, "no-tls11"),
    case(NIST, "NIST52R2-005", FAIL, with_versions("TLSv1.1"), "tls11"),
    case(NIST, "NIST52R2-005", NA, with_versions("TLSv1.1"), "citizen-facing", citizen_or_business_facing=True),
    case(NIST, "NIST52R2-006", PASS, with_tls12("TLS_DH_RSA_WITH_AES_256_CBC_SHA", "TLS_DHE_RSA_WITH_AES_128_CCM_8"),
         "static-dh-and-ccm8-listed"),
    case(NIST, "NIST52R2-006", FAIL, with_tls12("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                                                "TLS_RSA_WITH_AES_128_GCM_SHA256"), "rsa-key-transport"),
    case(NIST, "NIST52R2-006", FAIL, with_tls12("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"), "chacha20"),
    case(NIST, "NIST52R2-007", PASS, with_tls13("TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256"), "ccm"),
    case(NIST, "NIST52R2-007", FAIL, with_tls13(*TLS13, "TLS_CHACHA20_POLY1305_SHA256"), "chacha20"),
    case(NIST, "NIST52R2-008", PASS, RSA_LEAF, "rsa"),
    case(NIST, "NIST52R2-008", FAIL, with_leaf(key=("Ed25519", 256, "Ed25519"), signature_hash=None), "ed25519"),
    case(NIST, "NIST52R2-009", PASS, with_leaf(key=rsa(2048)), "rsa2048"),
    case(NIST, "NIST52R2-009", FAIL, with_leaf(key=rsa(1024)), "rsa1024"),
    case(NIST, "NIST52R2-009", NA, GOLD, "ecdsa"),
    case(NIST, "NIST52R2-010", PASS, with_leaf(key=("EC", 256, "secp256r1")), "p256"),
    case(NIST, "NIST52R2-010", FAIL, with_leaf(key=("EC", 521, "secp521r1")), "p521"),
    case(NIST, "NIST52R2-010", NA, RSA_LEAF, "rsa"),
    case(NIST, "NIST52R2-011", PASS, endpoint(chain=[certificate(signature_hash="sha256"), INTERMEDIATE]), "sha256"),
    case(NIST, "NIST52R2-011", FAIL, SHA1_INTERMEDIATE, "sha1-intermediate"),
    case(NIST, "NIST52R2-012", PASS, GOLD, "ocsp-url"),
    case(NIST, "NIST52R2-012", FAIL, with_leaf(ocsp=False), "no-ocsp-url"),
    case(NIST, "NIST52R2-013", PASS, with_leaf(eku=("serverAuth", "clientAuth")), "server-and-client"),
    case(NIST, "NIST52R2-013", FAIL, with_leaf(eku=None), "no-eku-extension"),
    case(NIST, "NIST52R2-013", FAIL, with_leaf(eku=("clientAuth",)), "client-only"),
    case(NIST, "NIST52R2-014", PASS, GOLD, "ems"),
    case(NIST, "NIST52R2-014", FAIL, endpoint(ems=False), "no-ems"),
    case(NIST, "NIST52R2-014", NA, endpoint(versions={"TLSv1.3": TLS13}, ems=False), "tls13-only"),
    case(NIST, "NIST52R2-014", ERROR, endpoint(ems=unobserved(ErrorClass.timeout, "no answer")), "unobserved"),
    case(NIST, "NIST52R2-015", PASS, GOLD, "secure-renegotiation"),
    case(NIST, "NIST52R2-015", FAIL, endpoint(renegotiation=False), "legacy-renegotiation"),
    case(NIST, "NIST52R2-015", NA, endpoint(versions={"TLSv1.3": TLS13}, renegotiation=False), "tls13-only"),
    case(NIST, "NIST52R2-016", PASS, GOLD, "stapled"),
    case(NIST, "NIST52R2-016", FAIL, endpoint(stapling=False), "not-stapled"),
    case(NIST, "NIST52R2-016", ERROR, endpoint(stapling=NOT_PROBED), "not-probed"),
    # the server certificate as a client following section 4.5.1 validates it
    case(NIST, "NIST52R2-017", PASS, endpoint(trust=(("mozilla", False), ("file:/etc/pki/agency-ca.pem", True))),
         "agency-ca-given"),
    case(NIST, "NIST52R2-017", FAIL, endpoint(trust=(("mozilla", False), ("pin", True))), "pinned-only"),
    case(NIST, "NIST52R2-018", PASS, GOLD, "valid-until-june-30"),
    case(NIST, "NIST52R2-018", FAIL, with_leaf(not_before=utc(2026, 1, 1)), "expired-april-1"),
    case(NIST, "NIST52R2-019", PASS, GOLD, "valid-since-april"),
    case(NIST, "NIST52R2-019", FAIL, with_leaf(not_before=utc(2026, 6, 2)), "valid-from-tomorrow"),
    case(NIST, "NIST52R2-020", PASS, endpoint(revoked=("good", "not_checked")), "good"),
    case(NIST, "NIST52R2-020", FAIL, endpoint(revoked=("revoked",)), "revoked"),
    case(NIST, "NIST52R2-021", PASS, with_leaf(validity_days=1096.0), "three-years-with-a-leap-day"),
    case(NIST, "NIST52R2-021", FAIL, with_leaf(validity_days=1097.0), "three-years-and-two-days"),
    case(NIST, "NIST52R2-022", PASS, with_leaf(eku=("serverAuth", "clientAuth")), "server-and-client"),
    case(NIST, "NIST52R2-022", FAIL, with_leaf(eku=("serverAuth", "anyExtendedKeyUsage")), "any-eku"),
    case(NIST, "NIST52R2-023", PASS, with_leaf(sans=("IP:192.0.2.10",)), "ip-address"),
    case(NIST, "NIST52R2-023", FAIL, with_leaf(sans=()), "cn-only"),
    case(NIST, "NIST52R2-024", PASS, GOLD, "ca-issuers-url"),
    case(NIST, "NIST52R2-024", FAIL, with_leaf(ca_issuers=False), "no-ca-issuers-url"),
    # PCI DSS 4.0.1
    case(PCI, "PCIDSS4-001", PASS, GOLD, "tls12-tls13"),
    case(PCI, "PCIDSS4-001", FAIL, with_versions("SSLv2"), "sslv2"),
    case(PCI, "PCIDSS4-002", PASS, with_versions("TLSv1.1"), "tls11-is-not-tls10"),
    case(PCI, "PCIDSS4-002", FAIL, with_versions("TLSv1.0"), "tls10"),
    case(PCI, "PCIDSS4-003", PASS, GOLD, "no-tls11"),
    case(PCI, "PCIDSS4-003", FAIL, with_versions("TLSv1.1"), "tls11"),
    case(PCI, "PCIDSS4-003", NA, with_versions("TLSv1.1"), "tolerated", allow_tls11=True),
    case(PCI, "PCIDSS4-006", PASS, with_leaf(key=rsa(2048)), "rsa2048"),
    case(PCI, "PCIDSS4-006", FAIL, with_leaf(key=rsa(1024)), "rsa1024"),
    case(PCI, "PCIDSS4-006", NA, GOLD, "ecdsa"),
    case(PCI, "PCIDSS4-007", PASS, with_leaf(key=("EC", 224, "secp224r1")), "p224"),
    case(PCI, "PCIDSS4-007", FAIL, with_leaf(key=("EC", 192, "secp192r1")), "p192"),
    case(PCI, "PCIDSS4-007", NA, RSA_LEAF, "rsa"),
    case(PCI, "PCIDSS4-008", PASS, endpoint(versions={"TLSv1.2": DHE_SUITES}, dh_bits=2048), "dh2048"),
    case(PCI, "PCIDSS4-008", FAIL, endpoint(versions={"TLSv1.2": DHE_SUITES}, dh_bits=1024), "dh1024"),
    case(PCI, "PCIDSS4-008", NA, GOLD, "no-dhe"),
    case(PCI, "PCIDSS4-009", PASS, GOLD, "60-days-left"),
    case(PCI, "PCIDSS4-009", FAIL, with_leaf(days_remaining=-0.5), "expired"),
    case(PCI, "PCIDSS4-009", FAIL, with_leaf(days_remaining=0.0), "expires-now"),
    case(PCI, "PCIDSS4-010", PASS, endpoint(trust=(("mozilla", False), ("file:/etc/pki/internal-ca.pem", True))),
         "internal-ca-given"),
    case(PCI, "PCIDSS4-010", FAIL, endpoint(trust=(("mozilla", False), ("system", False))), "untrusted"),
    case(PCI, "PCIDSS4-011", PASS, endpoint(revoked=("good", "not_checked")), "good"),
    case(PCI, "PCIDSS4-011", FAIL, endpoint(revoked=("not_checked", "revoked")), "revoked"),
    # PCI DSS names no suite list: any suite with a 112-bit key, authenticated and not withdrawn passes
    case(PCI, "PCIDSS4-012", PASS, with_tls13("TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_CCM_8_SHA256"),
         "tls13-chacha20"),
    case(PCI, "PCIDSS4-012", PASS, with_tls12("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
                                              "TLS_RSA_WITH_AES_128_CBC_SHA"), "tls12-chacha20-and-rsa-kx"),
    case(PCI, "PCIDSS4-012", FAIL, with_tls12("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_NULL_SHA256"),
         "null"),
    case(PCI, "PCIDSS4-012", PASS, with_tls12("TLS_RSA_WITH_3DES_EDE_CBC_SHA"), "tdes-triple-length-glossary-example"),
    case(PCI, "PCIDSS4-012", FAIL, with_tls12("TLS_RSA_WITH_DES_CBC_SHA"), "des56"),
    case(PCI, "PCIDSS4-012", FAIL, with_tls13("TLS_AES_128_GCM_SHA256", "TLS_SHA256_SHA256"), "tls13-integrity-only"),
    case(PCI, "PCIDSS4-013", PASS, with_tls13("TLS_CHACHA20_POLY1305_SHA256"), "authenticated"),
    case(PCI, "PCIDSS4-013", FAIL, with_tls12("TLS_DH_anon_WITH_AES_128_CBC_SHA"), "dh-anon"),
    case(PCI, "PCIDSS4-014", PASS, with_tls12("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"), "aes-cbc"),
    case(PCI, "PCIDSS4-014", FAIL, with_tls12("TLS_ECDHE_RSA_WITH_RC4_128_SHA"), "rc4"),
    case(PCI, "PCIDSS4-015", PASS, GOLD, "valid-since-april"),
    case(PCI, "PCIDSS4-015", FAIL, with_leaf(not_before=utc(2026, 7, 1)), "not-yet-valid"),
    case(PCI, "PCIDSS4-016", PASS, SHA1_ROOT, "sha1-root-not-judged"),
    case(PCI, "PCIDSS4-016", FAIL, SHA1_INTERMEDIATE, "sha1-intermediate"),
    case(PCI, "PCIDSS4-017", PASS, endpoint(groups12=("x25519", "secp224r1")), "p224"),
    case(PCI, "PCIDSS4-017", FAIL, endpoint(groups12=("secp256r1", "secp192r1")), "p192"),
    case(PCI, "PCIDSS4-018", PASS, endpoint(versions={"TLSv1.1": TLS12, "TLSv1.2": TLS12}), "tls11-with-scsv",
         allow_tls11=True),
    case(PCI, "PCIDSS4-018", FAIL, endpoint(versions={"TLSv1.1": TLS12, "TLSv1.2": TLS12}, fallback_scsv=False),
         "tls11-without-scsv", allow_tls11=True),
    case(PCI, "PCIDSS4-018", NA, endpoint(fallback_scsv=False), "tls12-and-newer-only"),
    # BSI TR-02102-2
    case(BSI, "TR02102-001", PASS, GOLD, "tls12-tls13"),
    case(BSI, "TR02102-001", FAIL, with_versions("TLSv1.1"), "tls11"),
    case(BSI, "TR02102-002", PASS, with_tls12("TLS_DHE_RSA_WITH_AES_256_CCM", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"),
         "ccm-and-cbc-sha256"),
    case(BSI, "TR02102-002", FAIL, with_tls12("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"), "sha1-hmac"),
    case(BSI, "TR02102-002", FAIL, with_tls12("TLS_ECDH_RSA_WITH_AES_128_GCM_SHA256"), "no-forward-secrecy"),
    case(BSI, "TR02102-003", PASS, with_tls13("TLS_AES_128_CCM_SHA256"), "ccm"),
    case(BSI, "TR02102-003", FAIL, with_tls13("TLS_AES_128_CCM_8_SHA256"), "ccm8"),
    case(BSI, "TR02102-004", PASS, endpoint(groups12=("brainpoolP256r1", "ffdhe3072")), "brainpool-ffdhe3072"),
    case(BSI, "TR02102-004", FAIL, endpoint(groups12=("x25519", "secp256r1")), "x25519"),
    case(BSI, "TR02102-005", PASS, endpoint(groups13=("brainpoolP256r1tls13", "secp521r1")), "brainpool-tls13"),
    case(BSI, "TR02102-005", FAIL, endpoint(groups13=("X25519MLKEM768", "secp256r1")), "hybrid-x25519"),
    case(BSI, "TR02102-005", FAIL, endpoint(groups13=("secp256r1", "ffdhe2048")), "ffdhe2048"),
    case(BSI, "TR02102-006", PASS, RSA_LEAF, "rsa3072"),
    case(BSI, "TR02102-006", FAIL, with_leaf(key=rsa(2048)), "rsa2048"),
    case(BSI, "TR02102-006", PASS, with_leaf(key=rsa(2048)), "lowered-by-param", rsa_min_bits=2048),
    case(BSI, "TR02102-006", NA, GOLD, "ecdsa"),
    case(BSI, "TR02102-007", PASS, endpoint(versions={"TLSv1.2": DHE_SUITES}, dh_bits=3072), "dh3072"),
    case(BSI, "TR02102-007", FAIL, endpoint(versions={"TLSv1.2": DHE_SUITES}, dh_bits=2048), "dh2048"),
    case(BSI, "TR02102-007", NA, GOLD, "no-dhe"),
    case(BSI, "TR02102-008", PASS, with_leaf(key=("EC", 256, "brainpoolP256r1")), "brainpool256"),
    case(BSI, "TR02102-008", FAIL, with_leaf(key=("EC", 224, "secp224r1")), "p224"),
    case(BSI, "TR02102-008", NA, RSA_LEAF, "rsa"),
    case(BSI, "TR02102-009", PASS, with_leaf(key=("DSA", 3072, None), signature_hash="sha256"), "dsa3072"),
    case(BSI, "TR02102-009", FAIL, with_leaf(key=("DSA", 2048, None), signature_hash="sha256"), "dsa2048"),
    case(BSI, "TR02102-009", NA, GOLD, "ecdsa"),
    case(BSI, "TR02102-010", PASS, with_leaf(key=("EC", 512, "brainpoolP512r1")), "brainpool512"),
    case(BSI, "TR02102-010", FAIL, with_leaf(key=("EC", 256, "secp256k1")), "secp256k1"),
    case(BSI, "TR02102-010", NA, RSA_LEAF, "rsa"),
    case(BSI, "TR02102-011", PASS, endpoint(chain=[certificate(signature_algorithm="rsassaPss"),
                                                   certificate("CN=Root", signature_algorithm="sha256WithRSAEncryption",
                                                               ca=True, self_signed=True)]), "pss-below-pkcs1-root"),
    case(BSI, "TR02102-011", FAIL, endpoint(chain=[certificate(),
                                                   certificate("CN=CA", signature_algorithm="sha256WithRSAEncryption",
                                                               ca=True)]), "pkcs1-intermediate"),
    case(BSI, "TR02102-011", NA, endpoint(chain=[certificate(signature_algorithm="sha256WithRSAEncryption")]),
         "tolerated-until-2027", rsa_pkcs1_signatures_until=dt.date(2027, 1, 1)),
    case(BSI, "TR02102-012", PASS, GOLD, "refused"),
    case(BSI, "TR02102-012", FAIL, endpoint(client_renegotiation=True), "accepted"),
    case(BSI, "TR02102-012", NA, endpoint(versions={"TLSv1.3": TLS13}, client_renegotiation=True), "tls13-only"),
    case(BSI, "TR02102-013", PASS, GOLD, "no-compression"),
    case(BSI, "TR02102-013", FAIL, endpoint(compression=True), "deflate"),
    # CA/Browser Forum: validity on real certificates, read as the probe reads them (a Validity Period counts
    # notBefore through notAfter inclusive, so N days minus one second is exactly the N-day maximum)
    case(CABF, "CABF-001", PASS, issued(utc(2025, 6, 1), 398 * DAY - SECOND), "398-days"),
    case(CABF, "CABF-001", FAIL, issued(utc(2025, 6, 1), 398 * DAY + HOUR), "398-days-and-an-hour"),
    case(CABF, "CABF-001", NA, issued(utc(2019, 6, 1), 825 * DAY), "before-2020-09-01"),
    case(CABF, "CABF-001", NA, issued(utc(2026, 3, 15), 200 * DAY - SECOND), "from-2026-03-15"),
    case(CABF, "CABF-002", PASS, issued(utc(2026, 3, 15), 200 * DAY - SECOND), "200-days"),
    case(CABF, "CABF-002", FAIL, issued(utc(2026, 6, 1), 365 * DAY), "365-days"),
    case(CABF, "CABF-002", FAIL, issued(utc(2027, 3, 14), 200 * DAY + HOUR), "200-days-and-an-hour"),
    case(CABF, "CABF-002", NA, issued(utc(2025, 6, 1), 398 * DAY - SECOND), "before-2026-03-15"),
    case(CABF, "CABF-003", PASS, issued(utc(2027, 3, 15), 100 * DAY - SECOND), "100-days"),
    case(CABF, "CABF-003", FAIL, issued(utc(2028, 1, 1), 101 * DAY), "101-days"),
    case(CABF, "CABF-003", NA, issued(utc(2029, 3, 15), 47 * DAY - SECOND), "from-2029-03-15"),
    case(CABF, "CABF-004", PASS, issued(utc(2029, 3, 15), 47 * DAY - SECOND), "47-days"),
    case(CABF, "CABF-004", FAIL, issued(utc(2030, 1, 1), 90 * DAY), "90-days"),
    case(CABF, "CABF-004", NA, GOLD, "before-2029-03-15"),
    case(CABF, "CABF-005", PASS, RSA_LEAF, "rsa-and-ecdsa"),
    case(CABF, "CABF-005", FAIL, endpoint(chain=[certificate(), certificate("CN=Ed CA", key=("Ed25519", 256, "Ed25519"),
                                                                            ca=True)]), "ed25519-intermediate"),
    case(CABF, "CABF-006", PASS, endpoint(chain=[certificate(key=rsa(2048)), certificate("CN=CA", key=rsa(4096))]),
         "rsa2048-rsa4096"),
    case(CABF, "CABF-006", FAIL, endpoint(chain=[certificate(key=rsa(2048)), certificate("CN=CA", key=rsa(1024))]),
         "rsa1024-intermediate"),
    case(CABF, "CABF-007", PASS, endpoint(chain=[certificate(key=rsa(3072)), certificate("CN=CA", key=rsa(4096))]),
         "rsa3072-rsa4096"),
    case(CABF, "CABF-007", FAIL, with_leaf(key=rsa(2047)), "rsa2047"),
    case(CABF, "CABF-007", FAIL, with_leaf(key=rsa(2052)), "rsa2052"),
    case(CABF, "CABF-008", PASS, with_leaf(key=("EC", 521, "secp521r1")), "p521"),
    case(CABF, "CABF-008", FAIL, with_leaf(key=("EC", 256, "brainpoolP256r1")), "brainpool"),
    case(CABF, "CABF-008", FAIL, with_leaf(key=("EC", 256, "secp256k1")), "secp256k1"),
    case(CABF, "CABF-009", PASS, with_leaf(signature_hash="sha256"), "sha256"),
    case(CABF, "CABF-009", FAIL, with_leaf(signature_hash="sha1"), "sha1"),
    case(CABF, "CABF-009", FAIL, with_leaf(signature_hash=None), "eddsa-no-hash"),
    case(CABF, "CABF-010", PASS, SHA1_ROOT, "sha1-root-not-judged"),
    case(CABF, "CABF-010", FAIL, SHA1_INTERMEDIATE, "sha1-intermediate"),
    case(CABF, "CABF-011", PASS, with_leaf(eku=("serverAuth", "clientAuth")), "server-and-client"),
    case(CABF, "CABF-011", FAIL, with_leaf(eku=None), "no-eku-extension"),
    case(CABF, "CABF-012", PASS, GOLD, "server-only"),
    case(CABF, "CABF-012", FAIL, with_leaf(eku=("serverAuth", "anyExtendedKeyUsage")), "any-eku"),
    case(CABF, "CABF-013", PASS, with_leaf(not_before=utc(2027, 3, 15), eku=("serverAuth",)), "server-only"),
    case(CABF, "CABF-013", FAIL, with_leaf(not_before=utc(2027, 3, 15), eku=("serverAuth", "clientAuth")),
         "client-auth-from-2027-03-15"),
    case(CABF, "CABF-013", NA, with_leaf(not_before=utc(2027, 3, 14), eku=("serverAuth", "clientAuth")),
         "client-auth-before"),
    case(CABF, "CABF-013", FAIL, with_leaf(not_before=utc(2026, 7, 1), eku=("serverAuth", "clientAuth")),
         "chrome-1.7-date", clientauth_phaseout_from=dt.date(2026, 6, 15)),
    case(CABF, "CABF-030", PASS, endpoint(lints=(lint("RFC5280", "4.2.1.9"),)), "rfc-lint-only"),
    case(CABF, "CABF-030", FAIL, endpoint(lints=(lint("RFC5280", "4.2.1.9"), lint("CABF-BR", "7.1.2.10.4"))),
         "bc-not-critical"),
    case(CABF, "CABF-031", PASS, endpoint(lints=(lint("RFC5280", "4.2.1.3"),)), "rfc-warning-only"),
    case(CABF, "CABF-031", FAIL, endpoint(lints=(lint("CABF-BR", "7.1.2.10.7"),)), "ku-missing"),
    case(CABF, "CABF-032", PASS, GOLD, "no-lints"),
    case(CABF, "CABF-032", FAIL, endpoint(lints=(lint("CABF-BR", "7.1.2.11.1", 0),)), "leaf-aki-missing"),
    case(CABF, "CABF-033", PASS, endpoint(lints=(lint("RFC5280", "4.2.1.2", 0),)), "leaf-ski-rfc-only"),
    case(CABF, "CABF-033", FAIL, endpoint(lints=(lint("CABF-BR", "7.1.2.11.4"),)), "ca-ski-missing"),
]  # fmt: skip


test_rule_verdict = case_test(CASES)
test_every_rule_has_a_passing_and_a_failing_case = coverage_test(CASES)


def test_default_endpoint_meets_all_four_packs():
    """The endpoint the cases start from passes every rule of every pack that applies to it."""
    findings = evaluate(GOLD, [pack(p) for p in PACKS])
    not_applicable = {f.rule for f in findings if f.status == NA}
    assert {f.rule for f in findings if f.status not in (NA, PASS)} == set()
    assert not_applicable == {
        "NIST52R2-009", "PCIDSS4-006", "PCIDSS4-008", "PCIDSS4-018", "TR02102-006", "TR02102-007", "TR02102-009",
        "CABF-001", "CABF-003", "CABF-004", "CABF-013",
    }  # fmt: skip


def test_modulus_rule_agrees_with_arithmetic():
    """The regular expression of CABF-007 accepts a modulus size exactly when it is divisible by 8."""
    (rule,) = [r for r in pack(CABF).rules if r.id == "CABF-007"]
    wrong = [n for n in range(70_000) if rule.argument.test({"public_key": {"size": n}}) != (n % 8 == 0)]
    assert wrong == []


def test_packs_record_source_and_what_is_not_checked():
    """Each pack names its document, section, URL and date, says what it cannot check remotely, and every rule has
    its rationale, remediation and references under the pack's own id prefix."""
    prefixes = {NIST: "NIST52R2-", PCI: "PCIDSS4-", BSI: "TR02102-", CABF: "CABF-"}
    for pack_id in PACKS:
        loaded = pack(pack_id)
        assert {"document", "section", "url", "date", "note"} <= set(loaded.source)
        assert "Not checked remotely" in loaded.description
        for rule in loaded.rules:
            assert rule.id.startswith(prefixes[pack_id])
            assert rule.rationale and rule.remediation and rule.references and rule.section, rule.id


def test_every_standards_rule_names_its_section():
    """Every rule of a pack that reflects a published document (the standards packs and Mozilla's) names the section
    of that document it comes from, and the finding of each rule carries it."""
    standards = (*PACKS, "mozilla-modern", "mozilla-intermediate", "mozilla-old")
    for pack_id in standards:
        assert [r.id for r in pack(pack_id).rules if not r.section] == [], pack_id
    findings = {f.rule: f for f in evaluate(GOLD, [pack(NIST), pack(PCI)])}
    assert findings["NIST52R2-007"].section == "3.3.1.2"
    assert findings["PCIDSS4-012"].section.startswith("Glossary, 'Strong Cryptography'")


def test_rules_show_prints_each_rules_section(tlsgate):
    """`tlsgate rules show` prints a rule's section beside its references."""
    run = tlsgate("rules", "show", NIST)
    assert run.code == ExitCode.OK, run.stderr
    words = " ".join(run.stdout.split())
    assert "Section: 3.3.1.2 References: https://doi.org/10.6028/NIST.SP.800-52r2" in words
    assert "Section: 4.5.1 (revocation status of each certificate in the path)" in words


def test_section_is_optional_text(tmp_path):
    """A rule may leave `section` out; given, it must be text, else the pack is rejected with the position."""
    head = "id: p\ntitle: p\nversion: '1'\nrules:\n  - id: R-1\n    title: t\n    severity: low\n    fact: protocols\n"
    rule = "    some: {version: TLSv1.3, status: accepted}\n"
    (tmp_path / "plain.yaml").write_text(head + rule)
    assert load_pack(tmp_path / "plain.yaml").rules[0].section == ""
    (tmp_path / "bad.yaml").write_text(head + rule + "    section: [3.1, 3.2]\n")
    with pytest.raises(PackError) as caught:
        load_pack(tmp_path / "bad.yaml")
    assert [(p.line, p.message) for p in caught.value.problems] == [(10, "'section' must be text")]


# --- each pack against a real server, through the command line ---------------------------------------------------

NIST_TLS12 = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384"
# An AIA caIssuers URL (Table 3-1) that is never fetched: the servers send their whole chain.
UNUSED_CA_ISSUERS = "http://127.0.0.1:9/issuing-ca.crt"
GCM_TLS13 = "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"


def test_nist_server_with_stapling_passes(tlsgate, tmp_path):
    """An ECDSA server with only NIST suites, an OCSP URL, a stapled OCSP response and a 90-day certificate from the
    agency CA given to the scan meets every NIST rule."""
    with RevocationServer() as responder:
        root = pki.issue(pki.name("nist root CA"), ca=True, days=3650, key=pki.new_key("p384"))
        intermediate = pki.issue(pki.name("nist intermediate CA"), issuer=root, ca=True, path_length=0, days=1825,
                                 ocsp_url=responder.ocsp_url)  # fmt: skip
        leaf = pki.issue(pki.name("localhost"), issuer=intermediate, days=90, sans=("localhost", "127.0.0.1"),
                         eku=pki.SERVER_AUTH, ocsp_url=responder.ocsp_url, ca_issuer_url=UNUSED_CA_ISSUERS)  # fmt: skip
        responder.add_issuer("intermediate", intermediate)
        staple = tmp_path / "staple.der"
        staple.write_bytes(responder.ocsp_response(leaf.cert))
        cert, key = leaf.write(tmp_path, "leaf")
        chain, _ = intermediate.write(tmp_path, "chain")
        roots, _ = root.write(tmp_path, "root")
        args = ("-no_tls1", "-no_tls1_1", "-cipher", NIST_TLS12, "-ciphersuites", GCM_TLS13,
                "-status_file", str(staple))  # fmt: skip
        with openssl_server(cert, key, *args, chain=chain) as port:
            run = tlsgate("scan", f"127.0.0.1:{port}", "--pack", NIST, "--no-revocation", "--ca-file", str(roots),
                          "--json", str(tmp_path / "r.json"))  # fmt: skip
    assert run.code == ExitCode.OK, run.stdout + run.stderr
    assert statuses(tmp_path / "r.json") == all_pass(NIST, **{"NIST52R2-009": "not_applicable"})


def test_pci_server_with_revoked_certificate_fails(tlsgate, tmp_path):
    """An RSA 2048 server with strong suites and a trusted chain fails PCI DSS 4.2.1 only for its revoked leaf."""
    with RevocationServer() as responder:
        root = pki.issue(pki.name("pci root CA"), ca=True, days=3650, key=pki.new_key("p384"))
        intermediate = pki.issue(pki.name("pci intermediate CA"), issuer=root, ca=True, path_length=0, days=1825)
        leaf = pki.issue(pki.name("localhost"), issuer=intermediate, key=pki.new_key("rsa2048"), days=90,
                         sans=("localhost", "127.0.0.1"), eku=pki.SERVER_AUTH, ocsp_url=responder.ocsp_url,
                         crl_url=responder.crl_url("intermediate"))  # fmt: skip
        responder.add_issuer("intermediate", intermediate)
        responder.revoke(leaf, x509.ReasonFlags.key_compromise)
        cert, key = leaf.write(tmp_path, "leaf")
        chain, _ = intermediate.write(tmp_path, "chain")
        root_file, _ = root.write(tmp_path, "root")
        args = ("-no_tls1", "-no_tls1_1", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES128-GCM-SHA256",
                "-ciphersuites", "TLS_AES_128_GCM_SHA256")  # fmt: skip
        with openssl_server(cert, key, *args, chain=chain) as port:
            run = tlsgate("scan", f"127.0.0.1:{port}", "--pack", PCI, "--ca-file", str(root_file),
                          "--json", str(tmp_path / "r.json"))  # fmt: skip
    assert run.code == ExitCode.POLICY_FAILED, run.stdout + run.stderr
    expected = {"PCIDSS4-007": "not_applicable", "PCIDSS4-018": "not_applicable", "PCIDSS4-011": "fail"}
    assert statuses(tmp_path / "r.json") == all_pass(PCI, **expected)
    assert "PCIDSS4-011" in run.stdout


def test_nist_server_with_expired_certificate_fails_path_validation(tlsgate, tmp_path):
    """A server whose otherwise compliant certificate expired yesterday fails the rules of section 4.5.1: its chain
    is not trusted (the CA store refuses an expired leaf) and it has expired; the NIST suites still pass."""
    root = pki.issue(pki.name("nist-expired root CA"), ca=True, days=3650, key=pki.new_key("p384"),
                     not_before=dt.datetime.now(dt.UTC) - 400 * DAY)  # fmt: skip
    leaf = pki.issue(pki.name("localhost"), issuer=root, days=90, sans=("localhost", "127.0.0.1"),
                     eku=pki.SERVER_AUTH, ocsp_url="http://127.0.0.1:9/ocsp", ca_issuer_url=UNUSED_CA_ISSUERS,
                     not_before=dt.datetime.now(dt.UTC) - 91 * DAY)  # fmt: skip
    cert, key = leaf.write(tmp_path, "leaf")
    roots, _ = root.write(tmp_path, "root")
    args = ("-no_tls1", "-no_tls1_1", "-cipher", NIST_TLS12, "-ciphersuites", GCM_TLS13)
    with openssl_server(cert, key, *args) as port:
        code, found = harness.scan(tlsgate, f"127.0.0.1:{port}", tmp_path / "r.json", "--pack", NIST, "--offline",
                                   "--ca-file", str(roots), "--format", f"junit={tmp_path / 'r.xml'}",
                                   "--format", f"html={tmp_path / 'r.html'}")  # fmt: skip
    assert code == ExitCode.POLICY_FAILED
    judged = statuses(found)
    assert {rule for rule, status in judged.items() if status == "fail"} == {
        "NIST52R2-016", "NIST52R2-017", "NIST52R2-018",
    }  # fmt: skip
    assert judged["NIST52R2-006"] == judged["NIST52R2-007"] == judged["NIST52R2-021"] == "pass"
    assert found["NIST52R2-018"]["section"].startswith("4.5.1")
    # the section is shown beside the references wherever they are: JUnit failure text and the HTML report
    assert (
        "Section: 4.5.1 (path validation per RFC 5280 section 6.1.3: validity period)"
        in (tmp_path / "r.xml").read_text()
    )
    assert (
        "<strong>Section</strong>4.5.1 (path validation per RFC 5280 section 6.1.3" in (tmp_path / "r.html").read_text()
    )


def test_pci_tls13_server_with_chacha20_passes(tlsgate, tmp_path):
    """A TLS 1.2 and 1.3 server that offers ChaCha20-Poly1305 first (and AES-GCM), with a trusted P-256 certificate,
    passes every PCI DSS rule that applies: PCI DSS names no suite list, so ChaCha20 is strong cryptography."""
    hierarchy = pki.hierarchy("pci-chacha")
    cert, key = hierarchy.leaf.write(tmp_path, "leaf")
    chain, _ = hierarchy.intermediate.write(tmp_path, "chain")
    roots, _ = hierarchy.root.write(tmp_path, "root")
    args = ("-no_tls1", "-no_tls1_1", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256",
            "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256")  # fmt: skip
    with openssl_server(cert, key, *args, chain=chain) as port:
        code, found = harness.scan(tlsgate, f"127.0.0.1:{port}", tmp_path / "r.json", "--pack", PCI, "--offline",
                                   "--ca-file", str(roots))  # fmt: skip
    assert code == ExitCode.OK
    not_applicable = dict.fromkeys(("PCIDSS4-006", "PCIDSS4-008", "PCIDSS4-018"), "not_applicable")
    assert statuses(found) == all_pass(PCI, **not_applicable)
    report = json.loads((tmp_path / "r.json").read_text())["targets"][0]["facts"]["protocols"]
    accepted = {s["name"] for p in report for s in p.get("cipher_suites", []) if p["status"] == "accepted"}
    assert {"TLS_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"} <= accepted


def test_bsi_server_with_recommended_parameters_passes(tlsgate, tmp_path):
    """An RSA 3072 server with recommended suites, P-384/P-256 groups and a 3072-bit DH group meets TR-02102-2."""
    hierarchy = pki.hierarchy("bsi", key=pki.new_key("rsa3072"))
    cert, key = hierarchy.leaf.write(tmp_path, "leaf")
    chain, _ = hierarchy.intermediate.write(tmp_path, "chain")
    args = ("-no_tls1", "-no_tls1_1", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES256-GCM-SHA384",
            "-ciphersuites", GCM_TLS13, "-groups", "secp384r1:secp256r1")  # fmt: skip
    with openssl_server(cert, key, *args, chain=chain) as port:
        run = tlsgate("scan", f"127.0.0.1:{port}", "--pack", BSI, "--offline", "--json", str(tmp_path / "r.json"))
    assert run.code == ExitCode.OK, run.stdout + run.stderr
    assert statuses(tmp_path / "r.json") == all_pass(
        BSI, **dict.fromkeys(("TR02102-008", "TR02102-009", "TR02102-010"), NA.value)
    )


def test_bsi_server_with_pkcs1_chain_and_client_renegotiation_fails(tlsgate, tmp_path):
    """The same recommended suites and groups, but an RSA intermediate that signs with PKCS#1 v1.5 (recommended only
    until 2025, 3.3.3 / 3.4.3) and a server that lets the client renegotiate (3.3.4.1): exactly those two rules fail."""
    root = pki.issue(pki.name("bsi-pkcs1 root CA"), ca=True, days=3650, key=pki.new_key("p384"))
    intermediate = pki.issue(pki.name("bsi-pkcs1 intermediate CA"), issuer=root, ca=True, path_length=0, days=1825,
                             key=pki.new_key("rsa3072"))  # fmt: skip
    leaf = pki.issue(pki.name("localhost"), issuer=intermediate, days=90, key=pki.new_key("rsa3072"),
                     sans=("localhost", "127.0.0.1"), eku=pki.SERVER_AUTH)  # fmt: skip
    cert, key = leaf.write(tmp_path, "leaf")
    chain, _ = intermediate.write(tmp_path, "chain")
    args = ("-no_tls1", "-no_tls1_1", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384", "-ciphersuites", GCM_TLS13,
            "-groups", "secp384r1:secp256r1", "-client_renegotiation")  # fmt: skip
    with openssl_server(cert, key, *args, chain=chain) as port:
        code, found = harness.scan(tlsgate, f"127.0.0.1:{port}", tmp_path / "r.json", "--pack", BSI, "--offline")
    assert code == ExitCode.POLICY_FAILED
    expected = dict.fromkeys(("TR02102-011", "TR02102-012"), FAIL.value) | dict.fromkeys(
        ("TR02102-007", "TR02102-008", "TR02102-009", "TR02102-010"), NA.value
    )
    assert statuses(found) == all_pass(BSI, **expected)
    assert found["TR02102-011"]["section"].startswith("3.3.3")


def test_cabf_year_long_certificate_issued_after_march_2026_fails(tlsgate, tmp_path):
    """A leaf with notBefore 2026-06-01 and 365 days of validity breaks the 200-day limit and no other CA/B rule."""
    hierarchy = pki.hierarchy("cabf", not_before=utc(2026, 6, 1), leaf_days=365)
    cert, key = hierarchy.leaf.write(tmp_path, "leaf")
    chain, _ = hierarchy.intermediate.write(tmp_path, "chain")
    with openssl_server(cert, key, chain=chain) as port:
        run = tlsgate("scan", f"127.0.0.1:{port}", "--pack", CABF, "--offline", "--json", str(tmp_path / "r.json"))
    assert run.code == ExitCode.POLICY_FAILED, run.stdout + run.stderr
    expected = {"CABF-002": "fail"} | dict.fromkeys(("CABF-001", "CABF-003", "CABF-004", "CABF-013"), "not_applicable")
    assert statuses(tmp_path / "r.json") == all_pass(CABF, **expected)
    assert "CABF-002" in run.stdout


def test_cabf_certificate_file_with_client_auth_fails_before_deployment(tlsgate, tmp_path):
    """tlsgate cert judges a 100-day RSA leaf of April 2027 that still asserts clientAuth: only CABF-013 fails."""
    hierarchy = pki.hierarchy("cabf-file", key=pki.new_key("rsa2048"), not_before=utc(2027, 4, 1),
                              leaf_days=100 - 1 / 86400, eku=[*pki.SERVER_AUTH, *pki.CLIENT_AUTH])  # fmt: skip
    cert, _ = hierarchy.leaf.write(tmp_path, "leaf", chain=[hierarchy.intermediate])
    code, found = harness.cert(tlsgate, cert, tmp_path / "r.json", "--pack", CABF)
    expected = {"CABF-013": "fail"} | dict.fromkeys(("CABF-001", "CABF-002", "CABF-004"), "not_applicable")
    assert (code, statuses(found)) == (ExitCode.POLICY_FAILED, all_pass(CABF, **expected))


def test_cabf_intermediate_with_non_critical_basic_constraints_is_trusted_but_fails_the_profile(tlsgate, tmp_path):
    """A chain whose intermediate marks basicConstraints non-critical is trusted (clients accept it), its lints
    cite RFC 5280 4.2.1.9 and BR 7.1.2.10.4, and of the CA/B pack only CABF-030 fails."""
    root = pki.issue(pki.name("cabf-lint root CA"), ca=True, days=3650, key=pki.new_key("p384"))
    intermediate = pki.issue(pki.name("cabf-lint intermediate CA"), issuer=root, ca=True, days=1825, bc_critical=False)
    leaf = pki.issue(pki.name("localhost"), issuer=intermediate, days=90, sans=("localhost", "127.0.0.1"),
                     eku=pki.SERVER_AUTH)  # fmt: skip
    cert, key = leaf.write(tmp_path, "leaf")
    chain, _ = intermediate.write(tmp_path, "chain")
    roots, _ = root.write(tmp_path, "root")
    report = tmp_path / "r.json"
    with openssl_server(cert, key, chain=chain) as port:
        run = tlsgate("scan", f"127.0.0.1:{port}", "--pack", CABF, "--offline", "--ca-file", str(roots),
                      "--json", str(report))  # fmt: skip
    assert run.code == ExitCode.POLICY_FAILED, run.stdout + run.stderr
    facts = json.loads(report.read_text())["targets"][0]["facts"]["certificate"]
    assert [r["trusted"] for r in facts["trust"] if r["store"].startswith("file:")] == [True]
    assert {(lint["certificate"], lint["document"], lint["section"]) for lint in facts["lints"]} == {
        (1, "RFC5280", "4.2.1.9"),
        (1, "CABF-BR", "7.1.2.10.4"),
    }
    expected = {"CABF-030": "fail"} | dict.fromkeys(("CABF-001", "CABF-003", "CABF-004", "CABF-013"), "not_applicable")
    assert statuses(report) == all_pass(CABF, **expected)
