"""Revocation checks against a loopback OCSP responder and CRL server, with chains served by openssl s_server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID

from scanner.facts import CertificateFacts, RevocationResult
from scanner.probe.pki.fetch import Fetcher
from scanner.probe.pki.ocsp import stapled_ocsp
from scanner.probe.pki.revocation import check_revocation
from tests.helpers import free_port, openssl_server, sslyze_certificate_deployment
from tests.ocsp_crl_server import RevocationServer
from tests.pki import SERVER_AUTH, Issued, issue, name, new_key


@dataclass
class Pki:
    root: Issued
    intermediate: Issued
    leaf: Issued

    @property
    def served(self) -> list[x509.Certificate]:
        """The chain as a server usually sends it: leaf and intermediate, no root."""
        return [self.leaf.cert, self.intermediate.cert]


def make_pki(
    server: RevocationServer | None, prefix: str, *, base: str | None = None, intermediate_key: str = "p256"
) -> Pki:
    """root -> intermediate -> leaf; every certificate below the root names the server's OCSP and CRL URLs."""
    base = base or (server.base if server else "http://127.0.0.1:9")
    root = issue(name(f"{prefix} root CA"), ca=True, days=3650, key=new_key("p384"))
    intermediate = issue(
        name(f"{prefix} intermediate CA"), issuer=root, ca=True, path_length=0, days=1825,
        key=new_key(intermediate_key), ocsp_url=f"{base}/ocsp", crl_url=f"{base}/crl/root.crl",
    )  # fmt: skip
    leaf = issue(
        name("localhost"), issuer=intermediate, days=90, sans=("localhost", "127.0.0.1"), eku=SERVER_AUTH,
        ocsp_url=f"{base}/ocsp", crl_url=f"{base}/crl/intermediate.crl",
    )  # fmt: skip
    if server is not None:
        server.add_issuer("root", root)
        server.add_issuer("intermediate", intermediate)
    return Pki(root, intermediate, leaf)


@pytest.fixture
def responder() -> Iterator[RevocationServer]:
    with RevocationServer() as server:
        yield server


@dataclass
class Scanned:
    chain: list[x509.Certificate]
    stapled: Any  # cryptography OCSPResponse or None, as sslyze hands it over


def sslyze_scan(port: int) -> Scanned:
    """sslyze's certificate scan of 127.0.0.1:port: the chain as received and the stapled OCSP response."""
    deployment = sslyze_certificate_deployment(port)
    return Scanned(list(deployment.received_certificate_chain), deployment.ocsp_response)


def serve_and_scan(directory: Path, pki: Pki, *args: str, with_root: bool = False) -> Scanned:
    """Serve the PKI's leaf with openssl s_server (intermediate, and root if asked, as its chain) and scan it."""
    cert, key = pki.leaf.write(directory, "leaf")
    chain, _ = pki.intermediate.write(directory, "chain", chain=[pki.root] if with_root else None)
    with openssl_server(cert, key, *args, chain=chain) as port:
        return sslyze_scan(port)


def by(results: list[RevocationResult], cert: Issued | x509.Certificate, source: str) -> RevocationResult:
    """The one result for this certificate and source."""
    sha256 = cert.sha256 if isinstance(cert, Issued) else cert.fingerprint(hashes.SHA256()).hex()
    found = [r for r in results if r.certificate == sha256 and r.source == source]
    assert len(found) == 1, found
    return found[0]


def test_good_leaf_through_a_real_server(responder: RevocationServer, tmp_path: Path) -> None:
    """A leaf nobody revoked, scanned from a real server, is good by OCSP and by CRL, as the facts record."""
    pki = make_pki(responder, "good")
    scanned = serve_and_scan(tmp_path, pki)
    assert [c.serial_number for c in scanned.chain] == [
        pki.leaf.cert.serial_number,
        pki.intermediate.cert.serial_number,
    ]

    results = check_revocation(scanned.chain, Fetcher(5), issuers=[pki.root.cert])
    for source in ("ocsp", "crl"):
        result = by(results, pki.leaf, source)
        assert (result.status, result.revoked_at, result.reason, result.detail) == ("good", None, None, None)
        assert result.subject == "CN=localhost,O=tlsgate tests"
    assert by(results, pki.leaf, "ocsp").url == responder.ocsp_url
    assert by(results, pki.leaf, "crl").url == responder.crl_url("intermediate")
    assert by(results, pki.intermediate, "ocsp").status == "good"
    assert by(results, pki.intermediate, "crl").status == "good"
    facts = CertificateFacts(status="ok", revocation=results).model_dump(mode="json")
    assert {r["status"] for r in facts["revocation"]} == {"good"}


