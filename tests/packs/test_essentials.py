"""The essentials pack, the default: each rule passing and failing on built facts, then `tlsgate scan` and `tlsgate
cert` without --pack against real loopback servers (self-signed, expired, wrong host, revoked, not yet valid, and
a well-configured server whose private CA is given with --ca-file)."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from scanner.facts import Certificate, CertificateFacts, Facts, RevocationResult, TrustResult, observed
from tests.helpers import ServerFiles, python_tls_server, server_context
from tests.ocsp_crl_server import RevocationServer
from tests.packs import harness
from tests.packs.harness import NA, NOW, Case, case_test, coverage_test, findings, statuses, validate_test
from tests.pki import NOW as PKI_NOW
from tests.pki import SERVER_AUTH, Issued, hierarchy, issue, name

PACK = "essentials"
RULES = [f"ESSENTIALS-{n:03d}" for n in range(1, 17)]
ALL_PASS = dict.fromkeys(RULES, "pass")
FAIL = "fail"
HOST = "www.example.com"
LEAF_DN, ISSUER_DN, ROOT_DN = f"CN={HOST}", "CN=Example Issuing CA", "CN=Example Root CA"
GOOD_SUITES = {
    "TLSv1.2": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"],
    "TLSv1.3": ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"],
}
MOZILLA = TrustResult(store="mozilla", trusted=True, anchor=ROOT_DN)
UNKNOWN = TrustResult(store="mozilla", trusted=False, reason="unknown_issuer")
CERT_RULES = {
    "ESSENTIALS-003",
    "ESSENTIALS-004",
    "ESSENTIALS-005",
    "ESSENTIALS-007",
    "ESSENTIALS-008",
    "ESSENTIALS-009",
}


def fails(*numbers: int) -> dict[str, str]:
    """The rules (by number) a case must fail: the rest of the pack must pass."""
    return {f"ESSENTIALS-{n:03d}": FAIL for n in numbers}


# --- facts ---------------------------------------------------------------------------------------------------


def leaf(*, not_before: timedelta = timedelta(days=-10), days: float = 90, **fields: Any) -> Certificate:
    """The server's certificate, issued ``not_before`` from NOW (negative: in the past) for ``days``, with its days
    remaining counted from NOW as the scan does."""
    start = NOW + not_before
    remaining = round((start + timedelta(days=days) - NOW).total_seconds() / 86400, 2)
    fields = {"issuer": ISSUER_DN, "sha256": "aa" * 32, "days_remaining": remaining} | fields
    return harness.certificate(LEAF_DN, not_before=start, days=days, **fields)


def intermediate(**fields: Any) -> Certificate:
    return harness.certificate(ISSUER_DN, **({"issuer": ROOT_DN, "sha256": "bb" * 32, "days": 1825} | fields))


def root(**fields: Any) -> Certificate:
    """A self-signed root, as some servers send it at the end of their chain."""
    return harness.certificate(ROOT_DN, **({"sha256": "cc" * 32, "days": 3650} | fields))


def revoked(status: str, source: str = "ocsp") -> RevocationResult:
    return RevocationResult(certificate="aa" * 32, subject=LEAF_DN, leaf=True, source=source, status=status)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Server:
    """What a scan of a web server observes; the defaults pass every rule of the pack."""

    chain: tuple[Certificate, ...] = field(default_factory=lambda: (leaf(), intermediate()))
    trust: tuple[TrustResult, ...] = (MOZILLA,)
    hostname_match: bool = True
    trust_name: str | None = HOST
    revocation: tuple[RevocationResult, ...] = ()
    accepted: dict[str, list[str]] = field(default_factory=lambda: GOOD_SUITES)
    source: str = "network"

    def facts(self) -> Facts:
        at = harness.target(HOST, 443, "192.0.2.10", source=self.source)
        if self.source == "file":
            certificate = CertificateFacts(status="ok", leaf=self.chain[0], chain=list(self.chain))
            return harness.scanned(at, certificate=certificate)
        certificate = CertificateFacts(
            status="ok", leaf=self.chain[0], chain=list(self.chain), trust=list(self.trust),
            trust_name=self.trust_name, hostname_match=observed(self.hostname_match), revocation=list(self.revocation),
        )  # fmt: skip
        return harness.scanned(at, protocols=harness.protocols(self.accepted), certificate=certificate)


def case(name: str, server: Server, expected: dict[str, str], params: dict[str, Any] | None = None) -> Case:
    return Case(name, PACK, server.facts, expected, params or {})


def with_leaf(**options: Any) -> Server:
    return Server(chain=(leaf(**options), intermediate()))


def suite_case(name: str, version: str, suite: str, expected: dict[str, str]) -> Case:
    """A server that also accepts ``suite`` with ``version`` (a version it accepts nothing else with: that version
    accepted)."""
    accepted = GOOD_SUITES | {version: [*GOOD_SUITES.get(version, []), suite]}
    return case(name, Server(accepted=accepted), expected)


def file_case(name: str, chain: tuple[Certificate, ...], expected: dict[str, str]) -> Case:
    """A certificate file (`tlsgate cert`): only validity, signature and key rules apply."""
    not_for_files = dict.fromkeys(set(RULES) - CERT_RULES, NA)
    return case(name, Server(chain=chain, source="file"), not_for_files | expected)


def trusted_by(*results: TrustResult) -> Server:
    """A server the Mozilla store does not trust, with these verdicts of the stores given for the scan."""
    return Server(trust=(UNKNOWN, *results))


def certificate_not_observed() -> Facts:
    """A well-configured server whose handshake ended before its certificate was read."""
    return Server().facts().model_copy(update={"certificate": harness.certificate_error("handshake ended early")})


def tls10_not_probed() -> Facts:
    """A well-configured server whose TLS 1.0 probe timed out."""
    return Server().facts().model_copy(update={"protocols": harness.protocols(GOOD_SUITES, errors=("TLSv1.0",))})


EXPIRED = {"ESSENTIALS-001": FAIL, "ESSENTIALS-003": FAIL, "ESSENTIALS-005": NA}

CASES = [
    case("publicly trusted, well configured", Server(), {}),
    # any store given for the scan counts beside Mozilla's; a pin does not
    case(
        "private CA given with --ca-file", trusted_by(TrustResult(store="file:/etc/pki/our-ca.pem", trusted=True)), {}
    ),
    case("private CA directory (--ca-path)", trusted_by(TrustResult(store="capath:/etc/pki/ca.d", trusted=True)), {}),
    case("PKCS#12 truststore", trusted_by(TrustResult(store="truststore:/etc/pki/trust.p12", trusted=True)), {}),
    case("system store (--system-trust)", trusted_by(TrustResult(store="system", trusted=True)), {}),
    case(
        "second of two CA files",
        trusted_by(
            TrustResult(store="file:/old-ca.pem", trusted=False, reason="unknown_issuer"),
            TrustResult(store="file:/new-ca.pem", trusted=True),
        ),
        {},
    ),
    case("private CA not given", Server(trust=(UNKNOWN,)), fails(1)),
    case(
        "self-signed",
        Server(chain=(leaf(issuer=None),), trust=(TrustResult(store="mozilla", trusted=False, reason="self_signed"),)),
        fails(1),
    ),
    case("pinned but trusted by no store", trusted_by(TrustResult(store="pin", trusted=True)), fails(1)),
    case(
        "given CA is not the issuer",
        trusted_by(TrustResult(store="file:/etc/pki/our-ca.pem", trusted=False, reason="unknown_issuer")),
        fails(1),
    ),
    case(
        "wrong host",
        Server(hostname_match=False, trust=(TrustResult(store="mozilla", trusted=False, reason="name_mismatch"),)),
        fails(1, 2),
    ),
    # --no-name-check: trust judged by the chain alone, the name rule does not apply
    case("peer identified by its DN", Server(hostname_match=False, trust_name=None), {"ESSENTIALS-002": NA}),
    case(
        "expired",
        Server(
            chain=(leaf(not_before=timedelta(days=-100), days=90), intermediate()),
            trust=(TrustResult(store="mozilla", trusted=False, reason="expired"),),
        ),
        EXPIRED,
    ),
    case(
        "expired a second ago",
        Server(chain=(leaf(not_before=timedelta(days=-90, seconds=-1), days=90), intermediate())),
        {"ESSENTIALS-003": FAIL, "ESSENTIALS-005": NA},
    ),
    case("expires at the moment of the scan", with_leaf(not_before=timedelta(days=-90), days=90), fails(5)),
    case(
        "not yet valid",
        Server(
            chain=(leaf(not_before=timedelta(days=2)), intermediate()),
            trust=(TrustResult(store="mozilla", trusted=False, reason="not_yet_valid"),),
        ),
        fails(1, 4),
    ),
    case("valid from a second ago", with_leaf(not_before=timedelta(seconds=-1)), {}),
    case("expires in 10 days", with_leaf(days=20), fails(5)),
    case("expires in 10 days, warning at 7 days", with_leaf(days=20), {}, {"expiry_warning": "7d"}),
    case("expires in 40 days, warning at 60 days", with_leaf(days=50), fails(5), {"expiry_warning": "60d"}),
    case("expires in 31 days", with_leaf(days=41), {}),
    case("leaf revoked by OCSP", Server(revocation=(revoked("revoked"), revoked("good", "crl"))), fails(6)),
    case(
        "intermediate revoked by CRL",
        Server(
            revocation=(
                revoked("good"),
                RevocationResult(certificate="bb" * 32, subject=ISSUER_DN, source="crl", status="revoked"),
            )
        ),
        fails(6),
    ),
    # a status that could not be learnt is not held against the server
    case(
        "revocation not learnt",
        Server(revocation=(revoked("not_checked"), revoked("unknown", "crl"), revoked("error", "stapled_ocsp"))),
        {},
    ),
    case("leaf good by a stapled response", Server(revocation=(revoked("good", "stapled_ocsp"),)), {}),
    case(
        "SHA-1 intermediate",
        Server(chain=(leaf(), intermediate(signature_algorithm="sha1WithRSAEncryption", signature_hash="sha1"))),
        fails(7),
    ),
    case("MD5 leaf", with_leaf(signature_algorithm="md5WithRSAEncryption", signature_hash="md5"), fails(7)),
    # a root's own signature is not relied on: a SHA-1 self-signed root sent along is not a SHA-1 chain
    case(
        "SHA-1 root sent along",
        Server(
            chain=(leaf(), intermediate(), root(signature_algorithm="sha1WithRSAEncryption", signature_hash="sha1"))
        ),
        {},
    ),
    case("RSA 1024 leaf", with_leaf(key=("RSA", 1024)), fails(8)),
    case("RSA 1024 intermediate", Server(chain=(leaf(), intermediate(key=("RSA", 1024)))), fails(8)),
    case("RSA 2048 leaf, rsa_min_bits 3072", Server(), fails(8), {"rsa_min_bits": 3072}),
    case("EC P-256 leaf", with_leaf(key=("EC", 256, "secp256r1")), {}),
    case("EC P-224 leaf", with_leaf(key=("EC", 224, "secp224r1")), fails(9)),
    case("EC P-256 leaf, ec_min_bits 384", with_leaf(key=("EC", 256, "secp256r1")), fails(9), {"ec_min_bits": 384}),
    case("Ed25519 leaf", with_leaf(key=("Ed25519", 256)), {}),
    # suite_case on a version the server otherwise refuses: that version accepted with the suite
    suite_case("SSL 3.0 accepted", "SSLv3", "TLS_RSA_WITH_AES_128_CBC_SHA", fails(10)),
    suite_case("SSL 2.0 accepted", "SSLv2", "SSL_CK_RC4_128_WITH_MD5", fails(10)),
    suite_case("TLS 1.0 accepted", "TLSv1.0", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", fails(11)),
    suite_case("TLS 1.1 accepted", "TLSv1.1", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", fails(11)),
    case("TLS 1.3 only", Server(accepted={"TLSv1.3": GOOD_SUITES["TLSv1.3"]}), {}),
    suite_case("NULL encryption suite", "TLSv1.2", "TLS_RSA_WITH_NULL_SHA256", fails(12)),
    suite_case("TLS 1.3 integrity-only suite", "TLSv1.3", "TLS_SHA256_SHA256", fails(12)),
    suite_case("anonymous DH suite", "TLSv1.2", "TLS_DH_anon_WITH_AES_128_GCM_SHA256", fails(13)),
    suite_case("NULL_WITH_NULL_NULL", "TLSv1.2", "TLS_NULL_WITH_NULL_NULL", fails(12, 13)),
    suite_case("export DES40 suite", "TLSv1.2", "TLS_RSA_EXPORT_WITH_DES40_CBC_SHA", fails(14, 16)),
    suite_case("export RC2 suite", "TLSv1.2", "TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5", fails(14)),
    suite_case("RC4 suite", "TLSv1.2", "TLS_ECDHE_RSA_WITH_RC4_128_SHA", fails(15)),
    suite_case("export RC4 suite", "TLSv1.2", "TLS_RSA_EXPORT_WITH_RC4_40_MD5", fails(14, 15)),
    suite_case("3DES suite", "TLSv1.2", "TLS_RSA_WITH_3DES_EDE_CBC_SHA", fails(16)),
    suite_case("DES suite", "TLSv1.2", "TLS_RSA_WITH_DES_CBC_SHA", fails(16)),
    # legacy but not weak: the suite rules judge ciphers, not how old a suite is
    suite_case("AES-CBC suite", "TLSv1.2", "TLS_RSA_WITH_AES_128_CBC_SHA", {}),
    file_case("certificate file", (leaf(), intermediate()), {}),
    file_case(
        "expired certificate file",
        (leaf(not_before=timedelta(days=-100), days=90),),
        {"ESSENTIALS-003": FAIL, "ESSENTIALS-005": NA},
    ),
    file_case("RSA 1024 certificate file", (leaf(key=("RSA", 1024)),), fails(8)),
    # what could not be observed is an error, never a pass: certificate rules are ESSENTIALS-001 to -009
    Case("certificate not observed", PACK, certificate_not_observed, dict.fromkeys(RULES[:9], "error")),
    Case("TLS 1.0 not probed", PACK, tls10_not_probed, dict.fromkeys(RULES[9:], "error")),
]

test_rule_statuses = case_test(CASES)
test_every_rule_passes_and_fails_somewhere = coverage_test(CASES, {PACK: RULES})
test_pack_is_valid = validate_test(PACK, len(RULES))


def test_expired_message_names_the_scan_time() -> None:
    """An expired leaf's finding shows its notAfter beside the moment of the scan."""
    found = Case("expired", PACK, with_leaf(not_before=timedelta(days=-100), days=90).facts, {}).judge()
    assert found["ESSENTIALS-003"].message == (
        "certificate.leaf.not_after = 2025-05-22 12:00:00+00:00, must be on or after 2025-06-01T12:00:00+00:00"
    )


