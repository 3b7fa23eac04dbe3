"""The pinned-peer pack: each rule passing and failing on built facts, then the pack against real TLS servers."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from scanner.facts import (
    Certificate,
    CertificateFacts,
    ErrorClass,
    Facts,
    ProtocolSupport,
    ProtocolVersion,
    PublicKey,
    TargetInfo,
    observed,
    unobserved,
)
from scanner.policy.engine import evaluate
from scanner.policy.pack import resolve_pack
from scanner.probe.iana import cipher_suite_by_name, to_fact
from tests.helpers import ServerFiles, openssl_server
from tests.pki import SERVER_AUTH, issue, name, new_key

PACK = "pinned-peer"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
OLD, NEW, OTHER = "1f" * 32, "2e" * 32, "3d" * 32  # the current pin, the next one of a rotation, a stranger
RULES = ["PINNED-001", "PINNED-002", "PINNED-003", "PINNED-004"]
ALL_PASS = dict.fromkeys(RULES, "pass")

# --- facts ---------------------------------------------------------------------------------------------------


def protocols(*accepted: str) -> list[ProtocolSupport]:
    suite = {"TLSv1.3": "TLS_AES_256_GCM_SHA384", "TLSv1.2": "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"}
    return [
        ProtocolSupport(
            version=v,
            status="accepted" if v.value in accepted else "not_accepted",
            cipher_suites=[to_fact(cipher_suite_by_name(suite[v.value]))] if v.value in accepted else [],
        )
        for v in ProtocolVersion
    ]


def certificate(sha256: str) -> Certificate:
    return Certificate(
        subject="CN=plc-17.plant.example",
        issuer="CN=plc-17.plant.example",
        serial="01",
        sha256=sha256,
        public_key=PublicKey(type="RSA", size=4096),
        signature_algorithm="sha256WithRSAEncryption",
        signature_hash="sha256",
        not_before=NOW - timedelta(days=10),
        not_after=NOW + timedelta(days=720),
        validity_days=730,
        subject_alt_names=["DNS:plc-17.plant.example"],
        self_signed=True,
    )


@dataclass(frozen=True)
class Peer:
    """What a scan of the peer observes; the defaults pass every rule when OLD is pinned."""

    sha256: str = OLD
    accepted: tuple[str, ...] = ("TLSv1.3",)
    hostname_match: Any = field(default_factory=lambda: observed(True))
    certificate_error: str | None = None
    source: str = "network"

    def facts(self) -> Facts:
        leaf = certificate(self.sha256)
        if self.certificate_error:
            error = unobserved(ErrorClass.handshake_failed, self.certificate_error).error
            cert = CertificateFacts(status="error", error=error)
        elif self.source == "file":
            cert = CertificateFacts(status="ok", leaf=leaf, chain=[leaf])
        else:
            cert = CertificateFacts(status="ok", leaf=leaf, chain=[leaf], hostname_match=self.hostname_match)
        return Facts(
            target=TargetInfo(
                input="plc-17.plant.example:4840", host="plc-17.plant.example", port=4840,
                server_name="plc-17.plant.example", ip_address="192.0.2.17", source=self.source,
            ),
            started_at=NOW, finished_at=NOW, status="ok",
            protocols=protocols(*self.accepted) if self.source == "network" else [],
            certificate=cert,
        )  # fmt: skip


@dataclass(frozen=True)
class Case:
    facts: Callable[[], Facts]
    params: dict[str, Any]
    expected: dict[str, str]  # statuses that differ from ALL_PASS


PINS = {"pinned_sha256": [OLD, NEW]}
CASES: dict[str, Case] = {
    "pinned certificate": Case(lambda: Peer().facts(), PINS, {}),
    "next certificate of a rotation": Case(lambda: Peer(sha256=NEW).facts(), PINS, {}),
    "single pin": Case(lambda: Peer().facts(), {"pinned_sha256": [OLD]}, {}),
    "certificate not pinned": Case(lambda: Peer(sha256=OTHER).facts(), PINS, {"PINNED-003": "fail"}),
    # an empty pin list (the default) accepts nothing: a run without pins can never pass
    "no pins given": Case(lambda: Peer().facts(), {}, {"PINNED-003": "fail"}),
    "empty pin list given": Case(lambda: Peer().facts(), {"pinned_sha256": []}, {"PINNED-003": "fail"}),
    # fingerprints are compared as certificate.leaf.sha256 reports them: lower-case hex
    "upper-case pin": Case(lambda: Peer().facts(), {"pinned_sha256": [OLD.upper()]}, {"PINNED-003": "fail"}),
    "TLS 1.2 accepted too": Case(lambda: Peer(accepted=("TLSv1.2", "TLSv1.3")).facts(), PINS, {"PINNED-001": "fail"}),
    "TLS 1.2 only": Case(
        lambda: Peer(accepted=("TLSv1.2",)).facts(), PINS, {"PINNED-001": "fail", "PINNED-002": "fail"}
    ),
    "name mismatch": Case(lambda: Peer(hostname_match=observed(False)).facts(), PINS, {"PINNED-004": "fail"}),
    "name mismatch without host-name checks": Case(
        lambda: Peer(hostname_match=observed(False)).facts(),
        {**PINS, "check_hostname": False},
        {"PINNED-004": "not_applicable"},
    ),
    "name match not observed": Case(
        lambda: Peer(hostname_match=unobserved(ErrorClass.probe_failed, "no name")).facts(),
        PINS,
        {"PINNED-004": "error"},
    ),
    "certificate not observed": Case(
        lambda: Peer(certificate_error="handshake failure").facts(),
        PINS,
        {"PINNED-003": "error", "PINNED-004": "error"},
    ),
    "pinned certificate file": Case(
        lambda: Peer(source="file").facts(),
        PINS,
        {"PINNED-001": "not_applicable", "PINNED-002": "not_applicable", "PINNED-004": "not_applicable"},
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


def test_empty_pin_list_says_so() -> None:
    """Without pins the pin rule fails with a message that shows the empty list, not a silent pass."""
    finding = next(f for f in evaluate(Peer().facts(), [resolve_pack(PACK)]) if f.rule == "PINNED-003")
    assert finding.message == f"certificate.leaf.sha256 = {OLD}, must be one of []"


def test_pack_is_valid(tlsgate) -> None:
    """`tlsgate rules validate` accepts the pack as shipped."""
    run = tlsgate("rules", "validate", PACK)
    assert run.code == 0, run.stderr
    assert run.stdout.strip() == f"OK {PACK} ({PACK}, {len(RULES)} rules)"


# --- real servers on loopback ----------------------------------------------------------------------------------


def fingerprint(pem: Path) -> str:
    return x509.load_pem_x509_certificates(pem.read_bytes())[0].fingerprint(hashes.SHA256()).hex()


def scan(tlsgate, port: int, report: Path, *params: str) -> tuple[int, dict[str, dict[str, Any]]]:
    args = [a for p in params for a in ("--param", p)]
    run = tlsgate("scan", f"127.0.0.1:{port}", "--pack", PACK, "--timeout", "3", "--json", str(report), *args)
    assert run.code in (0, 1), run.stdout + run.stderr
    (target,) = json.loads(report.read_text())["targets"]
    return run.code, {f["rule"]: f for f in target["findings"]}


def test_loopback_pinned_and_not_pinned(tlsgate, tls13_server, pki: ServerFiles, tmp_path) -> None:
    """A TLS 1.3 server passes with its certificate among two pins, and fails the pin rule without pins or with
    another pin only."""
    served = fingerprint(pki.cert)
    code, found = scan(tlsgate, tls13_server.port, tmp_path / "pinned.json", f"pinned_sha256=[{OTHER}, {served}]")
    assert (code, {r: f["status"] for r, f in found.items()}) == (0, ALL_PASS)
    assert found["PINNED-003"]["evidence"]["observed"] == served

    code, found = scan(tlsgate, tls13_server.port, tmp_path / "none.json")
    assert (code, {r: f["status"] for r, f in found.items()}) == (1, ALL_PASS | {"PINNED-003": "fail"})
    assert found["PINNED-003"]["message"].endswith("must be one of []")

    code, found = scan(tlsgate, tls13_server.port, tmp_path / "other.json", f"pinned_sha256=[{OTHER}]")
    assert (code, found["PINNED-003"]["status"]) == (1, "fail")


def test_loopback_older_versions_fail_even_when_pinned(tlsgate, tls12_13_server, pki: ServerFiles, tmp_path) -> None:
    """A pinned server that also accepts TLS 1.2 fails the version rule and nothing else."""
    code, found = scan(tlsgate, tls12_13_server.port, tmp_path / "r.json", f"pinned_sha256=[{fingerprint(pki.cert)}]")
    assert (code, {r: f["status"] for r, f in found.items()}) == (1, ALL_PASS | {"PINNED-001": "fail"})


def test_loopback_hostname_toggle(tlsgate, tmp_path) -> None:
    """A pinned self-signed certificate for another name fails the host-name rule unless check_hostname is false."""
    device = issue(name("plc-17.plant.example"), key=new_key("rsa4096"), days=730, sans=("plc-17.plant.example",))
    cert, key = device.write(tmp_path, "device")
    pin = f"pinned_sha256=[{device.sha256}]"
    with openssl_server(cert, key, "-tls1_3") as port:
        checked = scan(tlsgate, port, tmp_path / "checked.json", pin)
        unchecked = scan(tlsgate, port, tmp_path / "unchecked.json", pin, "check_hostname=false")
    code, found = checked
    assert (code, {r: f["status"] for r, f in found.items()}) == (1, ALL_PASS | {"PINNED-004": "fail"})
    assert found["PINNED-004"]["evidence"]["observed"] is False
    code, found = unchecked
    assert (code, {r: f["status"] for r, f in found.items()}) == (0, ALL_PASS | {"PINNED-004": "not_applicable"})
    assert found["PINNED-004"]["message"] == "applies only when parameter check_hostname equals True"


def test_pinned_certificate_file(tlsgate, tmp_path) -> None:
    """`tlsgate cert` tells whether a certificate file is one of the pins, before it is deployed."""
    device = issue(name("localhost"), days=90, sans=("localhost",), eku=SERVER_AUTH)
    path, _ = device.write(tmp_path, "device")
    run = tlsgate(
        "cert", str(path), "--pack", PACK, "--param", f"pinned_sha256=[{device.sha256}]",
        "--json", str(tmp_path / "r.json"),
    )  # fmt: skip
    assert run.code == 0, run.stdout + run.stderr
    (target,) = json.loads((tmp_path / "r.json").read_text())["targets"]
    assert {f["rule"]: f["status"] for f in target["findings"]} == dict.fromkeys(RULES, "not_applicable") | {
        "PINNED-003": "pass"
    }
