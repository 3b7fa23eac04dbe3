"""The partner-mtls pack: each rule passing and failing on built facts, then the pack against real mTLS servers."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from scanner.facts import (
    Certificate,
    CertificateFacts,
    ClientAuthEnforcement,
    ErrorClass,
    Facts,
    Observed,
    SessionFacts,
    TargetInfo,
    TrustResult,
    observed,
    unobserved,
)
from tests.helpers import ClientPki, client_pki, openssl_server
from tests.nginx import nginx_binary, nginx_server
from tests.packs import harness
from tests.packs.harness import NOW, Case, case_test, cert, coverage_test, enforced, scan, statuses, validate_test
from tests.pki import CLIENT_AUTH, SERVER_AUTH, issue, name, new_key

PACK = "partner-mtls"
TLS13 = ["TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"]
CLIENT_SUBJECT = "CN=gw-4711.partner.example,O=Partner Ltd,C=DE"
CLIENT_PATTERN = "CN=gw-*.partner.example, O=Partner Ltd"

# --- facts ---------------------------------------------------------------------------------------------------


def certificate(
    *,
    key: tuple[str, int | None] = ("RSA", 3072),
    eku: tuple[str, ...] | None = ("serverAuth",),
    days: float = 397,
    subject: str = "CN=api.example.com,O=Example AG",
) -> Certificate:
    curve = {256: "secp256r1", 384: "secp384r1", 224: "secp224r1"}.get(key[1] or 0) if key[0] == "EC" else None
    return harness.certificate(
        subject, issuer="CN=Public Issuing CA,O=Public CA Inc,C=US", key=(*key, curve), eku=eku,
        not_before=NOW - timedelta(days=30), days=days, days_remaining=days - 30, serial="0a1b2c",
        subject_alt_names=["DNS:api.example.com"],
    )  # fmt: skip


@dataclass(frozen=True)
class ScannedEndpoint:
    """What a scan of a partner endpoint observes; the defaults make every network rule pass."""

    accepted: dict[str, list[str]] = field(default_factory=lambda: {"TLSv1.3": TLS13})
    leaf: Certificate = field(default_factory=certificate)
    trust: list[TrustResult] = field(default_factory=lambda: [TrustResult(store="mozilla", trusted=True)])
    ticket_lifetime: Any = field(default_factory=lambda: observed(300))
    requirement: str = "required"
    throwaway: Any = field(default_factory=lambda: observed(False))
    enforcement: ClientAuthEnforcement | Observed[Any] | None = None  # where a client without a certificate was refused
    untrusted: ClientAuthEnforcement | None = None  # where the throwaway certificate was refused
    client_auth_error: str | None = None

    def facts(self) -> Facts:
        return harness.scanned(
            harness.target("api.example.com", 443, "192.0.2.10"),
            protocols=harness.protocols(self.accepted),
            certificate=CertificateFacts(
                status="ok", leaf=self.leaf, chain=[self.leaf], trust=self.trust, hostname_match=observed(True)
            ),
            sessions=SessionFacts(status="ok", ticket_lifetime=self.ticket_lifetime),
            client_auth=harness.client_auth_error(self.client_auth_error)
            if self.client_auth_error
            else harness.client_auth(
                self.requirement, self.throwaway, enforcement=self.enforcement, untrusted=self.untrusted
            ),
        )


NGINX_VERIFY_ON = ScannedEndpoint(
    requirement="optional",
    throwaway=observed(True),
    enforcement=enforced("application", "HTTP/1.1 400 Bad Request"),
    untrusted=enforced("application", "HTTP/1.1 400 Bad Request"),
)
ALLOW_APPLICATION = {"client_certificate_enforced_at": ["handshake", "application"]}
HTTP_TIMEOUT = unobserved(ErrorClass.timeout, "127.0.0.1:8443: no answer to the HTTP request within 5s")


def client_file(leaf: Certificate | None = None) -> Facts:
    """Facts of a client certificate file as `tlsgate cert` makes them: certificates and nothing else."""
    leaf = leaf or certificate(eku=("clientAuth",), subject=CLIENT_SUBJECT)
    return harness.scanned(
        TargetInfo(input="client.pem", host="client.pem", port=0, server_name=None, ip_address=None, source="file"),
        certificate=CertificateFacts(status="ok", leaf=leaf, chain=[leaf]),
    )


# --- expected statuses -----------------------------------------------------------------------------------------

RULES = [f"PMTLS-{n:03d}" for n in range(1, 18)]
FILE_ONLY = {"PMTLS-010", "PMTLS-011", "PMTLS-017"}
# a compliant endpoint: the RSA key makes the EC rule not applicable; file-only rules do not apply to a scan
NETWORK_OK = {r: "not_applicable" if r in FILE_ONLY | {"PMTLS-007"} else "pass" for r in RULES}
# a compliant client certificate file: only certificate rules apply, and of those not the server's
FILE_RULES = ("PMTLS-005", "PMTLS-006", "PMTLS-010", "PMTLS-011", "PMTLS-012", "PMTLS-017")
FILE_OK = dict.fromkeys(RULES, "not_applicable") | dict.fromkeys(FILE_RULES, "pass")


def case(
    name: str,
    facts: Callable[[], Facts],
    expected: dict[str, str],  # statuses that differ from the baseline
    params: dict[str, Any] | None = None,
    baseline: dict[str, str] = NETWORK_OK,
) -> Case:
    return Case(name, PACK, facts, baseline | expected, params or {})


CASES = [
    case("compliant endpoint", ScannedEndpoint().facts, {}),
    case(
        "compliant client certificate file",
        client_file,
        {},
        params={"client_subject_pattern": CLIENT_PATTERN},
        baseline=FILE_OK,
    ),
    case(
        "TLS 1.2 with an approved suite",
        ScannedEndpoint(accepted={"TLSv1.2": ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"], "TLSv1.3": TLS13}).facts,
        {"PMTLS-001": "fail"},
    ),
    case(
        "TLS 1.2 with a suite outside the list",
        ScannedEndpoint(accepted={"TLSv1.2": ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"], "TLSv1.3": TLS13}).facts,
        {"PMTLS-001": "fail", "PMTLS-004": "fail"},
    ),
    case(
        "TLS 1.2 only",
        ScannedEndpoint(accepted={"TLSv1.2": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]}).facts,
        {"PMTLS-001": "fail", "PMTLS-002": "fail"},
    ),
    case(
        "TLS 1.3 with AES-CCM",
        ScannedEndpoint(accepted={"TLSv1.3": [*TLS13, "TLS_AES_128_CCM_SHA256"]}).facts,
        {"PMTLS-003": "fail"},
    ),
    case(
        "TLS 1.3 equivalents narrowed by parameter",
        ScannedEndpoint().facts,
        {"PMTLS-003": "fail"},
        params={"approved_tls13_suites": ["TLS_AES_256_GCM_SHA384"]},
    ),
    case(
        "Ed25519 key",
        ScannedEndpoint(leaf=certificate(key=("Ed25519", 256))).facts,
        {"PMTLS-005": "fail", "PMTLS-006": "not_applicable"},
    ),
    case("RSA 2048", ScannedEndpoint(leaf=certificate(key=("RSA", 2048))).facts, {"PMTLS-006": "fail"}),
    case(
        "RSA 3072 below a raised minimum", ScannedEndpoint().facts, {"PMTLS-006": "fail"}, params={"rsa_min_bits": 4096}
    ),
    case(
        "EC P-256",
        ScannedEndpoint(leaf=certificate(key=("EC", 256))).facts,
        {"PMTLS-006": "not_applicable", "PMTLS-007": "pass"},
    ),
    case(
        "EC P-224",
        ScannedEndpoint(leaf=certificate(key=("EC", 224))).facts,
        {"PMTLS-006": "not_applicable", "PMTLS-007": "fail"},
    ),
    case(
        "server EKU serverAuth and clientAuth",
        ScannedEndpoint(leaf=certificate(eku=("serverAuth", "clientAuth"))).facts,
        {"PMTLS-009": "fail"},
    ),
    # no EKU extension means any usage: the presence rule fails (the "nothing else" rule has nothing to judge)
    case("server certificate without EKU", ScannedEndpoint(leaf=certificate(eku=None)).facts, {"PMTLS-008": "fail"}),
    case(
        "server EKU clientAuth only",
        ScannedEndpoint(leaf=certificate(eku=("clientAuth",))).facts,
        {"PMTLS-008": "fail", "PMTLS-009": "fail"},
    ),
    case(
        "validity of exactly 3 years (1095 days)",
        ScannedEndpoint(leaf=certificate(days=1095)).facts,
        {"PMTLS-012": "fail"},
    ),
    case("validity of 1094 days", ScannedEndpoint(leaf=certificate(days=1094)).facts, {}),
    case("validity over a lowered maximum", ScannedEndpoint().facts, {"PMTLS-012": "fail"}, {"max_validity": "1y"}),
    case("ticket lifetime 7200 s", ScannedEndpoint(ticket_lifetime=observed(7200)).facts, {"PMTLS-013": "fail"}),
    case("ticket lifetime 301 s", ScannedEndpoint(ticket_lifetime=observed(301)).facts, {"PMTLS-013": "fail"}),
    case(
        "ticket lifetime 7200 s within a raised maximum",
        ScannedEndpoint(ticket_lifetime=observed(7200)).facts,
        {},
        params={"max_session_lifetime": "2h"},
    ),
    case("no ticket issued", ScannedEndpoint(ticket_lifetime=observed(None)).facts, {"PMTLS-013": "not_applicable"}),
    case(
        "ticket lifetime not observed",
        ScannedEndpoint(ticket_lifetime=unobserved(ErrorClass.probe_failed, "lifetime hint 0")).facts,
        {"PMTLS-013": "error"},
    ),
    case("client certificate optional", ScannedEndpoint(requirement="optional").facts, {"PMTLS-014": "fail"}),
    case(
        "client certificate not requested",
        ScannedEndpoint(requirement="not_requested").facts,
        {"PMTLS-014": "fail", "PMTLS-015": "not_applicable"},
    ),
    case(
        "throwaway client certificate accepted", ScannedEndpoint(throwaway=observed(True)).facts, {"PMTLS-015": "fail"}
    ),
    # nginx with ssl_verify_client on: the handshake lets any client through, the HTTP request is refused
    case("refused by the application", NGINX_VERIFY_ON.facts, {"PMTLS-014": "fail", "PMTLS-015": "fail"}),
    case("refused by the application, which the partner accepts", NGINX_VERIFY_ON.facts, {}, ALLOW_APPLICATION),
    case(
        "refused in the handshake, application enforcement allowed too", ScannedEndpoint().facts, {}, ALLOW_APPLICATION
    ),
    case(
        "no certificate refused by the application, the throwaway one answered",
        ScannedEndpoint(
            requirement="optional",
            throwaway=observed(True),
            enforcement=enforced("application", "HTTP/1.1 403 Forbidden"),
            untrusted=enforced("not_enforced", "HTTP/1.1 200 OK"),
        ).facts,
        {"PMTLS-015": "fail"},
        ALLOW_APPLICATION,
    ),
    case(
        "HTTP request answered without a certificate",
        ScannedEndpoint(requirement="not_requested", enforcement=enforced("not_enforced", "HTTP/1.1 200 OK")).facts,
        {"PMTLS-014": "fail", "PMTLS-015": "not_applicable"},
        ALLOW_APPLICATION,
    ),
    # a service that is not HTTP keeps the TLS-level answer: what its application does is not seen
    case(
        "optional client certificate on a service that is not HTTP",
        ScannedEndpoint(requirement="optional", throwaway=observed(True)).facts,
        {"PMTLS-014": "fail", "PMTLS-015": "fail"},
        ALLOW_APPLICATION,
    ),
    case(
        "HTTP request not answered",
        ScannedEndpoint(requirement="optional", enforcement=HTTP_TIMEOUT).facts,
        {"PMTLS-014": "error"},
    ),
    case(
        "client authentication not observed",
        ScannedEndpoint(client_auth_error="timed out").facts,
        {"PMTLS-014": "error", "PMTLS-015": "error"},
    ),
    case(
        "private CA",
        ScannedEndpoint(trust=[TrustResult(store="mozilla", trusted=False, reason="unknown_issuer")]).facts,
        {"PMTLS-016": "fail"},
    ),
    case(
        "private CA trusted by a CA file only",
        ScannedEndpoint(
            trust=[
                TrustResult(store="mozilla", trusted=False, reason="unknown_issuer"),
                TrustResult(store="file:/etc/partner-ca.pem", trusted=True),
            ]
        ).facts,
        {"PMTLS-016": "fail"},
    ),
    case(
        "client file with serverAuth too",
        lambda: client_file(certificate(eku=("clientAuth", "serverAuth"), subject=CLIENT_SUBJECT)),
        {"PMTLS-011": "fail"},
        params={"client_subject_pattern": CLIENT_PATTERN},
        baseline=FILE_OK,
    ),
    case(
        "client file without EKU",
        lambda: client_file(certificate(eku=None, subject=CLIENT_SUBJECT)),
        {"PMTLS-010": "fail"},
        params={"client_subject_pattern": CLIENT_PATTERN},
        baseline=FILE_OK,
    ),
    case(
        "client file with codeSigning instead",
        lambda: client_file(certificate(eku=("codeSigning",), subject=CLIENT_SUBJECT)),
        {"PMTLS-010": "fail", "PMTLS-011": "fail"},
        params={"client_subject_pattern": CLIENT_PATTERN},
        baseline=FILE_OK,
    ),
    case(
        "client file for another organisation",
        lambda: client_file(certificate(eku=("clientAuth",), subject="CN=gw-4711.partner.example,O=Someone Else")),
        {"PMTLS-017": "fail"},
        params={"client_subject_pattern": CLIENT_PATTERN},
        baseline=FILE_OK,
    ),
    case("client file judged without the agreed identifier", client_file, {"PMTLS-017": "fail"}, baseline=FILE_OK),
    case(
        "client file with a weak key and a long validity",
        lambda: client_file(certificate(key=("RSA", 2048), eku=("clientAuth",), days=1825, subject=CLIENT_SUBJECT)),
        {"PMTLS-006": "fail", "PMTLS-012": "fail"},
        params={"client_subject_pattern": CLIENT_PATTERN},
        baseline=FILE_OK,
    ),
]

test_rule_statuses = case_test(CASES)
test_every_rule_passes_and_fails_somewhere = coverage_test(CASES, {PACK: RULES})
test_pack_is_valid = validate_test(PACK, len(RULES))


# --- real servers on loopback ----------------------------------------------------------------------------------

needs_nginx = pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")


@dataclass(frozen=True)
class MtlsServer:
    """An RSA 3072 server certificate from a private root (not publicly trusted) and a client PKI."""

    cert: Path
    key: Path
    clients: ClientPki

    def scan(self, tlsgate, target: str, report: Path, *args: str) -> tuple[int, dict[str, dict[str, Any]]]:
        """Scan with the pack, presenting the client certificate."""
        credentials = ("--client-cert", str(self.clients.cert), "--client-key", str(self.clients.key))
        return scan(tlsgate, target, report, "--pack", PACK, *credentials, *args)


def mtls_server(directory: Path) -> MtlsServer:
    root = issue(name("partner test root CA"), ca=True, days=3650, key=new_key("p384"))
    leaf = issue(name("localhost"), issuer=root, key=new_key("rsa3072"), days=90, sans=("127.0.0.1",), eku=SERVER_AUTH)
    cert, key = leaf.write(directory, "server")
    return MtlsServer(cert, key, client_pki(directory / "client"))


def test_loopback_endpoint_passes_all_but_the_public_ca_rule(tlsgate, tmp_path) -> None:
    """openssl s_server, TLS 1.3 only, RSA 3072, client certificate required: only the public-CA rule fails."""
    server = mtls_server(tmp_path)
    # s_server announces a fixed 7200 s ticket lifetime: it issues none here, so the ticket rule does not apply
    mtls = ("-tls1_3", "-num_tickets", "0", "-Verify", "1", "-verify_return_error", "-CAfile", str(server.clients.ca))
    with openssl_server(server.cert, server.key, *mtls) as port:
        code, found = server.scan(tlsgate, f"127.0.0.1:{port}", tmp_path / "r.json")
    assert (code, statuses(found)) == (1, NETWORK_OK | {"PMTLS-013": "not_applicable", "PMTLS-016": "fail"})
    assert (found["PMTLS-014"]["evidence"]["observed"], found["PMTLS-015"]["evidence"]["observed"]) == (
        "handshake",
        "handshake",
    )
    public_ca = found["PMTLS-016"]
    assert public_ca["message"].startswith("certificate.trust: none found where store must equal mozilla")
    assert "unknown_issuer" in json.dumps(public_ca["evidence"]["observed"])
    assert set(found["PMTLS-003"]["evidence"]["observed"]) == set(TLS13)


@needs_nginx
def test_loopback_nginx_refusing_after_the_handshake(tlsgate, tmp_path) -> None:
    """nginx with ssl_verify_client on checks client certificates only after the handshake: at the TLS level a
    client certificate is optional and any is accepted, and the HTTP request is refused (400). That is enforcement
    at the application layer: it fails PMTLS-014/015 by default and passes them when the parameter allows it.
    Its ssl_session_timeout 300s passes the ticket rule."""
    server = mtls_server(tmp_path)
    extra = f"ssl_verify_client on; ssl_client_certificate {server.clients.ca};"
    allow = ("--param", "client_certificate_enforced_at=[handshake, application]")
    with nginx_server(server.cert, server.key, protocols=("TLSv1.3",), session_timeout="300s", extra=extra) as nginx:
        code, found = server.scan(tlsgate, nginx.target, tmp_path / "r.json")
        allowed_code, allowed = server.scan(tlsgate, nginx.target, tmp_path / "allowed.json", *allow)
    assert (code, statuses(found)) == (1, NETWORK_OK | {"PMTLS-014": "fail", "PMTLS-015": "fail", "PMTLS-016": "fail"})
    assert (found["PMTLS-013"]["status"], found["PMTLS-013"]["evidence"]["observed"]) == ("pass", 300)
    assert found["PMTLS-014"]["message"] == "client_auth.enforcement.at = application, must be one of [handshake]"
    assert found["PMTLS-015"]["evidence"]["observed"] == "application"
    # with application-layer enforcement allowed, only the public-CA rule fails (the test CA is private)
    assert (allowed_code, statuses(allowed)) == (1, NETWORK_OK | {"PMTLS-016": "fail"})
    assert allowed["PMTLS-014"]["evidence"]["expected"] == {"in": ["handshake", "application"]}
    (scanned,) = json.loads((tmp_path / "allowed.json").read_text())["targets"]
    client_auth = scanned["facts"]["client_auth"]
    assert (client_auth["requirement"]["value"], client_auth["throwaway_certificate_accepted"]["value"]) == (
        "optional",
        True,
    )
    for fact in ("enforcement", "untrusted_enforcement"):
        seen = client_auth[fact]["value"]
        assert (seen["at"], seen["status_line"]) == ("application", "HTTP/1.1 400 Bad Request"), fact


def test_loopback_endpoint_failing_several_rules(tlsgate, tmp_path) -> None:
    """openssl s_server with TLS 1.2, RSA 2048, 5 years, dual EKU, 7200 s tickets and no client auth fails each."""
    leaf = issue(
        name("localhost"), key=new_key("rsa2048"), days=5 * 365, sans=("127.0.0.1",), eku=SERVER_AUTH + CLIENT_AUTH
    )
    cert, key = leaf.write(tmp_path, "server")
    with openssl_server(cert, key) as port:
        code, found = scan(tlsgate, f"127.0.0.1:{port}", tmp_path / "r.json", "--pack", PACK)
    failed = ["PMTLS-001", "PMTLS-004", "PMTLS-006", "PMTLS-009", "PMTLS-012", "PMTLS-013", "PMTLS-014", "PMTLS-016"]
    expected = NETWORK_OK | dict.fromkeys(failed, "fail") | {"PMTLS-015": "not_applicable"}
    assert (code, statuses(found)) == (1, expected)
    assert found["PMTLS-006"]["evidence"]["observed"] == 2048
    assert found["PMTLS-013"]["evidence"]["observed"] == 7200
    assert found["PMTLS-009"]["evidence"]["offending"] == ["clientAuth"]


def test_client_certificate_file(tlsgate, tmp_path) -> None:
    """`tlsgate cert` passes a compliant client certificate with the agreed identifier, and fails it without one."""
    client = issue(
        name("gw-4711.partner.example", "Partner Ltd", country="DE"), key=new_key("rsa3072"), days=730, eku=CLIENT_AUTH
    )
    path, _ = client.write(tmp_path, "client")
    agreed = f"client_subject_pattern={CLIENT_PATTERN}"
    code, found = cert(tlsgate, path, tmp_path / "ok.json", "--pack", PACK, "--param", agreed)
    assert (code, statuses(found)) == (0, FILE_OK)
    code, unset = cert(tlsgate, path, tmp_path / "unset.json", "--pack", PACK)
    assert (code, statuses(unset)) == (1, FILE_OK | {"PMTLS-017": "fail"})
    assert "set --param client_subject_pattern" in unset["PMTLS-017"]["message"]