def test_essentials_is_the_default(tlsgate) -> None:
    """`--help` of scan, cert and evaluate names the default pack."""
    for command in ("scan", "cert", "evaluate"):
        run = tlsgate(command, "--help")
        assert run.code == 0, run.stderr
        assert "Default: essentials (tlsgate rules show essentials)." in " ".join(run.stdout.split()), command


# --- real servers on loopback ----------------------------------------------------------------------------------


@dataclass
class Pki:
    """A private root -> intermediate CA, its root as a --ca-file, and the directory for servers' files."""

    root: Issued
    intermediate: Issued
    ca_file: Path
    directory: Path

    def serve(self, server_leaf: Issued, stem: str) -> ServerFiles:
        """A leaf with the intermediate after it, as a server is configured to send them."""
        chain = [self.intermediate] if server_leaf.issuer is self.intermediate else []
        cert, key = server_leaf.write(self.directory, stem, chain=chain)
        return ServerFiles(cert, key, self.ca_file)


@pytest.fixture
def pki(tmp_path) -> Pki:
    made = hierarchy("baseline")
    ca_file, _ = made.root.write(tmp_path, "root")
    return Pki(made.root, made.intermediate, ca_file, tmp_path)


def scan_default(tlsgate, files: ServerFiles, report: Path, *args: str) -> tuple[int, dict[str, dict[str, Any]], str]:
    """`tlsgate scan localhost:PORT` with no --pack against a TLS 1.2 + 1.3 server with these files: the exit code,
    the findings by rule and the summary printed."""
    with python_tls_server(server_context(files, ssl.TLSVersion.TLSv1_2)) as server:
        run = tlsgate("scan", f"localhost:{server.port}", "--timeout", "3", "--json", str(report), *args)
    assert run.code in (0, 1), run.stdout + run.stderr
    return run.code, findings(report), run.stdout + run.stderr


