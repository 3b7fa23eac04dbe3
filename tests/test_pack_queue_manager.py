"""The queue-manager-channel pack: each rule passing and failing on built facts, then against real servers with a
loopback OCSP responder and CRL server."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from scanner.facts import (
    Certificate,
    CertificateFacts,
    ClientAuthFacts,
    ErrorClass,
    Facts,
    ProtocolSupport,
    ProtocolVersion,
    PublicKey,
    RevocationResult,
    TargetInfo,
    TrustResult,
    observed,
    unobserved,
)
from scanner.policy.engine import evaluate
from scanner.policy.pack import resolve_pack
from scanner.probe.iana import cipher_suite_by_name, to_fact
from tests.helpers import client_pki, openssl_server
from tests.ocsp_crl_server import RevocationServer
from tests.pki import SERVER_AUTH, Issued, issue, name, new_key

PACK = "queue-manager-channel"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
RULES = [f"QMCHAN-{n:03d}" for n in range(1, 9)]
ALL_PASS = dict.fromkeys(RULES, "pass")
LEAF_DN = "CN=QM1.bank.example,O=Example Bank,C=DE"
ISSUER_DN = "CN=Example Bank Issuing CA,O=Example Bank,C=DE"
PATTERN = {"peer_dn_pattern": "CN=QM1*, O=Example Bank"}
LEAF_SHA, ISSUER_SHA = "aa" * 32, "bb" * 32
GOOD_SUITES = {
    "TLSv1.2": ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
    "TLSv1.3": ["TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256"],
}
CA_FILE = TrustResult(store="file:/var/mqm/ca.pem", trusted=True, anchor="CN=Example Bank Root CA")
MOZILLA = TrustResult(store="mozilla", trusted=False, reason="unknown_issuer")

# --- facts ---------------------------------------------------------------------------------------------------


def protocols(accepted: dict[str, list[str]]) -> list[ProtocolSupport]:
    return [
        ProtocolSupport(
            version=v,
            status="accepted" if v.value in accepted else "not_accepted",
            cipher_suites=[to_fact(cipher_suite_by_name(n)) for n in accepted.get(v.value, [])],
        )
        for v in ProtocolVersion
    ]


def certificate(subject: str, issuer: str, sha256: str) -> Certificate:
    return Certificate(
        subject=subject,
        issuer=issuer,
        serial="1001",
        sha256=sha256,
        public_key=PublicKey(type="RSA", size=2048),
        signature_algorithm="sha256WithRSAEncryption",
        signature_hash="sha256",
        not_before=NOW - timedelta(days=10),
        not_after=NOW + timedelta(days=355),
        validity_days=365,
        self_signed=False,
    )


def revocation(subject: str, source: str, status: str, sha256: str | None = None) -> RevocationResult:
    sha = sha256 or (LEAF_SHA if subject == LEAF_DN else ISSUER_SHA)
    return RevocationResult(
        certificate=sha,
        subject=subject,
        leaf=sha == LEAF_SHA,
        source=source,
        status=status,  # type: ignore[arg-type]
    )


GOOD_REVOCATION = (
    revocation(LEAF_DN, "ocsp", "good"),
    revocation(LEAF_DN, "crl", "good"),
    revocation(ISSUER_DN, "ocsp", "good"),
    revocation(ISSUER_DN, "crl", "good"),
)


@dataclass(frozen=True)
class Channel:
    """What a scan of a queue manager's listener observes; the defaults pass every rule with PATTERN set."""

    subject: str = LEAF_DN
    trust: tuple[TrustResult, ...] = (MOZILLA, CA_FILE)
    revocation: tuple[RevocationResult, ...] = GOOD_REVOCATION
    accepted: dict[str, list[str]] = field(default_factory=lambda: GOOD_SUITES)
    requirement: str = "required"
    throwaway: bool = False
    source: str = "network"

    def facts(self) -> Facts:
        leaf = certificate(self.subject, ISSUER_DN, LEAF_SHA)
        chain = [leaf, certificate(ISSUER_DN, "CN=Example Bank Root CA", ISSUER_SHA)]
        target = TargetInfo(
            input="qm1.bank.example:1414", host="qm1.bank.example", port=1414,
            server_name="qm1.bank.example", ip_address="192.0.2.14", source=self.source,
        )  # fmt: skip
        if self.source == "file":
            cert = CertificateFacts(status="ok", leaf=leaf, chain=chain)
            return Facts(target=target, started_at=NOW, finished_at=NOW, status="ok", certificate=cert)
        if self.requirement == "not_requested":
            not_applicable = unobserved(ErrorClass.not_applicable, "the server asks for no client certificate")
            client_auth = ClientAuthFacts(
                status="ok", requirement=observed("not_requested"), throwaway_certificate_accepted=not_applicable
            )
        else:
            client_auth = ClientAuthFacts(
                status="ok",
                requirement=observed(self.requirement),
                throwaway_certificate_accepted=observed(self.throwaway),
            )
        return Facts(
            target=target, started_at=NOW, finished_at=NOW, status="ok",
            protocols=protocols(self.accepted),
            certificate=CertificateFacts(
                status="ok", leaf=leaf, chain=chain, trust=list(self.trust), revocation=list(self.revocation),
                hostname_match=observed(True),
            ),
            client_auth=client_auth,
        )  # fmt: skip


