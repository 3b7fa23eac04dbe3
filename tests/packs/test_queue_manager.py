"""The queue-manager-channel pack: each rule passing and failing on built facts, then against real servers with a
loopback OCSP responder and CRL server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from scanner.facts import CertificateFacts, ClientAuthEnforcement, Facts, RevocationResult, TrustResult, observed
from scanner.probe.iana import cipher_suite_by_name, to_fact
from tests.helpers import client_pki, openssl_server
from tests.ocsp_crl_server import RevocationServer
from tests.packs import harness
from tests.packs.harness import Case, case_test, coverage_test, scan, statuses, validate_test
from tests.pki import SERVER_AUTH, Issued, issue, name, new_key

PACK = "queue-manager-channel"
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
    refused_at: ClientAuthEnforcement | None = None  # where both clients were refused, when not as the TLS level says
    source: str = "network"

    def facts(self) -> Facts:
        leaf = harness.certificate(self.subject, issuer=ISSUER_DN, sha256=LEAF_SHA, serial="1001", days=365)
        issuer = harness.certificate(
            ISSUER_DN, issuer="CN=Example Bank Root CA", sha256=ISSUER_SHA, serial="1001", days=365
        )
        chain = [leaf, issuer]
        at = harness.target("qm1.bank.example", 1414, "192.0.2.14", source=self.source)
        if self.source == "file":
            return harness.scanned(at, certificate=CertificateFacts(status="ok", leaf=leaf, chain=chain))
        return harness.scanned(
            at, protocols=harness.protocols(self.accepted),
            certificate=CertificateFacts(
                status="ok", leaf=leaf, chain=chain, trust=list(self.trust), revocation=list(self.revocation),
                hostname_match=observed(True),
            ),
            client_auth=harness.client_auth(
                self.requirement, self.throwaway, enforcement=self.refused_at, untrusted=self.refused_at
            ),
        )  # fmt: skip


def case(name: str, channel: Channel, expected: dict[str, str], params: dict[str, Any] | None = None) -> Case:
    return Case(name, PACK, channel.facts, expected, PATTERN if params is None else params)


def with_suites(version: str, *names: str) -> dict[str, list[str]]:
    return GOOD_SUITES | {version: GOOD_SUITES[version] + list(names)}


def leaf_results(*statuses: tuple[str, str]) -> tuple[RevocationResult, ...]:
    """The issuer's results stay good; the leaf's are (source, status) as given."""
    return tuple(r for r in GOOD_REVOCATION if r.subject == ISSUER_DN) + tuple(
        revocation(LEAF_DN, source, status) for source, status in statuses
    )


def leaf_case(name: str, expected: dict[str, str], *statuses: tuple[str, str]) -> Case:
    """A channel whose leaf has these (source, status) revocation results, the issuer's staying good."""
    return case(name, Channel(revocation=leaf_results(*statuses)), expected)


def suite_case(name: str, version: str, suite: str, expected: dict[str, str]) -> Case:
    """A channel that also accepts ``suite`` with ``version``."""
    return case(name, Channel(accepted=with_suites(version, suite)), expected)