def test_revoked_leaf_through_a_real_server(responder: RevocationServer, tmp_path: Path) -> None:
    """A leaf revoked for keyCompromise is revoked by both OCSP and CRL, each with the reason and the time."""
    pki = make_pki(responder, "revoked")
    when = responder.revoke(pki.leaf, x509.ReasonFlags.key_compromise)
    scanned = serve_and_scan(tmp_path, pki)

    results = check_revocation(scanned.chain, Fetcher(5), issuers=[pki.root.cert])
    for source in ("ocsp", "crl"):
        result = by(results, pki.leaf, source)
        assert (result.status, result.reason, result.revoked_at) == ("revoked", "keyCompromise", when)
    assert by(results, pki.intermediate, "crl").status == "good"
    facts = CertificateFacts(status="ok", revocation=results).model_dump(mode="json")
    leaf_entries = [r for r in facts["revocation"] if r["certificate"] == pki.leaf.sha256]
    assert [(r["source"], r["status"], r["reason"]) for r in leaf_entries] == [
        ("ocsp", "revoked", "keyCompromise"),
        ("crl", "revoked", "keyCompromise"),
    ]
    assert leaf_entries[0]["revoked_at"].startswith(when.strftime("%Y-%m-%dT%H:%M:%S"))


def test_intermediate_revoked_in_the_root_crl(responder: RevocationServer, tmp_path: Path) -> None:
    """An intermediate the root revoked (cACompromise) shows as revoked when the server sends the whole chain."""
    pki = make_pki(responder, "intermediate")
    when = responder.revoke(pki.intermediate, x509.ReasonFlags.ca_compromise)
    scanned = serve_and_scan(tmp_path, pki, with_root=True)
    assert len(scanned.chain) == 3

    results = check_revocation(scanned.chain, Fetcher(5))
    crl = by(results, pki.intermediate, "crl")
    assert (crl.status, crl.reason, crl.revoked_at, crl.url) == (
        "revoked",
        "cACompromise",
        when,
        responder.crl_url("root"),
    )
    assert by(results, pki.intermediate, "ocsp").status == "revoked"
    assert by(results, pki.leaf, "crl").status == "good"
    assert not [r for r in results if r.certificate == pki.root.sha256], "a self-signed root is not checked"


def test_issuer_not_available(responder: RevocationServer) -> None:
    """Without its issuer a certificate is not_checked ("issuer not available"); given the anchor, it is checked."""
    pki = make_pki(responder, "noissuer")
    alone = check_revocation([pki.leaf.cert], Fetcher(5))
    assert {(r.source, r.status, r.detail) for r in alone} == {
        ("ocsp", "not_checked", "issuer not available"),
        ("crl", "not_checked", "issuer not available"),
    }
    served = check_revocation(pki.served, Fetcher(5))
    assert by(served, pki.intermediate, "crl").detail == "issuer not available"
    anchored = check_revocation(pki.served, Fetcher(5), issuers=[pki.root.cert])
    assert by(anchored, pki.intermediate, "crl").status == "good"
    assert responder.count("ocsp") + responder.count("crl") == 2 + 4  # the leaf alone, then the whole chain


def test_no_urls_is_not_checked() -> None:
    """A certificate without AIA OCSP or CRL distribution point says so rather than passing silently."""
    root = issue(name("bare root CA"), ca=True)
    leaf = issue(name("localhost"), issuer=root, eku=SERVER_AUTH)
    results = check_revocation([leaf.cert, root.cert], Fetcher(5))
    assert [(r.source, r.status, r.detail) for r in results] == [
        ("ocsp", "not_checked", "no OCSP URL"),
        ("crl", "not_checked", "no CRL distribution point"),
    ]