@dataclass(frozen=True)
class Case:
    facts: Callable[[], Facts]
    expected: dict[str, str]  # statuses that differ from ALL_PASS
    params: dict[str, Any] = field(default_factory=lambda: PATTERN)


def with_suites(version: str, *names: str) -> dict[str, list[str]]:
    return GOOD_SUITES | {version: GOOD_SUITES[version] + list(names)}


def leaf_results(*statuses: tuple[str, str]) -> tuple[RevocationResult, ...]:
    """The issuer's results stay good; the leaf's are (source, status) as given."""
    return tuple(r for r in GOOD_REVOCATION if r.subject == ISSUER_DN) + tuple(
        revocation(LEAF_DN, source, status) for source, status in statuses
    )


CASES: dict[str, Case] = {
    "compliant channel": Case(lambda: Channel().facts(), {}),
    "trusted by a CA directory": Case(
        lambda: Channel(trust=(MOZILLA, TrustResult(store="capath:/var/mqm/ca.d", trusted=True))).facts(), {}
    ),
    "trusted by a PKCS#12 truststore": Case(
        lambda: Channel(trust=(MOZILLA, TrustResult(store="truststore:/var/mqm/key.p12", trusted=True))).facts(), {}
    ),
    "scanned without --ca-file": Case(lambda: Channel(trust=(MOZILLA,)).facts(), {"QMCHAN-001": "fail"}),
    "trusted by a public root only": Case(
        lambda: Channel(trust=(TrustResult(store="mozilla", trusted=True),)).facts(), {"QMCHAN-001": "fail"}
    ),
    "pinned only": Case(
        lambda: Channel(trust=(MOZILLA, TrustResult(store="pin", trusted=True))).facts(), {"QMCHAN-001": "fail"}
    ),
    "not from the given CA": Case(
        lambda: Channel(
            trust=(MOZILLA, TrustResult(store="file:/var/mqm/ca.pem", trusted=False, reason="unknown_issuer"))
        ).facts(),
        {"QMCHAN-001": "fail"},
    ),
    "intermediate fetched from AIA": Case(
        lambda: Channel(
            trust=(MOZILLA, TrustResult(store="file:/var/mqm/ca.pem", trusted=True, completed_via_aia=True))
        ).facts(),
        {"QMCHAN-001": "fail"},
    ),
    "one of two CA files": Case(
        lambda: Channel(
            trust=(MOZILLA, TrustResult(store="file:/old-ca.pem", trusted=False, reason="unknown_issuer"), CA_FILE)
        ).facts(),
        {},
    ),
    "leaf revoked": Case(
        lambda: Channel(revocation=leaf_results(("ocsp", "revoked"), ("crl", "revoked"))).facts(),
        {"QMCHAN-002": "fail", "QMCHAN-003": "fail"},
    ),
    "intermediate revoked": Case(
        lambda: Channel(revocation=(*leaf_results(("ocsp", "good")), revocation(ISSUER_DN, "crl", "revoked"))).facts(),
        {"QMCHAN-002": "fail"},
    ),
    "leaf good by OCSP, unknown by CRL": Case(
        lambda: Channel(revocation=leaf_results(("ocsp", "good"), ("crl", "unknown"))).facts(), {}
    ),
    "leaf good by a stapled response only": Case(
        lambda: Channel(revocation=leaf_results(("stapled_ocsp", "good"), ("ocsp", "not_checked"))).facts(), {}
    ),
    "revocation not checked (--offline)": Case(
        lambda: Channel(revocation=leaf_results(("ocsp", "not_checked"), ("crl", "not_checked"))).facts(),
        {"QMCHAN-003": "fail"},
    ),
    "leaf without OCSP or CRL URL": Case(lambda: Channel(revocation=leaf_results()).facts(), {"QMCHAN-003": "fail"}),
    # a source that failed is a result like any other: the OCSP answer still decides
    "leaf CRL unreachable": Case(
        lambda: Channel(revocation=leaf_results(("ocsp", "good"), ("crl", "error"))).facts(),
        {},
    ),
    "leaf CRL unreachable, OCSP says revoked": Case(
        lambda: Channel(revocation=leaf_results(("ocsp", "revoked"), ("crl", "error"))).facts(),
        {"QMCHAN-002": "fail", "QMCHAN-003": "fail"},
    ),
    # revocation results carry a leaf marker, so the DN rule alone judges another queue manager's certificate
    "another queue manager's certificate": Case(
        lambda: Channel(
            subject="CN=QM2.bank.example,O=Example Bank,C=DE",
            revocation=(
                revocation("CN=QM2.bank.example,O=Example Bank,C=DE", "ocsp", "good", LEAF_SHA),
                *GOOD_REVOCATION[2:],
            ),
        ).facts(),
        {"QMCHAN-004": "fail"},
    ),
    "peer DN pattern not set": Case(lambda: Channel().facts(), {"QMCHAN-004": "fail"}, params={}),
    "client certificate optional": Case(lambda: Channel(requirement="optional").facts(), {"QMCHAN-005": "fail"}),
    "client certificate not requested": Case(
        lambda: Channel(requirement="not_requested").facts(),
        {"QMCHAN-005": "fail", "QMCHAN-006": "not_applicable"},
    ),
    "client certificate optional by parameter (SSLCAUTH(OPTIONAL))": Case(
        lambda: Channel(requirement="optional", throwaway=True).facts(),
        {"QMCHAN-005": "not_applicable", "QMCHAN-006": "not_applicable"},
        params=PATTERN | {"require_client_certificate": False},
    ),
    "throwaway client certificate accepted": Case(lambda: Channel(throwaway=True).facts(), {"QMCHAN-006": "fail"}),
    "anonymous DH suite": Case(
        lambda: Channel(accepted=with_suites("TLSv1.2", "TLS_DH_anon_WITH_AES_256_GCM_SHA384")).facts(),
        {"QMCHAN-007": "fail"},
    ),
    "NULL encryption suite": Case(
        lambda: Channel(accepted=with_suites("TLSv1.2", "TLS_RSA_WITH_NULL_SHA256")).facts(), {"QMCHAN-008": "fail"}
    ),
    "TLS 1.3 integrity-only suite": Case(
        lambda: Channel(accepted=with_suites("TLSv1.3", "TLS_SHA256_SHA256")).facts(), {"QMCHAN-008": "fail"}
    ),
    "anonymous NULL suite": Case(
        lambda: Channel(accepted=with_suites("TLSv1.2", "TLS_ECDH_anon_WITH_NULL_SHA")).facts(),
        {"QMCHAN-007": "fail", "QMCHAN-008": "fail"},
    ),
    "NULL_WITH_NULL_NULL": Case(
        lambda: Channel(accepted={"SSLv3": ["TLS_NULL_WITH_NULL_NULL"], **GOOD_SUITES}).facts(),
        {"QMCHAN-007": "fail", "QMCHAN-008": "fail"},
    ),
    "certificate file of the peer": Case(
        lambda: Channel(source="file").facts(), dict.fromkeys(set(RULES) - {"QMCHAN-004"}, "not_applicable")
    ),
    "certificate file of another peer": Case(
        lambda: Channel(source="file", subject="CN=QM2.bank.example,O=Example Bank").facts(),
        dict.fromkeys(set(RULES) - {"QMCHAN-004"}, "not_applicable") | {"QMCHAN-004": "fail"},
    ),
}