CASES = [
    case("compliant channel", Channel(), {}),
    case(
        "trusted by a CA directory",
        Channel(trust=(MOZILLA, TrustResult(store="capath:/var/mqm/ca.d", trusted=True))),
        {},
    ),
    case(
        "trusted by a PKCS#12 truststore",
        Channel(trust=(MOZILLA, TrustResult(store="truststore:/var/mqm/key.p12", trusted=True))),
        {},
    ),
    case("scanned without --ca-file", Channel(trust=(MOZILLA,)), {"QMCHAN-001": "fail"}),
    case(
        "trusted by a public root only",
        Channel(trust=(TrustResult(store="mozilla", trusted=True),)),
        {"QMCHAN-001": "fail"},
    ),
    case("pinned only", Channel(trust=(MOZILLA, TrustResult(store="pin", trusted=True))), {"QMCHAN-001": "fail"}),
    case(
        "not from the given CA",
        Channel(trust=(MOZILLA, TrustResult(store="file:/var/mqm/ca.pem", trusted=False, reason="unknown_issuer"))),
        {"QMCHAN-001": "fail"},
    ),
    case(
        "intermediate fetched from AIA",
        Channel(trust=(MOZILLA, TrustResult(store="file:/var/mqm/ca.pem", trusted=True, completed_via_aia=True))),
        {"QMCHAN-001": "fail"},
    ),
    case(
        "one of two CA files",
        Channel(
            trust=(MOZILLA, TrustResult(store="file:/old-ca.pem", trusted=False, reason="unknown_issuer"), CA_FILE)
        ),
        {},
    ),
    leaf_case("leaf revoked", {"QMCHAN-002": "fail", "QMCHAN-003": "fail"}, ("ocsp", "revoked"), ("crl", "revoked")),
    case(
        "intermediate revoked",
        Channel(revocation=(*leaf_results(("ocsp", "good")), revocation(ISSUER_DN, "crl", "revoked"))),
        {"QMCHAN-002": "fail"},
    ),
    leaf_case("leaf good by OCSP, unknown by CRL", {}, ("ocsp", "good"), ("crl", "unknown")),
    leaf_case("leaf good by a stapled response only", {}, ("stapled_ocsp", "good"), ("ocsp", "not_checked")),
    leaf_case(
        "revocation not checked (--offline)", {"QMCHAN-003": "fail"}, ("ocsp", "not_checked"), ("crl", "not_checked")
    ),
    leaf_case("leaf without OCSP or CRL URL", {"QMCHAN-003": "fail"}),
    # a source that failed is a result like any other: the OCSP answer still decides
    leaf_case("leaf CRL unreachable", {}, ("ocsp", "good"), ("crl", "error")),
    leaf_case(
        "leaf CRL unreachable, OCSP says revoked",
        {"QMCHAN-002": "fail", "QMCHAN-003": "fail"},
        ("ocsp", "revoked"),
        ("crl", "error"),
    ),
    # revocation results carry a leaf marker, so the DN rule alone judges another queue manager's certificate
    case(
        "another queue manager's certificate",
        Channel(
            subject="CN=QM2.bank.example,O=Example Bank,C=DE",
            revocation=(
                revocation("CN=QM2.bank.example,O=Example Bank,C=DE", "ocsp", "good", LEAF_SHA),
                *GOOD_REVOCATION[2:],
            ),
        ),
        {"QMCHAN-004": "fail"},
    ),
    case("peer DN pattern not set", Channel(), {"QMCHAN-004": "fail"}, params={}),
    case("client certificate optional", Channel(requirement="optional"), {"QMCHAN-005": "fail"}),
    case(
        "client certificate not requested",
        Channel(requirement="not_requested"),
        {"QMCHAN-005": "fail", "QMCHAN-006": "not_applicable"},
    ),
    case(
        "client certificate optional by parameter (SSLCAUTH(OPTIONAL))",
        Channel(requirement="optional", throwaway=True),
        {"QMCHAN-005": "not_applicable", "QMCHAN-006": "not_applicable"},
        params=PATTERN | {"require_client_certificate": False},
    ),
    case("throwaway client certificate accepted", Channel(throwaway=True), {"QMCHAN-006": "fail"}),
    # an HTTP front end that lets any client through the handshake and refuses the request (403) afterwards
    case(
        "refused after the handshake",
        Channel(requirement="optional", throwaway=True, refused_at=harness.enforced("application", "HTTP/1.1 403")),
        {"QMCHAN-005": "fail", "QMCHAN-006": "fail"},
    ),
    case(
        "refused after the handshake, which the parameter accepts",
        Channel(requirement="optional", throwaway=True, refused_at=harness.enforced("application", "HTTP/1.1 403")),
        {},
        params=PATTERN | {"client_certificate_enforced_at": ["handshake", "application"]},
    ),
    case(
        "client certificate optional on a channel (not HTTP), application enforcement accepted",
        Channel(requirement="optional", throwaway=True),
        {"QMCHAN-005": "fail", "QMCHAN-006": "fail"},
        params=PATTERN | {"client_certificate_enforced_at": ["handshake", "application"]},
    ),
    suite_case("anonymous DH suite", "TLSv1.2", "TLS_DH_anon_WITH_AES_256_GCM_SHA384", {"QMCHAN-007": "fail"}),
    suite_case("NULL encryption suite", "TLSv1.2", "TLS_RSA_WITH_NULL_SHA256", {"QMCHAN-008": "fail"}),
    suite_case("TLS 1.3 integrity-only suite", "TLSv1.3", "TLS_SHA256_SHA256", {"QMCHAN-008": "fail"}),
    suite_case(
        "anonymous NULL suite", "TLSv1.2", "TLS_ECDH_anon_WITH_NULL_SHA", {"QMCHAN-007": "fail", "QMCHAN-008": "fail"}
    ),
    case(
        "NULL_WITH_NULL_NULL",
        Channel(accepted={"SSLv3": ["TLS_NULL_WITH_NULL_NULL"], **GOOD_SUITES}),
        {"QMCHAN-007": "fail", "QMCHAN-008": "fail"},
    ),
    case(
        "certificate file of the peer",
        Channel(source="file"),
        dict.fromkeys(set(RULES) - {"QMCHAN-004"}, "not_applicable"),
    ),
    case(
        "certificate file of another peer",
        Channel(source="file", subject="CN=QM2.bank.example,O=Example Bank"),
        dict.fromkeys(set(RULES) - {"QMCHAN-004"}, "not_applicable") | {"QMCHAN-004": "fail"},
    ),
]

