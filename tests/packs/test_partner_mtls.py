"""The partner-mtls pack: each rule passing and failing on built facts, then the pack against real mTLS servers."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scanner.facts import (
    Certificate,
    CertificateFacts,
    ClientAuthFacts,
    ErrorClass,
    ExtendedKeyUsage,
    Facts,
    ProtocolSupport,
    ProtocolVersion,
    PublicKey,
    SessionFacts,
    TargetInfo,
    TrustResult,
    observed,
    unobserved,
)
from scanner.policy.engine import evaluate
from scanner.policy.pack import resolve_pack
from scanner.probe.iana import cipher_suite_by_name, to_fact
from tests.helpers import client_pki, openssl_server
from tests.nginx import nginx_binary, nginx_server
from tests.pki import CLIENT_AUTH, SERVER_AUTH, issue, name, new_key

PACK = "partner-mtls"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
TLS13 = ["TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"]
EKU_OIDS = {"serverAuth": "1.3.6.1.5.5.7.3.1", "clientAuth": "1.3.6.1.5.5.7.3.2", "codeSigning": "1.3.6.1.5.5.7.3.3"}
CLIENT_SUBJECT = "CN=gw-4711.partner.example,O=Partner Ltd,C=DE"
CLIENT_PATTERN = "CN=gw-*.partner.example, O=Partner Ltd"

# --- facts ---------------------------------------------------------------------------------------------------


def protocols(accepted: dict[str, list[str]]) -> list[ProtocolSupport]:
    """Every version from SSLv2 to TLS 1.3: those in ``accepted`` with their suites (IANA names), the rest refused."""
    result = []
    for version in ProtocolVersion:
        suites = [to_fact(cipher_suite_by_name(n)) for n in accepted.get(version.value, [])]
        status = "accepted" if version.value in accepted else "not_accepted"
        result.append(ProtocolSupport(version=version, status=status, cipher_suites=suites))
    return result


def certificate(
    *,
    key: tuple[str, int | None] = ("RSA", 3072),
    eku: tuple[str, ...] | None = ("serverAuth",),
    days: float = 397,
    subject: str = "CN=api.example.com,O=Example AG",
) -> Certificate:
    curve = {256: "secp256r1", 384: "secp384r1", 224: "secp224r1"}.get(key[1] or 0) if key[0] == "EC" else None
    not_before = NOW - timedelta(days=30)
    return Certificate(
        subject=subject,
        issuer="CN=Public Issuing CA,O=Public CA Inc,C=US",
        serial="0a1b2c",
        sha256="ab" * 32,
        public_key=PublicKey(type=key[0], size=key[1], curve=curve),
        signature_algorithm="sha256WithRSAEncryption",
        signature_hash="sha256",
        not_before=not_before,
        not_after=not_before + timedelta(days=days),
        validity_days=days,
        days_remaining=days - 30,
        subject_alt_names=["DNS:api.example.com"],
        extended_key_usage=None if eku is None else [ExtendedKeyUsage(name=n, oid=EKU_OIDS[n]) for n in eku],
        self_signed=False,
    )


@dataclass(frozen=True)
class ScannedEndpoint:
    """What a scan of a partner endpoint observes; the defaults make every network rule pass."""

    accepted: dict[str, list[str]] = field(default_factory=lambda: {"TLSv1.3": TLS13})
    leaf: Certificate = field(default_factory=certificate)
    trust: list[TrustResult] = field(default_factory=lambda: [TrustResult(store="mozilla", trusted=True)])
    ticket_lifetime: Any = field(default_factory=lambda: observed(300))
    requirement: str = "required"
    throwaway: Any = field(default_factory=lambda: observed(False))
    client_auth_error: str | None = None

    def facts(self) -> Facts:
        if self.client_auth_error:
            error = unobserved(ErrorClass.timeout, self.client_auth_error)
            client_auth = ClientAuthFacts(
                status="error", error=error.error, requirement=error, throwaway_certificate_accepted=error
            )
        elif self.requirement == "not_requested":
            not_applicable = unobserved(ErrorClass.not_applicable, "the server asks for no client certificate")
            client_auth = ClientAuthFacts(
                status="ok", requirement=observed("not_requested"), throwaway_certificate_accepted=not_applicable
            )
        else:
            client_auth = ClientAuthFacts(
                status="ok", requirement=observed(self.requirement), throwaway_certificate_accepted=self.throwaway
            )
        return Facts(
            target=TargetInfo(
                input="api.example.com:443", host="api.example.com", port=443,
                server_name="api.example.com", ip_address="192.0.2.10",
            ),
            started_at=NOW, finished_at=NOW, status="ok",
            protocols=protocols(self.accepted),
            certificate=CertificateFacts(
                status="ok", leaf=self.leaf, chain=[self.leaf], trust=self.trust, hostname_match=observed(True)
            ),
            sessions=SessionFacts(status="ok", ticket_lifetime=self.ticket_lifetime),
            client_auth=client_auth,
        )  # fmt: skip


def client_file(leaf: Certificate | None = None) -> Facts:
    """Facts of a client certificate file as `tlsgate cert` makes them: certificates and nothing else."""
    leaf = leaf or certificate(eku=("clientAuth",), subject=CLIENT_SUBJECT)
    return Facts(
        target=TargetInfo(input="client.pem", host="client.pem", port=0, server_name=None, ip_address=None,
                          source="file"),
        started_at=NOW, finished_at=NOW, status="ok",
        certificate=CertificateFacts(status="ok", leaf=leaf, chain=[leaf]),
    )  # fmt: skip


# --- expected statuses -----------------------------------------------------------------------------------------

RULES = [f"PMTLS-{n:03d}" for n in range(1, 18)]
FILE_ONLY = {"PMTLS-010", "PMTLS-011", "PMTLS-017"}
# a compliant endpoint: the RSA key makes the EC rule not applicable; file-only rules do not apply to a scan
NETWORK_OK = {r: "not_applicable" if r in FILE_ONLY | {"PMTLS-007"} else "pass" for r in RULES}
# a compliant client certificate file: only certificate rules apply, and of those not the server's
FILE_RULES = ("PMTLS-005", "PMTLS-006", "PMTLS-010", "PMTLS-011", "PMTLS-012", "PMTLS-017")
FILE_OK = dict.fromkeys(RULES, "not_applicable") | dict.fromkeys(FILE_RULES, "pass")


@dataclass(frozen=True)
class Case:
    facts: Callable[[], Facts]
    expected: dict[str, str]  # statuses that differ from the baseline
    params: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, str] = field(default_factory=lambda: NETWORK_OK)


CASES: dict[str, Case] = {
    "compliant endpoint": Case(lambda: ScannedEndpoint().facts(), {}),
    "compliant client certificate file": Case(
        client_file, {}, params={"client_subject_pattern": CLIENT_PATTERN}, baseline=FILE_OK
    ),
    "TLS 1.2 with an approved suite": Case(
        lambda: ScannedEndpoint(
            accepted={"TLSv1.2": ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"], "TLSv1.3": TLS13}
        ).facts(),
        {"PMTLS-001": "fail"},
    ),
    "TLS 1.2 with a suite outside the list": Case(
        lambda: ScannedEndpoint(
            accepted={"TLSv1.2": ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"], "TLSv1.3": TLS13}
        ).facts(),
        {"PMTLS-001": "fail", "PMTLS-004": "fail"},
    ),
    "TLS 1.2 only": Case(
        lambda: ScannedEndpoint(accepted={"TLSv1.2": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]}).facts(),
        {"PMTLS-001": "fail", "PMTLS-002": "fail"},
    ),
    "TLS 1.3 with AES-CCM": Case(
        lambda: ScannedEndpoint(accepted={"TLSv1.3": [*TLS13, "TLS_AES_128_CCM_SHA256"]}).facts(), {"PMTLS-003": "fail"}
    ),
    "TLS 1.3 equivalents narrowed by parameter": Case(
        lambda: ScannedEndpoint().facts(),
        {"PMTLS-003": "fail"},
        params={"approved_tls13_suites": ["TLS_AES_256_GCM_SHA384"]},
    ),
    "Ed25519 key": Case(
        lambda: ScannedEndpoint(leaf=certificate(key=("Ed25519", 256))).facts(),
        {"PMTLS-005": "fail", "PMTLS-006": "not_applicable"},
    ),
    "RSA 2048": Case(lambda: ScannedEndpoint(leaf=certificate(key=("RSA", 2048))).facts(), {"PMTLS-006": "fail"}),
    "RSA 3072 below a raised minimum": Case(
        lambda: ScannedEndpoint().facts(), {"PMTLS-006": "fail"}, params={"rsa_min_bits": 4096}
    ),
    "EC P-256": Case(
        lambda: ScannedEndpoint(leaf=certificate(key=("EC", 256))).facts(),
        {"PMTLS-006": "not_applicable", "PMTLS-007": "pass"},
    ),
    "EC P-224": Case(
        lambda: ScannedEndpoint(leaf=certificate(key=("EC", 224))).facts(),
        {"PMTLS-006": "not_applicable", "PMTLS-007": "fail"},
    ),
    "server EKU serverAuth and clientAuth": Case(
        lambda: ScannedEndpoint(leaf=certificate(eku=("serverAuth", "clientAuth"))).facts(), {"PMTLS-009": "fail"}
    ),
    # no EKU extension means any usage: the presence rule fails (the "nothing else" rule has nothing to judge)
    "server certificate without EKU": Case(
        lambda: ScannedEndpoint(leaf=certificate(eku=None)).facts(), {"PMTLS-008": "fail"}
    ),
    "server EKU clientAuth only": Case(
        lambda: ScannedEndpoint(leaf=certificate(eku=("clientAuth",))).facts(),
        {"PMTLS-008": "fail", "PMTLS-009": "fail"},
    ),
    "validity of exactly 3 years (1095 days)": Case(
        lambda: ScannedEndpoint(leaf=certificate(days=1095)).facts(), {"PMTLS-012": "fail"}
    ),
    "validity of 1094 days": Case(lambda: ScannedEndpoint(leaf=certificate(days=1094)).facts(), {}),
    "validity over a lowered maximum": Case(
        lambda: ScannedEndpoint().facts(), {"PMTLS-012": "fail"}, {"max_validity": "1y"}
    ),
    "ticket lifetime 7200 s": Case(
        lambda: ScannedEndpoint(ticket_lifetime=observed(7200)).facts(), {"PMTLS-013": "fail"}
    ),
    "ticket lifetime 301 s": Case(
        lambda: ScannedEndpoint(ticket_lifetime=observed(301)).facts(), {"PMTLS-013": "fail"}
    ),
    "ticket lifetime 7200 s within a raised maximum": Case(
        lambda: ScannedEndpoint(ticket_lifetime=observed(7200)).facts(), {}, params={"max_session_lifetime": "2h"}
    ),
    "no ticket issued": Case(
        lambda: ScannedEndpoint(ticket_lifetime=observed(None)).facts(), {"PMTLS-013": "not_applicable"}
    ),
    "ticket lifetime not observed": Case(
        lambda: ScannedEndpoint(ticket_lifetime=unobserved(ErrorClass.probe_failed, "lifetime hint 0")).facts(),
        {"PMTLS-013": "error"},
    ),
    "client certificate optional": Case(lambda: ScannedEndpoint(requirement="optional").facts(), {"PMTLS-014": "fail"}),
    "client certificate not requested": Case(
        lambda: ScannedEndpoint(requirement="not_requested").facts(),
        {"PMTLS-014": "fail", "PMTLS-015": "not_applicable"},
    ),
    "throwaway client certificate accepted": Case(
        lambda: ScannedEndpoint(throwaway=observed(True)).facts(), {"PMTLS-015": "fail"}
    ),
    "client authentication not observed": Case(
        lambda: ScannedEndpoint(client_auth_error="timed out").facts(), {"PMTLS-014": "error", "PMTLS-015": "error"}
    ),
    "private CA": Case(
        lambda: ScannedEndpoint(trust=[TrustResult(store="mozilla", trusted=False, reason="unknown_issuer")]).facts(),
        {"PMTLS-016": "fail"},
    ),
    "private CA trusted by a CA file only": Case(
        lambda: ScannedEndpoint(
            trust=[
                TrustResult(store="mozilla", trusted=False, reason="unknown_issuer"),
                TrustResult(store="file:/etc/partner-ca.pem", trusted=True),
            ]
        ).facts(),
        {"PMTLS-016": "fail"},
    ),
    "client file with serverAuth too": Case(
        lambda: client_file(certificate(eku=("clientAuth", "serverAuth"), subject=CLIENT_SUBJECT)),
        {"PMTLS-011": "fail"},
        params={"client_subject_pattern": CLIENT_PATTERN},
        baseline=FILE_OK,
    ),
    "client file without EKU": Case(
        lambda: client_file(certificate(eku=None, subject=CLIENT_SUBJECT)),
        {"PMTLS-010": "fail"},
        params={"client_subject_pattern": CLIENT_PATTERN},
        baseline=FILE_OK,
    ),
    "client file with codeSigning instead": Case(
        lambda: client_file(certificate(eku=("codeSigning",), subject=CLIENT_SUBJECT)),
        {"PMTLS-010": "fail", "PMTLS-011": "fail"},
        params={"client_subject_pattern": CLIENT_PATTERN},
        baseline=FILE_OK,
    ),
    "client file for another organisation": Case(
        lambda: client_file(certificate(eku=("clientAuth",), subject="CN=gw-4711.partner.example,O=Someone Else")),
        {"PMTLS-017": "fail"},
        params={"client_subject_pattern": CLIENT_PATTERN},
        baseline=FILE_OK,
    ),
    "client file judged without the agreed identifier": Case(client_file, {"PMTLS-017": "fail"}, baseline=FILE_OK),
    "client file with a weak key and a long validity": Case(
        lambda: client_file(certificate(key=("RSA", 2048), eku=("clientAuth",), days=1825, subject=CLIENT_SUBJECT)),
        {"PMTLS-006": "fail", "PMTLS-012": "fail"},
        params={"client_subject_pattern": CLIENT_PATTERN},
        baseline=FILE_OK,
    ),
}


def statuses(facts: Facts, params: dict[str, Any] | None = None) -> dict[str, str]:
    pack = resolve_pack(PACK, params=params or None)
    return {f.rule: f.status.value for f in evaluate(facts, [pack])}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_rule_statuses(case: Case) -> None:
    """Each fixture gives exactly the expected status for every rule of the pack."""
    assert statuses(case.facts(), case.params) == case.baseline | case.expected


def test_every_rule_passes_and_fails_somewhere() -> None:
    """Every rule of the pack has a fixture where it passes and one where it fails, and the fixtures know them all."""
    seen: dict[str, set[str]] = {rule: set() for rule in RULES}
    for case in CASES.values():
        for rule, status in (case.baseline | case.expected).items():
            seen[rule].add(status)
    assert [r.id for r in resolve_pack(PACK).rules] == RULES
    assert {rule: {"pass", "fail"} <= found for rule, found in seen.items()} == dict.fromkeys(RULES, True)


def test_pack_is_valid(tlsgate) -> None:
    """`tlsgate rules validate` accepts the pack as shipped."""
    run = tlsgate("rules", "validate", PACK)
    assert run.code == 0, run.stderr
    assert run.stdout.strip() == f"OK {PACK} ({PACK}, {len(RULES)} rules)"


# --- real servers on loopback ----------------------------------------------------------------------------------

needs_nginx = pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")


def findings(report: Path) -> dict[str, dict[str, Any]]:
    (target,) = json.loads(report.read_text())["targets"]
    return {f["rule"]: f for f in target["findings"]}


def test_loopback_endpoint_passes_all_but_the_public_ca_rule(tlsgate, tmp_path) -> None:
    """openssl s_server, TLS 1.3 only, RSA 3072, client certificate required: only the public-CA rule fails."""
    root = issue(name("partner test root CA"), ca=True, days=3650, key=new_key("p384"))
    leaf = issue(name("localhost"), issuer=root, key=new_key("rsa3072"), days=90, sans=("127.0.0.1",), eku=SERVER_AUTH)
    cert, key = leaf.write(tmp_path, "server")
    clients = client_pki(tmp_path / "client")
    # s_server announces a fixed 7200 s ticket lifetime: it issues none here, so the ticket rule does not apply
    mtls = ("-tls1_3", "-num_tickets", "0", "-Verify", "1", "-verify_return_error", "-CAfile", str(clients.ca))
    with openssl_server(cert, key, *mtls) as port:
        run = tlsgate(
            "scan", f"127.0.0.1:{port}", "--pack", PACK, "--client-cert", str(clients.cert), "--client-key",
            str(clients.key), "--timeout", "3", "--json", str(tmp_path / "r.json"),
        )  # fmt: skip
    assert run.code == 1, run.stdout + run.stderr
    found = findings(tmp_path / "r.json")
    assert {rule: f["status"] for rule, f in found.items()} == NETWORK_OK | {
        "PMTLS-013": "not_applicable", "PMTLS-016": "fail",
    }  # fmt: skip
    public_ca = found["PMTLS-016"]
    assert public_ca["message"].startswith("certificate.trust: none found where store must equal mozilla")
    assert "unknown_issuer" in json.dumps(public_ca["evidence"]["observed"])
    assert set(found["PMTLS-003"]["evidence"]["observed"]) == set(TLS13)


@needs_nginx
def test_loopback_ticket_lifetime_of_300_seconds(tlsgate, tmp_path) -> None:
    """nginx with ssl_session_timeout 300s passes the ticket rule; it checks client certificates only after the
    handshake (HTTP 400), so at the TLS level a client certificate is optional and any certificate is accepted."""
    root = issue(name("partner test root CA"), ca=True, days=3650, key=new_key("p384"))
    leaf = issue(name("localhost"), issuer=root, key=new_key("rsa3072"), days=90, sans=("127.0.0.1",), eku=SERVER_AUTH)
    cert, key = leaf.write(tmp_path, "server")
    clients = client_pki(tmp_path / "client")
    extra = f"ssl_verify_client on; ssl_client_certificate {clients.ca};"
    with nginx_server(cert, key, protocols=("TLSv1.3",), session_timeout="300s", extra=extra) as server:
        run = tlsgate(
            "scan", server.target, "--pack", PACK, "--client-cert", str(clients.cert), "--client-key",
            str(clients.key), "--timeout", "3", "--json", str(tmp_path / "r.json"),
        )  # fmt: skip
    assert run.code == 1, run.stdout + run.stderr
    found = findings(tmp_path / "r.json")
    assert (found["PMTLS-013"]["status"], found["PMTLS-013"]["evidence"]["observed"]) == ("pass", 300)
    assert (found["PMTLS-014"]["status"], found["PMTLS-014"]["evidence"]["observed"]) == ("fail", "optional")
    assert found["PMTLS-015"]["status"] == "fail"


def test_loopback_endpoint_failing_several_rules(tlsgate, tmp_path) -> None:
    """openssl s_server with TLS 1.2, RSA 2048, 5 years, dual EKU, 7200 s tickets and no client auth fails each."""
    leaf = issue(
        name("localhost"), key=new_key("rsa2048"), days=5 * 365, sans=("127.0.0.1",), eku=SERVER_AUTH + CLIENT_AUTH
    )
    cert, key = leaf.write(tmp_path, "server")
    with openssl_server(cert, key) as port:
        run = tlsgate("scan", f"127.0.0.1:{port}", "--pack", PACK, "--timeout", "3", "--json", str(tmp_path / "r.json"))
    assert run.code == 1, run.stdout + run.stderr
    found = findings(tmp_path / "r.json")
    failed = ["PMTLS-001", "PMTLS-004", "PMTLS-006", "PMTLS-009", "PMTLS-012", "PMTLS-013", "PMTLS-014", "PMTLS-016"]
    assert {rule: f["status"] for rule, f in found.items()} == NETWORK_OK | dict.fromkeys(failed, "fail") | {
        "PMTLS-015": "not_applicable"
    }
    assert found["PMTLS-006"]["evidence"]["observed"] == 2048
    assert found["PMTLS-013"]["evidence"]["observed"] == 7200
    assert found["PMTLS-009"]["evidence"]["offending"] == ["clientAuth"]


def test_client_certificate_file(tlsgate, tmp_path) -> None:
    """`tlsgate cert` passes a compliant client certificate with the agreed identifier, and fails it without one."""
    client = issue(
        name("gw-4711.partner.example", "Partner Ltd", country="DE"), key=new_key("rsa3072"), days=730, eku=CLIENT_AUTH
    )
    path, _ = client.write(tmp_path, "client")
    run = tlsgate(
        "cert", str(path), "--pack", PACK, "--param", f"client_subject_pattern={CLIENT_PATTERN}",
        "--json", str(tmp_path / "ok.json"),
    )  # fmt: skip
    assert run.code == 0, run.stdout + run.stderr
    assert {rule: f["status"] for rule, f in findings(tmp_path / "ok.json").items()} == FILE_OK
    run = tlsgate("cert", str(path), "--pack", PACK, "--json", str(tmp_path / "unset.json"))
    assert run.code == 1, run.stdout + run.stderr
    unset = findings(tmp_path / "unset.json")
    assert {rule: f["status"] for rule, f in unset.items()} == FILE_OK | {"PMTLS-017": "fail"}
    assert "set --param client_subject_pattern" in unset["PMTLS-017"]["message"]
