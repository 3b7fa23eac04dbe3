"""The pinned-peer pack: each rule passing and failing on built facts, then the pack against real TLS servers."""

from __future__ import annotations

import base64
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from scanner.facts import CertificateFacts, ErrorClass, Facts, TrustResult, observed, unobserved
from tests.helpers import ServerFiles, openssl_server
from tests.packs import harness
from tests.packs.harness import FAIL, NA, Case, case_test, cert, coverage_test, scan, statuses, validate_test
from tests.pki import SERVER_AUTH, issue, name, new_key

PACK = "pinned-peer"
OTHER = "3d" * 32  # a pin of no certificate served
PINNED = TrustResult(store="pin", trusted=True, anchor="CN=plc-17.plant.example", path=["1f" * 32])
NOT_PINNED = TrustResult(store="pin", trusted=False, reason="not_pinned", detail="none of the 1 served certificates")
MOZILLA = TrustResult(store="mozilla", trusted=True, anchor="CN=Some Root", path=["1f" * 32, "2e" * 32])
RULES = ["PINNED-001", "PINNED-002", "PINNED-003", "PINNED-004"]
ALL_PASS = dict.fromkeys(RULES, "pass")
SUITES = {"TLSv1.3": "TLS_AES_256_GCM_SHA384", "TLSv1.2": "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"}


@dataclass(frozen=True)
class Peer:
    """What a scan of the peer observes; the defaults pass every rule when OLD is pinned."""

    trust: tuple[TrustResult, ...] = (PINNED,)  # no "pin" result: the scan was given no --pin
    accepted: tuple[str, ...] = ("TLSv1.3",)
    hostname_match: Any = field(default_factory=lambda: observed(True))
    certificate_error: str | None = None
    source: str = "network"

    def facts(self) -> Facts:
        leaf = harness.certificate(
            "CN=plc-17.plant.example", key=("RSA", 4096), days=730, sha256="1f" * 32,
            subject_alt_names=["DNS:plc-17.plant.example"],
        )  # fmt: skip
        if self.certificate_error:
            cert = harness.certificate_error(self.certificate_error)
        elif self.source == "file":
            cert = CertificateFacts(status="ok", leaf=leaf, chain=[leaf], trust=list(self.trust))
        else:
            cert = CertificateFacts(
                status="ok", leaf=leaf, chain=[leaf], hostname_match=self.hostname_match, trust=list(self.trust)
            )
        accepted = {version: [SUITES[version]] for version in self.accepted}
        return harness.scanned(
            harness.target("plc-17.plant.example", 4840, "192.0.2.17", source=self.source),
            protocols=harness.protocols(accepted) if self.source == "network" else [],
            certificate=cert,
        )


def case(name: str, peer: Peer, expected: dict[str, str], params: dict[str, Any] | None = None, **checks: Any) -> Case:
    return Case(name, PACK, peer.facts, expected, params or {}, **checks)


CASES = [
    case("pinned chain", Peer(), {}),
    case("pinned among other stores", Peer(trust=(MOZILLA, PINNED)), {}),
    case("chain not pinned", Peer(trust=(NOT_PINNED,)), {"PINNED-003": FAIL}),
    # a scan without --pin has no "pin" trust result: nothing is accepted, a run without pins can never pass
    case("no pins given", Peer(trust=()), {"PINNED-003": FAIL},
         messages={"PINNED-003": "certificate.trust: none found where store must equal pin, trusted must equal True"}),
    # ... and a CA's trust is no pin
    case("trusted by a CA but no pins given", Peer(trust=(MOZILLA,)), {"PINNED-003": FAIL}),
    case("TLS 1.2 accepted too", Peer(accepted=("TLSv1.2", "TLSv1.3")), {"PINNED-001": FAIL}),
    case("TLS 1.2 only", Peer(accepted=("TLSv1.2",)), {"PINNED-001": FAIL, "PINNED-002": FAIL}),
    case("name mismatch", Peer(hostname_match=observed(False)), {"PINNED-004": FAIL}),
    case("name mismatch without host-name checks", Peer(hostname_match=observed(False)), {"PINNED-004": NA},
         {"check_hostname": False}),
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


def key_pin(pem: Path) -> str:
    """The HPKP pin-sha256 of the certificate's key, as openssl computes it (RFC 7469 appendix A)."""
    pubkey = subprocess.run(["openssl", "x509", "-in", str(pem), "-pubkey", "-noout"], capture_output=True, check=True)
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pubkey.stdout, capture_output=True,
                         check=True)  # fmt: skip
    digest = subprocess.run(
        ["openssl", "dgst", "-sha256", "-binary"], input=der.stdout, capture_output=True, check=True
    )
    return base64.b64encode(digest.stdout).decode()


def scan_pinned(tlsgate, port: int, report: Path, *options: str) -> tuple[int, dict[str, dict[str, Any]]]:
    return scan(tlsgate, f"127.0.0.1:{port}", report, "--pack", PACK, *options)