def statuses(facts: Facts, params: dict[str, Any]) -> dict[str, str]:
    pack = resolve_pack(PACK, params=params or None)
    return {f.rule: f.status.value for f in evaluate(facts, [pack])}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_rule_statuses(case: Case) -> None:
    """Each fixture gives exactly the expected status for every rule of the pack."""
    assert statuses(case.facts(), case.params) == ALL_PASS | case.expected


def test_every_rule_passes_and_fails_somewhere() -> None:
    """Every rule of the pack has a fixture where it passes and one where it fails."""
    seen: dict[str, set[str]] = {rule: set() for rule in RULES}
    for case in CASES.values():
        for rule, status in (ALL_PASS | case.expected).items():
            seen[rule].add(status)
    assert [r.id for r in resolve_pack(PACK).rules] == RULES
    assert {rule: {"pass", "fail"} <= found for rule, found in seen.items()} == dict.fromkeys(RULES, True)


def test_null_suites_are_named_null_by_the_registry() -> None:
    """The registry spells no-encryption suites' cipher "NULL" and flags anonymous ones, as QMCHAN-007/008 expect."""
    null = to_fact(cipher_suite_by_name("TLS_RSA_WITH_NULL_SHA"))
    anon = to_fact(cipher_suite_by_name("TLS_ECDH_anon_WITH_AES_128_CBC_SHA"))
    assert (null.encryption, null.anonymous, anon.anonymous, anon.authentication) == ("NULL", False, True, "anon")