def test_unknown_serial_at_ocsp(responder: RevocationServer) -> None:
    """A serial the responder does not know is unknown by OCSP, while the CRL still says good."""
    pki = make_pki(responder, "unknown")
    responder.forget(pki.leaf)
    results = check_revocation(pki.served, Fetcher(5), issuers=[pki.root.cert])
    ocsp = by(results, pki.leaf, "ocsp")
    assert (ocsp.status, ocsp.detail) == ("unknown", "the responder does not know this certificate")
    assert by(results, pki.leaf, "crl").status == "good"


@pytest.mark.parametrize("failure", ["down", "timeout", "http_500"])
def test_unreachable_responder_is_an_error(responder: RevocationServer, failure: str) -> None:
    """A responder that is down, too slow or failing gives status error with what happened, never good."""
    base = f"http://127.0.0.1:{free_port()}" if failure == "down" else None
    pki = make_pki(responder, f"fail-{failure}", base=base)
    if failure == "timeout":
        responder.delay = 5
    if failure == "http_500":
        responder.fail = {"/ocsp": 500, "/crl/intermediate.crl": 500, "/crl/root.crl": 500}
    results = check_revocation(pki.served, Fetcher(0.5), issuers=[pki.root.cert])
    assert {r.status for r in results} == {"error"}
    expected = {"down": "cannot connect", "timeout": "timeout after 0.5s", "http_500": "HTTP 500"}[failure]
    for result in results:
        assert result.detail is not None
        assert expected in result.detail
        assert result.url is not None


def test_offline_mode_checks_nothing(responder: RevocationServer) -> None:
    """In offline mode every live source is not_checked ("offline mode") and no request goes out."""
    pki = make_pki(responder, "offline")
    responder.revoke(pki.leaf)
    results = check_revocation(pki.served, Fetcher(5, offline=True), issuers=[pki.root.cert])
    assert len(results) == 4
    assert {(r.status, r.detail) for r in results} == {("not_checked", "offline mode")}
    assert responder.count("ocsp") + responder.count("crl") == 0


def test_second_check_in_a_run_is_served_from_cache(responder: RevocationServer) -> None:
    """Checking the same chain twice with one Fetcher fetches each OCSP answer and CRL once."""
    pki = make_pki(responder, "cache")
    fetcher = Fetcher(5)
    first = check_revocation(pki.served, fetcher, issuers=[pki.root.cert])
    counts = (responder.count("ocsp"), responder.count("crl"))
    assert counts == (2, 2)
    second = check_revocation(pki.served, fetcher, issuers=[pki.root.cert])
    assert (responder.count("ocsp"), responder.count("crl")) == counts
    assert second == first


def test_stapled_good_response(responder: RevocationServer, tmp_path: Path) -> None:
    """A good response stapled by s_server -status_file is parsed with its produced_at, this_update, next_update."""
    pki = make_pki(responder, "stapled")
    status_file = tmp_path / "status.der"
    status_file.write_bytes(responder.ocsp_response(pki.leaf.cert))
    scanned = serve_and_scan(tmp_path, pki, "-status_file", str(status_file))
    assert scanned.stapled is not None, "s_server stapled nothing"

    stapled = stapled_ocsp(scanned.stapled, scanned.chain[0], scanned.chain[1])
    assert stapled.status == "ok"
    assert stapled.value is not None
    now = dt.datetime.now(dt.UTC)
    assert stapled.value.status == "good"
    assert stapled.value.produced_at is not None
    assert abs(stapled.value.produced_at - now) < dt.timedelta(minutes=1)
    assert stapled.value.next_update is not None
    assert stapled.value.next_update > now + dt.timedelta(hours=23)
    assert stapled.value.this_update is not None
    assert stapled.value.this_update < now
    assert stapled_ocsp(status_file.read_bytes(), pki.leaf.cert, pki.intermediate.cert) == stapled  # DER too

    results = check_revocation(scanned.chain, Fetcher(5, offline=True), stapled=stapled)
    assert by(results, pki.leaf, "stapled_ocsp").status == "good"
    assert CertificateFacts(status="ok", ocsp_stapled=stapled, revocation=results).model_dump(mode="json")