def server_leaf(pki: Pki, **options: Any) -> Issued:
    return issue(name("localhost"), issuer=pki.intermediate, **({"sans": ("localhost",), "eku": SERVER_AUTH} | options))


def test_loopback_well_configured_private_ca(tlsgate, pki: Pki, tmp_path) -> None:
    """A well-configured server whose private CA is given with --ca-file passes every rule (exit 0), by that CA's
    verdict; without --ca-file the same server fails the trust rule."""
    files = pki.serve(server_leaf(pki), "good")
    report = tmp_path / "with-ca.json"
    code, found, _ = scan_default(tlsgate, files, report, "--ca-file", str(pki.ca_file))
    assert (code, statuses(found)) == (0, ALL_PASS)
    (scanned_target,) = json.loads(report.read_text())["targets"]
    trust = {t["store"]: (t["trusted"], t["reason"]) for t in scanned_target["facts"]["certificate"]["trust"]}
    assert trust == {f"file:{pki.ca_file}": (True, None), "mozilla": (False, "unknown_issuer")}
    code, found, summary = scan_default(tlsgate, files, tmp_path / "without-ca.json")
    assert (code, statuses(found)) == (1, ALL_PASS | fails(1))
    assert "ESSENTIALS-001" in summary


# Each defect: the leaf's options, whether the private CA is given, and the rules that fail (all others pass).
DEFECTS = [
    pytest.param("self-signed", {}, False, fails(1), id="self-signed"),
    pytest.param("expired", {"not_before": PKI_NOW - timedelta(days=100), "days": 90}, True, EXPIRED, id="expired"),
    pytest.param(
        "wrong host",
        {"sans": ("www.example.org",)},
        True,
        fails(1, 2),
        id="wrong-host",
    ),
    pytest.param(
        "not yet valid",
        {"not_before": PKI_NOW + timedelta(days=2)},
        True,
        fails(1, 4),
        id="not-yet-valid",
    ),
]