def test_pack_is_valid(tlsgate) -> None:
    """`tlsgate rules validate` accepts the pack as shipped."""
    run = tlsgate("rules", "validate", PACK)
    assert run.code == 0, run.stderr
    assert run.stdout.strip() == f"OK {PACK} ({PACK}, {len(RULES)} rules)"


# --- real servers on loopback ----------------------------------------------------------------------------------


@dataclass
class QueueManager:
    """A queue manager's listener: openssl s_server with a root -> issuing CA -> QM1 chain whose OCSP and CRL
    URLs point at a loopback responder, requiring a client certificate from its own client CA."""

    port: int
    root: Path
    leaf: Issued
    responder: RevocationServer
    client_cert: Path
    client_key: Path

    def scan(self, tlsgate, report: Path, *extra: str) -> tuple[int, dict[str, dict[str, Any]]]:
        run = tlsgate(
            "scan", f"127.0.0.1:{self.port}", "--pack", PACK, "--client-cert", str(self.client_cert),
            "--client-key", str(self.client_key), "--timeout", "3", "--json", str(report), *extra,
        )  # fmt: skip
        assert run.code in (0, 1), run.stdout + run.stderr
        (target,) = json.loads(report.read_text())["targets"]
        return run.code, {f["rule"]: f for f in target["findings"]}


@pytest.fixture
def queue_manager(tmp_path) -> Iterator[QueueManager]:
    with RevocationServer() as responder:
        root = issue(name("Example Bank Root CA", "Example Bank", country="DE"), ca=True, days=3650)
        issuing = issue(
            name("Example Bank Issuing CA", "Example Bank", country="DE"), issuer=root, ca=True, path_length=0,
            days=1825, ocsp_url=responder.ocsp_url, crl_url=responder.crl_url("root"),
        )  # fmt: skip
        leaf = issue(
            name("QM1.bank.example", "Example Bank", country="DE"), issuer=issuing, key=new_key("rsa2048"), days=365,
            sans=("127.0.0.1",), eku=SERVER_AUTH, ocsp_url=responder.ocsp_url,
            crl_url=responder.crl_url("intermediate"),
        )  # fmt: skip
        responder.add_issuer("root", root)
        responder.add_issuer("intermediate", issuing)
        cert, key = leaf.write(tmp_path, "qm1")
        chain, _ = issuing.write(tmp_path, "issuing")
        root_file, _ = root.write(tmp_path, "root")
        clients = client_pki(tmp_path / "client")
        mtls = ("-Verify", "1", "-verify_return_error", "-CAfile", str(clients.ca))
        with openssl_server(cert, key, *mtls, chain=chain) as port:
            yield QueueManager(port, root_file, leaf, responder, clients.cert, clients.key)


