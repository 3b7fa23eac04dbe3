"""The pinned-peer pack: each rule passing and failing on built facts, then the pack against real TLS servers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from scanner.facts import CertificateFacts, ErrorClass, Facts, observed, unobserved
from tests.helpers import ServerFiles, openssl_server
from tests.packs import harness
from tests.packs.harness import FAIL, NA, Case, case_test, cert, coverage_test, scan, statuses, validate_test
from tests.pki import SERVER_AUTH, issue, name, new_key

PACK = "pinned-peer"
OLD, NEW, OTHER = "1f" * 32, "2e" * 32, "3d" * 32  # the current pin, the next one of a rotation, a stranger
RULES = ["PINNED-001", "PINNED-002", "PINNED-003", "PINNED-004"]
ALL_PASS = dict.fromkeys(RULES, "pass")
SUITES = {"TLSv1.3": "TLS_AES_256_GCM_SHA384", "TLSv1.2": "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"}


@dataclass(frozen=True)
class Peer:
    """What a scan of the peer observes; the defaults pass every rule when OLD is pinned."""

    sha256: str = OLD
    accepted: tuple[str, ...] = ("TLSv1.3",)
    hostname_match: Any = field(default_factory=lambda: observed(True))
    certificate_error: str | None = None
    source: str = "network"

    def facts(self) -> Facts:
        leaf = harness.certificate(
            "CN=plc-17.plant.example", key=("RSA", 4096), days=730, sha256=self.sha256,
            subject_alt_names=["DNS:plc-17.plant.example"],
        )  # fmt: skip
        if self.certificate_error:
            cert = harness.certificate_error(self.certificate_error)
        elif self.source == "file":
            cert = CertificateFacts(status="ok", leaf=leaf, chain=[leaf])
        else:
            cert = CertificateFacts(status="ok", leaf=leaf, chain=[leaf], hostname_match=self.hostname_match)
        accepted = {version: [SUITES[version]] for version in self.accepted}
        return harness.scanned(
            harness.target("plc-17.plant.example", 4840, "192.0.2.17", source=self.source),
            protocols=harness.protocols(accepted) if self.source == "network" else [],
            certificate=cert,
        )


PINS = {"pinned_sha256": [OLD, NEW]}


def case(name: str, peer: Peer, expected: dict[str, str], params: dict[str, Any] = PINS, **checks: Any) -> Case:
    return Case(name, PACK, peer.facts, expected, params, **checks)


CASES = [
    case("pinned certificate", Peer(), {}),
    case("next certificate of a rotation", Peer(sha256=NEW), {}),
    case("single pin", Peer(), {}, {"pinned_sha256": [OLD]}),
    case("certificate not pinned", Peer(sha256=OTHER), {"PINNED-003": FAIL}),
    # an empty pin list (the default) accepts nothing: a run without pins can never pass
    case("no pins given", Peer(), {"PINNED-003": FAIL}, {}),
    # ... and says so: the message shows the empty list, not a silent pass
    case("no pins given says so", Peer(), {"PINNED-003": FAIL}, {},
         messages={"PINNED-003": f"certificate.leaf.sha256 = {OLD}, must be one of []"}),
    case("empty pin list given", Peer(), {"PINNED-003": FAIL}, {"pinned_sha256": []}),
    # fingerprints are compared as certificate.leaf.sha256 reports them: lower-case hex
    case("upper-case pin", Peer(), {"PINNED-003": FAIL}, {"pinned_sha256": [OLD.upper()]}),
    case("TLS 1.2 accepted too", Peer(accepted=("TLSv1.2", "TLSv1.3")), {"PINNED-001": FAIL}),
    case("TLS 1.2 only", Peer(accepted=("TLSv1.2",)), {"PINNED-001": FAIL, "PINNED-002": FAIL}),
    case("name mismatch", Peer(hostname_match=observed(False)), {"PINNED-004": FAIL}),
    case("name mismatch without host-name checks", Peer(hostname_match=observed(False)), {"PINNED-004": NA},
         {**PINS, "check_hostname": False}),
    case("name match not observed", Peer(hostname_match=unobserved(ErrorClass.probe_failed, "no name")),
         {"PINNED-004": "error"}),
    case("certificate not observed", Peer(certificate_error="handshake failure"),
         {"PINNED-003": "error", "PINNED-004": "error"}),
    case("pinned certificate file", Peer(source="file"),
         {"PINNED-001": NA, "PINNED-002": NA, "PINNED-004": NA}),
]  # fmt: skip

test_rule_statuses = case_test(CASES)
test_every_rule_passes_and_fails_somewhere = coverage_test(CASES, {PACK: RULES})
test_pack_is_valid = validate_test(PACK, len(RULES))


# --- real servers on loopback ----------------------------------------------------------------------------------


def fingerprint(pem: Path) -> str:
    return x509.load_pem_x509_certificates(pem.read_bytes())[0].fingerprint(hashes.SHA256()).hex()


def scan_pinned(tlsgate, port: int, report: Path, *params: str) -> tuple[int, dict[str, dict[str, Any]]]:
    return scan(tlsgate, f"127.0.0.1:{port}", report, "--pack", PACK, *[a for p in params for a in ("--param", p)])


def test_loopback_pinned_and_not_pinned(tlsgate, tls13_server, pki: ServerFiles, tmp_path) -> None:
    """A TLS 1.3 server passes with its certificate among two pins, and fails the pin rule without pins or with
    another pin only."""
    served = fingerprint(pki.cert)
    code, found = scan_pinned(
        tlsgate, tls13_server.port, tmp_path / "pinned.json", f"pinned_sha256=[{OTHER}, {served}]"
    )
    assert (code, statuses(found)) == (0, ALL_PASS)
    assert found["PINNED-003"]["evidence"]["observed"] == served

    code, found = scan_pinned(tlsgate, tls13_server.port, tmp_path / "none.json")
    assert (code, statuses(found)) == (1, ALL_PASS | {"PINNED-003": "fail"})
    assert found["PINNED-003"]["message"].endswith("must be one of []")

    code, found = scan_pinned(tlsgate, tls13_server.port, tmp_path / "other.json", f"pinned_sha256=[{OTHER}]")
    assert (code, found["PINNED-003"]["status"]) == (1, "fail")


def test_loopback_older_versions_fail_even_when_pinned(tlsgate, tls12_13_server, pki: ServerFiles, tmp_path) -> None:
    """A pinned server that also accepts TLS 1.2 fails the version rule and nothing else."""
    code, found = scan_pinned(
        tlsgate, tls12_13_server.port, tmp_path / "r.json", f"pinned_sha256=[{fingerprint(pki.cert)}]"
    )
    assert (code, statuses(found)) == (1, ALL_PASS | {"PINNED-001": "fail"})


def test_loopback_hostname_toggle(tlsgate, tmp_path) -> None:
    """A pinned self-signed certificate for another name fails the host-name rule unless check_hostname is false."""
    device = issue(name("plc-17.plant.example"), key=new_key("rsa4096"), days=730, sans=("plc-17.plant.example",))
    cert, key = device.write(tmp_path, "device")
    pin = f"pinned_sha256=[{device.sha256}]"
    with openssl_server(cert, key, "-tls1_3") as port:
        checked = scan_pinned(tlsgate, port, tmp_path / "checked.json", pin)
        unchecked = scan_pinned(tlsgate, port, tmp_path / "unchecked.json", pin, "check_hostname=false")
    code, found = checked
    assert (code, statuses(found)) == (1, ALL_PASS | {"PINNED-004": "fail"})
    assert found["PINNED-004"]["evidence"]["observed"] is False
    code, found = unchecked
    assert (code, statuses(found)) == (0, ALL_PASS | {"PINNED-004": "not_applicable"})
    assert found["PINNED-004"]["message"] == "applies only when parameter check_hostname equals True"


def test_pinned_certificate_file(tlsgate, tmp_path) -> None:
    """`tlsgate cert` tells whether a certificate file is one of the pins, before it is deployed."""
    device = issue(name("localhost"), days=90, sans=("localhost",), eku=SERVER_AUTH)
    path, _ = device.write(tmp_path, "device")
    pin = f"pinned_sha256=[{device.sha256}]"
    code, found = cert(tlsgate, path, tmp_path / "r.json", "--pack", PACK, "--param", pin)
    assert (code, statuses(found)) == (0, dict.fromkeys(RULES, NA) | {"PINNED-003": "pass"})