@pytest.mark.parametrize(("defect", "options", "give_ca", "failing"), DEFECTS)
def test_loopback_defect_fails_without_pack(tlsgate, pki: Pki, tmp_path, defect, options, give_ca, failing) -> None:
    """`tlsgate scan` without --pack exits 1 on the defect and names the failing rule in its summary."""
    if defect == "self-signed":
        made = issue(name("localhost"), sans=("localhost",), eku=SERVER_AUTH)
    else:
        made = server_leaf(pki, **options)
    files = pki.serve(made, defect.replace(" ", "-"))
    args = ("--ca-file", str(pki.ca_file)) if give_ca else ()
    code, found, summary = scan_default(tlsgate, files, tmp_path / "r.json", *args)
    assert (code, statuses(found)) == (1, ALL_PASS | failing)
    for rule in failing:
        if failing[rule] == FAIL:
            assert rule in summary


@pytest.fixture
def responder() -> Iterator[RevocationServer]:
    with RevocationServer() as server:
        yield server


def test_loopback_revoked_leaf(tlsgate, pki: Pki, responder: RevocationServer, tmp_path) -> None:
    """A leaf its CA revoked (OCSP and CRL from a loopback responder) fails ESSENTIALS-006: exit 1; before the
    revocation the same server passes."""
    responder.add_issuer("intermediate", pki.intermediate)
    made = server_leaf(pki, ocsp_url=responder.ocsp_url, crl_url=responder.crl_url("intermediate"))
    files = pki.serve(made, "revoked")
    code, found, _ = scan_default(tlsgate, files, tmp_path / "before.json", "--ca-file", str(pki.ca_file))
    assert (code, statuses(found)) == (0, ALL_PASS)
    responder.revoke(made)
    code, found, summary = scan_default(tlsgate, files, tmp_path / "after.json", "--ca-file", str(pki.ca_file))
    assert (code, statuses(found)) == (1, ALL_PASS | fails(6))
    assert "ESSENTIALS-006" in summary
    offending = found["ESSENTIALS-006"]["evidence"]["offending"]
    assert {(r["certificate"], r["source"], r["status"]) for r in offending} == {
        (made.sha256, "ocsp", "revoked"),
        (made.sha256, "crl", "revoked"),
    }


def test_cert_file_without_pack(tlsgate, pki: Pki, tmp_path) -> None:
    """`tlsgate cert FILE` without --pack judges the file by the essentials pack: an expired one exits 1 naming
    ESSENTIALS-003, a valid one passes the rules a file can be judged by."""
    expired = server_leaf(pki, not_before=PKI_NOW - timedelta(days=100), days=90)
    path, _ = expired.write(tmp_path, "expired")
    run = tlsgate("cert", str(path), "--json", str(tmp_path / "expired.json"))
    assert run.code == 1, run.stdout + run.stderr
    assert "ESSENTIALS-003" in run.stdout + run.stderr
    assert statuses(tmp_path / "expired.json")["ESSENTIALS-003"] == FAIL
    valid, _ = server_leaf(pki).write(tmp_path, "valid", chain=[pki.intermediate])
    run = tlsgate("cert", str(valid), "--json", str(tmp_path / "valid.json"))
    assert run.code == 0, run.stdout + run.stderr
    judged = statuses(tmp_path / "valid.json")
    assert judged == dict.fromkeys(set(RULES) - CERT_RULES, NA) | dict.fromkeys(CERT_RULES, "pass")