def test_loopback_compliant_channel(tlsgate, queue_manager: QueueManager, tmp_path) -> None:
    """With --ca-file, the peer DN pattern and a good OCSP/CRL answer, every rule passes and the exit code is 0."""
    code, found = queue_manager.scan(
        tlsgate, tmp_path / "r.json", "--ca-file", str(queue_manager.root), "--param",
        f"peer_dn_pattern={PATTERN['peer_dn_pattern']}",
    )  # fmt: skip
    assert (code, {r: f["status"] for r, f in found.items()}) == (0, ALL_PASS)
    assert found["QMCHAN-004"]["evidence"]["observed"] == "CN=QM1.bank.example,O=Example Bank,C=DE"


def test_loopback_revoked_leaf(tlsgate, queue_manager: QueueManager, tmp_path) -> None:
    """A leaf revoked for keyCompromise fails both revocation rules, with the reason in the evidence."""
    queue_manager.responder.revoke(queue_manager.leaf, x509.ReasonFlags.key_compromise)
    code, found = queue_manager.scan(
        tlsgate, tmp_path / "r.json", "--ca-file", str(queue_manager.root), "--param",
        f"peer_dn_pattern={PATTERN['peer_dn_pattern']}",
    )  # fmt: skip
    expected = ALL_PASS | {"QMCHAN-002": "fail", "QMCHAN-003": "fail"}
    assert (code, {r: f["status"] for r, f in found.items()}) == (1, expected)
    revoked = found["QMCHAN-002"]["evidence"]["offending"]
    assert {(r["certificate"], r["source"], r["reason"]) for r in revoked} == {
        (queue_manager.leaf.sha256, "ocsp", "keyCompromise"),
        (queue_manager.leaf.sha256, "crl", "keyCompromise"),
    }


def test_loopback_without_ca_file_or_pattern(tlsgate, queue_manager: QueueManager, tmp_path) -> None:
    """Without --ca-file the chain rule fails, and without peer_dn_pattern the peer-name rule fails, saying why."""
    code, found = queue_manager.scan(tlsgate, tmp_path / "r.json")
    expected = ALL_PASS | {"QMCHAN-001": "fail", "QMCHAN-004": "fail"}
    assert (code, {r: f["status"] for r, f in found.items()}) == (1, expected)
    assert found["QMCHAN-001"]["message"].startswith(
        "certificate.trust: none found where store must match (file|capath|truststore):.+"
    )
    assert "set --param peer_dn_pattern" in found["QMCHAN-004"]["message"]


def test_loopback_anonymous_and_null_suites(tlsgate, tmp_path) -> None:
    """A server that accepts anonymous and NULL suites (and asks for no client certificate) fails those rules."""
    root = issue(name("Example Bank Root CA", "Example Bank"), ca=True, days=3650)
    leaf = issue(
        name("QM9.bank.example", "Example Bank"),
        issuer=root,
        key=new_key("rsa2048"),
        days=365,
        sans=("127.0.0.1",),
        eku=SERVER_AUTH,
    )
    cert, key = leaf.write(tmp_path, "qm9")
    root_file, _ = root.write(tmp_path, "root")
    weak = ("-no_tls1_3", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256:ADH-AES256-GCM-SHA384:NULL-SHA256:@SECLEVEL=0")
    with openssl_server(cert, key, *weak) as port:
        run = tlsgate(
            "scan", f"127.0.0.1:{port}", "--pack", PACK, "--ca-file", str(root_file), "--no-revocation",
            "--param", "peer_dn_pattern=CN=QM9*", "--timeout", "3", "--json", str(tmp_path / "r.json"),
        )  # fmt: skip
    assert run.code == 1, run.stdout + run.stderr
    (target,) = json.loads((tmp_path / "r.json").read_text())["targets"]
    found = {f["rule"]: f for f in target["findings"]}
    assert {r: f["status"] for r, f in found.items()} == ALL_PASS | {
        "QMCHAN-003": "fail", "QMCHAN-005": "fail", "QMCHAN-006": "not_applicable",
        "QMCHAN-007": "fail", "QMCHAN-008": "fail",
    }  # fmt: skip
    assert [s["name"] for s in found["QMCHAN-007"]["evidence"]["offending"]] == ["TLS_DH_anon_WITH_AES_256_GCM_SHA384"]
    assert [s["name"] for s in found["QMCHAN-008"]["evidence"]["offending"]] == ["TLS_RSA_WITH_NULL_SHA256"]