def test_loopback_pinned_and_not_pinned(tlsgate, tls13_server, pki: ServerFiles, tmp_path) -> None:
    """A TLS 1.3 server passes with its certificate among two --pin pins (hex with colons, upper case), and fails
    the pin rule without pins or with another pin only."""
    served = fingerprint(pki.cert)
    colons = ":".join(served[i : i + 2] for i in range(0, 64, 2)).upper()
    code, found = scan_pinned(tlsgate, tls13_server.port, tmp_path / "pinned.json", "--pin", OTHER, "--pin", colons)
    assert (code, statuses(found)) == (0, ALL_PASS)

    code, found = scan_pinned(tlsgate, tls13_server.port, tmp_path / "none.json")
    assert (code, statuses(found)) == (1, ALL_PASS | {"PINNED-003": "fail"})

    code, found = scan_pinned(tlsgate, tls13_server.port, tmp_path / "other.json", "--pin", OTHER)
    assert (code, found["PINNED-003"]["status"]) == (1, "fail")


def test_loopback_key_pin_and_pin_file(tlsgate, tls13_server, pki: ServerFiles, tmp_path) -> None:
    """The server's key as an HPKP pin-sha256 passes, given directly or in a text file of pins; the certificate
    file itself as --pin passes too."""
    pin = key_pin(pki.cert)
    code, found = scan_pinned(tlsgate, tls13_server.port, tmp_path / "key.json", "--pin", f'pin-sha256="{pin}"')
    assert (code, statuses(found)) == (0, ALL_PASS)
    pins = tmp_path / "pins.txt"
    pins.write_text(f"# the partner's key\n{pin}\n{OTHER}\n")
    for given in (pins, pki.cert):
        code, found = scan_pinned(tlsgate, tls13_server.port, tmp_path / "file.json", "--pin", str(given))
        assert (code, statuses(found)) == (0, ALL_PASS), given


def test_malformed_pin_is_a_usage_error(tlsgate, tmp_path) -> None:
    """A pin in no accepted form stops the scan before it starts: exit 2, one line naming every accepted form."""
    run = tlsgate("scan", "127.0.0.1:1", "--pack", PACK, "--pin", "3d" * 31)
    assert run.code == 2 and "Traceback" not in run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert f"pin {'3d' * 31!r} is neither a pin nor an existing file" in line
    assert "64 hex digits" in line and 'pin-sha256="..."' in line and "PEM/DER certificate file" in line


def test_loopback_older_versions_fail_even_when_pinned(tlsgate, tls12_13_server, pki: ServerFiles, tmp_path) -> None:
    """A pinned server that also accepts TLS 1.2 fails the version rule and nothing else."""
    code, found = scan_pinned(tlsgate, tls12_13_server.port, tmp_path / "r.json", "--pin", fingerprint(pki.cert))
    assert (code, statuses(found)) == (1, ALL_PASS | {"PINNED-001": "fail"})


def test_loopback_hostname_toggle(tlsgate, tmp_path) -> None:
    """A pinned self-signed certificate for another name fails the host-name rule unless check_hostname is false."""
    device = issue(name("plc-17.plant.example"), key=new_key("rsa4096"), days=730, sans=("plc-17.plant.example",))
    cert, key = device.write(tmp_path, "device")
    with openssl_server(cert, key, "-tls1_3") as port:
        checked = scan_pinned(tlsgate, port, tmp_path / "checked.json", "--pin", device.sha256)
        unchecked = scan_pinned(
            tlsgate, port, tmp_path / "unchecked.json", "--pin", device.sha256, "--param", "check_hostname=false"
        )
    code, found = checked
    assert (code, statuses(found)) == (1, ALL_PASS | {"PINNED-004": "fail"})
    assert found["PINNED-004"]["evidence"]["observed"] is False
    code, found = unchecked
    assert (code, statuses(found)) == (0, ALL_PASS | {"PINNED-004": "not_applicable"})
    assert found["PINNED-004"]["message"] == "applies only when parameter check_hostname equals True"


def test_pinned_certificate_file(tlsgate, tmp_path) -> None:
    """`tlsgate cert --pin` tells whether a certificate file is one of the pins, before it is deployed."""
    device = issue(name("localhost"), days=90, sans=("localhost",), eku=SERVER_AUTH)
    path, _ = device.write(tmp_path, "device")
    code, found = cert(tlsgate, path, tmp_path / "r.json", "--pack", PACK, "--pin", device.sha256)
    assert (code, statuses(found)) == (0, dict.fromkeys(RULES, NA) | {"PINNED-003": "pass"})
    code, found = cert(tlsgate, path, tmp_path / "other.json", "--pack", PACK, "--pin", OTHER)
    assert (code, found["PINNED-003"]["status"]) == (1, "fail")