def test_stale_stapled_response_is_flagged(responder: RevocationServer, tmp_path: Path) -> None:
    """A stapled response whose next_update has passed keeps its dates in the facts and is judged unknown (stale)."""
    pki = make_pki(responder, "stale")
    status_file = tmp_path / "status.der"
    validity = (dt.timedelta(days=-3), dt.timedelta(days=-1))
    status_file.write_bytes(responder.ocsp_response(pki.leaf.cert, validity=validity))
    scanned = serve_and_scan(tmp_path, pki, "-status_file", str(status_file))

    stapled = stapled_ocsp(scanned.stapled, scanned.chain[0], scanned.chain[1])
    assert stapled.value is not None
    assert stapled.value.next_update is not None
    assert stapled.value.next_update < dt.datetime.now(dt.UTC)
    result = by(check_revocation(scanned.chain, Fetcher(5), stapled=stapled), pki.leaf, "stapled_ocsp")
    assert result.status == "unknown"
    assert result.detail is not None
    assert result.detail.startswith("stale OCSP response: its nextUpdate")
    assert result.detail.endswith("(it said: good)")


def test_no_stapled_response(responder: RevocationServer) -> None:
    """No stapled response is observed as "none" and reported as not_checked for the stapled source."""
    pki = make_pki(responder, "nostaple")
    stapled = stapled_ocsp(None, pki.leaf.cert, pki.intermediate.cert)
    assert (stapled.status, stapled.value) == ("ok", None)
    result = by(check_revocation(pki.served, Fetcher(offline=True), stapled=stapled), pki.leaf, "stapled_ocsp")
    assert (result.status, result.detail) == ("not_checked", "no OCSP response stapled")


def test_unusable_stapled_responses_are_errors(responder: RevocationServer) -> None:
    """Garbage, a response about another certificate, or one signed by a stranger is an error with its reason."""
    pki = make_pki(responder, "badstaple")
    other = make_pki(None, "other")
    garbage = stapled_ocsp(b"\x30\x03\x0a\x01", pki.leaf.cert, pki.intermediate.cert)
    assert garbage.status == "error"
    assert garbage.error is not None
    assert "unparseable OCSP response" in garbage.error.message

    about_intermediate = responder.ocsp_response(pki.intermediate.cert)
    wrong_cert = stapled_ocsp(about_intermediate, pki.leaf.cert, pki.intermediate.cert)
    assert wrong_cert.error is not None
    assert "not about this certificate" in wrong_cert.error.message

    responder.signer_key = other.intermediate.key
    forged = stapled_ocsp(responder.ocsp_response(pki.leaf.cert), pki.leaf.cert, pki.intermediate.cert)
    assert forged.error is not None
    assert "signature does not verify" in forged.error.message
    result = by(check_revocation(pki.served, Fetcher(offline=True), stapled=forged), pki.leaf, "stapled_ocsp")
    assert result.status == "error"


def test_forged_live_answers_are_errors(responder: RevocationServer) -> None:
    """An OCSP response or CRL signed with a key that is not the issuer's is an error, not an answer."""
    pki = make_pki(responder, "forged")
    responder.signer_key = new_key()
    results = check_revocation(pki.served, Fetcher(5), issuers=[pki.root.cert])
    ocsp = by(results, pki.leaf, "ocsp")
    crl = by(results, pki.leaf, "crl")
    assert ocsp.status == crl.status == "error"
    assert ocsp.detail == "the OCSP response signature does not verify with the key of " + (
        "CN=forged intermediate CA,O=tlsgate tests"
    )
    assert crl.detail == "the CRL signature does not verify with the key of CN=forged intermediate CA,O=tlsgate tests"


def _delegate(issuer: Issued, *, ocsp_signing: bool) -> Issued:
    eku = [ExtendedKeyUsageOID.OCSP_SIGNING] if ocsp_signing else [ExtendedKeyUsageOID.SERVER_AUTH]
    return issue(name("delegated OCSP responder"), issuer=issuer, eku=eku, days=30)