test_rule_statuses = case_test(CASES)
test_every_rule_passes_and_fails_somewhere = coverage_test(CASES, {PACK: RULES})
test_pack_is_valid = validate_test(PACK, len(RULES))


def test_null_suites_are_named_null_by_the_registry() -> None:
    """The registry spells no-encryption suites' cipher "NULL" and flags anonymous ones, as QMCHAN-007/008 expect."""
    null = to_fact(cipher_suite_by_name("TLS_RSA_WITH_NULL_SHA"))
    anon = to_fact(cipher_suite_by_name("TLS_ECDH_anon_WITH_AES_128_CBC_SHA"))
    assert (null.encryption, null.anonymous, anon.anonymous, anon.authentication) == ("NULL", False, True, "anon")


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
        return scan(
            tlsgate, f"127.0.0.1:{self.port}", report, "--pack", PACK, "--client-cert", str(self.client_cert),
            "--client-key", str(self.client_key), *extra,
        )  # fmt: skip


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
    assert (code, statuses(found)) == (0, ALL_PASS)
    assert found["QMCHAN-004"]["evidence"]["observed"] == "CN=QM1.bank.example,O=Example Bank,C=DE"


def test_loopback_revoked_leaf(tlsgate, queue_manager: QueueManager, tmp_path) -> None:
    """A leaf revoked for keyCompromise fails both revocation rules, with the reason in the evidence."""
    queue_manager.responder.revoke(queue_manager.leaf, x509.ReasonFlags.key_compromise)
    code, found = queue_manager.scan(
        tlsgate, tmp_path / "r.json", "--ca-file", str(queue_manager.root), "--param",
        f"peer_dn_pattern={PATTERN['peer_dn_pattern']}",
    )  # fmt: skip
    expected = ALL_PASS | {"QMCHAN-002": "fail", "QMCHAN-003": "fail"}
    assert (code, statuses(found)) == (1, expected)
    revoked = found["QMCHAN-002"]["evidence"]["offending"]
    assert {(r["certificate"], r["source"], r["reason"]) for r in revoked} == {
        (queue_manager.leaf.sha256, "ocsp", "keyCompromise"),
        (queue_manager.leaf.sha256, "crl", "keyCompromise"),
    }


def test_loopback_without_ca_file_or_pattern(tlsgate, queue_manager: QueueManager, tmp_path) -> None:
    """Without --ca-file the chain rule fails, and without peer_dn_pattern the peer-name rule fails, saying why."""
    code, found = queue_manager.scan(tlsgate, tmp_path / "r.json")
    expected = ALL_PASS | {"QMCHAN-001": "fail", "QMCHAN-004": "fail"}
    assert (code, statuses(found)) == (1, expected)
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
        code, found = scan(
            tlsgate, f"127.0.0.1:{port}", tmp_path / "r.json", "--pack", PACK, "--ca-file", str(root_file),
            "--no-revocation", "--param", "peer_dn_pattern=CN=QM9*",
        )  # fmt: skip
    assert code == 1
    assert statuses(found) == ALL_PASS | {
        "QMCHAN-003": "fail", "QMCHAN-005": "fail", "QMCHAN-006": "not_applicable",
        "QMCHAN-007": "fail", "QMCHAN-008": "fail",
    }  # fmt: skip
    assert [s["name"] for s in found["QMCHAN-007"]["evidence"]["offending"]] == ["TLS_DH_anon_WITH_AES_256_GCM_SHA384"]
    assert [s["name"] for s in found["QMCHAN-008"]["evidence"]["offending"]] == ["TLS_RSA_WITH_NULL_SHA256"]