def test_delegated_responder(responder: RevocationServer) -> None:
    """A responder certificate with OCSPSigning issued by the issuer may sign; one without that EKU may not."""
    pki = make_pki(responder, "delegated")
    responder.revoke(pki.leaf, x509.ReasonFlags.superseded)
    responder.responder = _delegate(pki.intermediate, ocsp_signing=True)
    result = by(check_revocation(pki.served, Fetcher(5)), pki.leaf, "ocsp")
    assert (result.status, result.reason) == ("revoked", "superseded")

    responder.responder = _delegate(pki.intermediate, ocsp_signing=False)
    result = by(check_revocation(pki.served, Fetcher(5)), pki.leaf, "ocsp")
    assert result.status == "error"
    assert result.detail == (
        "the OCSP responder certificate CN=delegated OCSP responder,O=tlsgate tests"
        " has no OCSPSigning extended key usage"
    )

    responder.responder = _delegate(make_pki(None, "stranger").intermediate, ocsp_signing=True)
    result = by(check_revocation(pki.served, Fetcher(5)), pki.leaf, "ocsp")
    assert result.detail is not None
    assert "is not issued by the certificate's issuer" in result.detail


def test_stale_live_answers(responder: RevocationServer) -> None:
    """A stale good answer is unknown; a stale revoked one stays revoked (revocation is permanent), unless on hold."""
    pki = make_pki(responder, "stalelive")
    responder.validity = (dt.timedelta(days=-3), dt.timedelta(days=-1))
    responder.revoke(pki.intermediate, x509.ReasonFlags.cessation_of_operation)
    responder.revoke(pki.leaf, x509.ReasonFlags.certificate_hold)
    results = check_revocation(pki.served, Fetcher(5), issuers=[pki.root.cert])
    intermediate = by(results, pki.intermediate, "crl")
    assert (intermediate.status, intermediate.reason) == ("revoked", "cessationOfOperation")
    assert intermediate.detail is not None
    assert intermediate.detail.startswith("stale CRL: its nextUpdate")
    assert intermediate.detail.endswith("revocation is permanent")
    on_hold = by(results, pki.leaf, "ocsp")
    assert on_hold.status == "unknown"
    assert on_hold.detail is not None
    assert "on hold" in on_hold.detail

    responder.validity = (dt.timedelta(days=1), dt.timedelta(days=2))  # thisUpdate in the future
    future = by(check_revocation([pki.root.cert, pki.intermediate.cert], Fetcher(5)), pki.intermediate, "ocsp")
    assert future.status == "revoked"
    assert future.detail is not None
    assert "thisUpdate" in future.detail


def test_pem_crl_and_nonce(responder: RevocationServer) -> None:
    """A CRL served as PEM is read like DER, and an OCSP nonce echoed by the responder is accepted."""
    pki = make_pki(responder, "pem")
    responder.crl_pem = True
    responder.revoke(pki.leaf, None)
    results = check_revocation(pki.served, Fetcher(5), issuers=[pki.root.cert], ocsp_nonce=True)
    crl = by(results, pki.leaf, "crl")
    assert (crl.status, crl.reason) == ("revoked", None)
    assert by(results, pki.leaf, "ocsp").status == "revoked"
    check_revocation(pki.served, Fetcher(5), issuers=[pki.root.cert], ocsp_nonce=True)
    assert responder.count("ocsp") == 4, "a nonce makes every OCSP request new"


@pytest.mark.parametrize("key", ["rsa2048", "p384", "ed25519"])
def test_issuer_key_types(responder: RevocationServer, key: str) -> None:
    """OCSP responses and CRLs signed with RSA, ECDSA and Ed25519 issuer keys are all verified and read."""
    pki = make_pki(responder, f"keys-{key}", intermediate_key=key)
    when = responder.revoke(pki.leaf, x509.ReasonFlags.affiliation_changed)
    results = check_revocation(pki.served, Fetcher(5), issuers=[pki.root.cert])
    for source in ("ocsp", "crl"):
        result = by(results, pki.leaf, source)
        assert (result.status, result.reason, result.revoked_at) == ("revoked", "affiliationChanged", when)
