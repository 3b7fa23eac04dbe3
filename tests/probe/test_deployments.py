"""Every certificate a server serves: a server with an ECDSA and an RSA certificate side by side is reported with
both deployments, each with its own chain, trust, revocation and lints, and certificate rules judge each one."""

from __future__ import annotations

import json
import ssl
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scanner.demo import LoopbackServer
from scanner.facts import Facts, ProbeError
from scanner.policy.pack import PackError, load_pack
from scanner.probe.pki.deployments import discover
from tests import pki
from tests.helpers import (
    ANSI,
    ServerFiles,
    hello_filter_proxy,
    loopback_endpoint,
    openssl_server,
    run_tlsgate,
    server_context,
)
from tests.nginx import nginx_server
from tests.probe.test_big_chain import SANS
from tests.probe.test_starttls_protocols import PROTOCOLS, starttls_server

_EXT_SIGNATURE_ALGORITHMS = 0x000D
_RSA_SIGALGS = {0x0401, 0x0501, 0x0601, 0x0804, 0x0805, 0x0806}


@dataclass(frozen=True)
class Dual:
    """An ECDSA P-256 and an RSA 2048 leaf for localhost under one intermediate whose basic constraints are not
    marked critical (an RFC 5280 lint on each chain), written as PEM chains; ``ca`` is the root."""

    ecdsa: tuple[Path, Path]
    rsa: tuple[Path, Path]
    ca: Path
    ecdsa_sha256: str
    rsa_sha256: str


@pytest.fixture(scope="module")
def dual(tmp_path_factory: pytest.TempPathFactory) -> Dual:
    directory = tmp_path_factory.mktemp("deployments")
    root = pki.issue(pki.name("deployments root CA"), ca=True, days=3650, key=pki.new_key("p384"))
    intermediate = pki.issue(
        pki.name("deployments intermediate CA"), issuer=root, ca=True, path_length=0, days=1825, bc_critical=False
    )
    leaf: dict[str, Any] = {"sans": ("localhost", "127.0.0.1"), "eku": pki.SERVER_AUTH, "days": 90}
    ecdsa = pki.issue(pki.name("localhost"), issuer=intermediate, key=pki.new_key("p256"), **leaf)
    rsa = pki.issue(pki.name("localhost"), issuer=intermediate, key=pki.new_key("rsa2048"), **leaf)
    ca = directory / "root.pem"
    ca.write_bytes(root.pem)
    return Dual(
        ecdsa=ecdsa.write(directory, "ecdsa", chain=[intermediate]),
        rsa=rsa.write(directory, "rsa", chain=[intermediate]),
        ca=ca,
        ecdsa_sha256=ecdsa.sha256,
        rsa_sha256=rsa.sha256,
    )


def _scan(target: str, directory: Path, *args: str) -> tuple[int, str, dict[str, Any]]:
    """``tlsgate scan`` as a user runs it: exit code, standard output (no colour), the JSON report."""
    report = directory / "report.json"
    run = run_tlsgate("scan", target, "--json", str(report), "--timeout", "5", *args)
    assert report.exists(), run.stderr
    return run.code, ANSI.sub("", run.stdout), json.loads(report.read_text())


def _finding(report: dict[str, Any], rule: str) -> dict[str, Any]:
    return next(f for f in report["targets"][0]["findings"] if f["rule"] == rule)


@pytest.fixture(scope="module")
def nginx_report(dual: Dual, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict[str, Any]]:
    """nginx with both certificates (two ssl_certificate directives), TLS 1.2 and 1.3, scanned once in verbose with
    the test root trusted; the JSON report's path, the terminal output and the report."""
    directory = tmp_path_factory.mktemp("nginx-scan")
    second = f"ssl_certificate {dual.rsa[0]}; ssl_certificate_key {dual.rsa[1]};"
    with nginx_server(*dual.ecdsa, extra=second) as server:
        html = directory / "report.html"
        _, stdout, report = _scan(
            f"localhost:{server.port}", directory, "--ca-file", str(dual.ca), "--html", str(html), "-v"
        )
    return directory / "report.json", stdout, report


def test_both_deployments_are_reported_with_their_own_chain_trust_and_revocation(
    nginx_report: tuple[Path, str, dict[str, Any]], dual: Dual
) -> None:
    """nginx serving an ECDSA and an RSA certificate: two deployments, each its own chain, verdicts and lints."""
    facts = Facts.model_validate(nginx_report[2]["targets"][0]["facts"])
    deployments = facts.certificate_deployments
    assert len(deployments) == 2
    by_key = {d.certificate.leaf.public_key.type: d for d in deployments if d.certificate.leaf is not None}
    assert set(by_key) == {"EC", "RSA"}
    assert by_key["EC"].certificate.leaf.sha256 == dual.ecdsa_sha256  # type: ignore[union-attr]
    assert by_key["RSA"].certificate.leaf.sha256 == dual.rsa_sha256  # type: ignore[union-attr]
    assert "ecdsa" in by_key["EC"].offers and "rsa" in by_key["RSA"].offers
    assert [d.offers.count("default") for d in deployments] == [1, 0]  # the default one first
    assert facts.certificate == deployments[0].certificate
    for deployment in deployments:
        certificate = deployment.certificate
        assert certificate.status == "ok", certificate.error
        assert len(certificate.chain) == 2  # leaf and intermediate, as served
        assert {t.store.split(":")[0]: t.trusted for t in certificate.trust} == {"file": True, "mozilla": False}
        assert {r.certificate for r in certificate.revocation} >= {certificate.leaf.sha256}  # type: ignore[union-attr]
        assert {lint.id for lint in certificate.lints} == {"ca-basic-constraints-not-critical"}


def test_reports_show_both_deployments_and_their_lints(nginx_report: tuple[Path, str, dict[str, Any]]) -> None:
    """The verbose terminal output, the HTML and the Markdown name each deployment; lints are listed on screen."""
    path, stdout, report = nginx_report
    facts = Facts.model_validate(report["targets"][0]["facts"])
    labels = [d.label for d in facts.certificate_deployments]
    assert labels[0].startswith(("ECDSA secp256r1 ", "RSA 2048 "))
    assert "certificates served: 2" in stdout
    for label in labels:
        assert any(line.strip().startswith(f"{label} (offered: ") for line in stdout.splitlines()), stdout
        assert f"lint ({label}): error RFC5280 4.2.1.9 ca-basic-constraints-not-critical: certificate 2" in stdout
    html = (path.parent / "report.html").read_text()
    assert html.count('<section class="deployment"') == 2
    assert all(f'data-deployment="{label}"' in html for label in labels)
    assert html.count('data-lint="ca-basic-constraints-not-critical"') >= 2
    run = run_tlsgate("evaluate", str(path), "--pack", "essentials", "--format", "markdown")
    assert "Certificates served: 2" in run.stdout
    assert all(label in run.stdout for label in labels)


def test_mozilla_modern_fails_the_rsa_deployment(dual: Dual, tmp_path: Path) -> None:
    """A TLS 1.3-only server with an RSA and an ECDSA certificate: mozilla-modern fails its key-type rule on the RSA
    one and names it; the curve rule, which only EC keys meet the condition of, passes on the ECDSA one."""
    with openssl_server(*dual.rsa, "-dcert", str(dual.ecdsa[0]), "-dkey", str(dual.ecdsa[1]), "-tls1_3") as port:
        code, stdout, report = _scan(f"localhost:{port}", tmp_path, "--pack", "mozilla-modern")
    assert code == 1
    key_type = _finding(report, "MOZILLA-MODERN-006")
    assert key_type["status"] == "fail"
    rsa_label = f"RSA 2048 {dual.rsa_sha256[:8]}"
    assert key_type["evidence"]["deployment"] == rsa_label
    assert key_type["message"].startswith(f"{rsa_label}: certificate.leaf.public_key.type = RSA")
    assert f"MOZILLA-MODERN-006 The certificate key is EC: {rsa_label}" in stdout
    curve = _finding(report, "MOZILLA-MODERN-007")
    assert (curve["status"], curve["evidence"]["deployment"]) == ("pass", f"ECDSA secp256r1 {dual.ecdsa_sha256[:8]}")


def test_one_certificate_is_one_deployment(dual: Dual, tmp_path: Path) -> None:
    """The same server with its ECDSA certificate alone: one deployment, and mozilla-modern's key rule passes."""
    with openssl_server(*dual.ecdsa, "-tls1_3") as port:
        _, stdout, report = _scan(f"localhost:{port}", tmp_path, "--pack", "mozilla-modern")
    deployments = report["targets"][0]["facts"]["certificate_deployments"]
    assert [d["offers"] for d in deployments] == [["default", "ecdsa"]]
    key_type = _finding(report, "MOZILLA-MODERN-006")
    assert key_type["status"] == "pass"
    assert "deployment" not in key_type["evidence"]
    assert "certificates:" not in stdout


_PACK = """\
id: deployment-semantics
title: Deployment semantics
version: "1"
rules:
  - id: ANY-RSA
    title: Some certificate has an RSA key
    severity: low
    fact: certificate.leaf.public_key.type
    deployments: any
    equals: RSA
  - id: EVERY-RSA
    title: Every certificate has an RSA key
    severity: low
    fact: certificate.leaf.public_key.type
    deployments: every
    equals: RSA
  - id: ANY-ED25519
    title: Some certificate has an Ed25519 key
    severity: low
    fact: certificate.leaf.public_key.type
    deployments: any
    equals: Ed25519
"""


def test_any_passes_when_one_deployment_does(nginx_report: tuple[Path, str, dict[str, Any]], tmp_path: Path) -> None:
    """Saved facts of the two-certificate server re-judged offline: `any` passes on the RSA deployment, `every`
    fails on the ECDSA one, and `any` with no deployment meeting it fails naming both."""
    pack = tmp_path / "pack.yaml"
    pack.write_text(_PACK)
    out = tmp_path / "judged.json"
    run = run_tlsgate("evaluate", str(nginx_report[0]), "--pack", str(pack), "--json", str(out))
    assert run.code == 1, run.stderr
    report = json.loads(out.read_text())
    any_rsa, every_rsa, any_ed = (_finding(report, r) for r in ("ANY-RSA", "EVERY-RSA", "ANY-ED25519"))
    assert (any_rsa["status"], any_rsa["evidence"]["deployment"][:9]) == ("pass", "RSA 2048 ")
    assert (every_rsa["status"], every_rsa["evidence"]["deployment"][:16]) == ("fail", "ECDSA secp256r1 ")
    assert any_ed["status"] == "fail"
    assert any_ed["evidence"]["deployment"].count(", ") == 1


def _sigalgs(hello: bytes) -> set[int]:
    """The signature_algorithms a ClientHello (one record) offers."""
    body = hello[5 + 4 :]
    pos = 2 + 32
    pos += 1 + body[pos]  # session id
    pos += 2 + struct.unpack_from("!H", body, pos)[0]  # cipher suites
    pos += 1 + body[pos]  # compression methods
    end = pos + 2 + struct.unpack_from("!H", body, pos)[0]
    pos += 2
    while pos + 4 <= end:
        kind, length = struct.unpack_from("!HH", body, pos)
        if kind == _EXT_SIGNATURE_ALGORITHMS:
            codes = body[pos + 6 : pos + 4 + length]
            return {struct.unpack_from("!H", codes, i)[0] for i in range(0, len(codes), 2)}
        pos += 4 + length
    return set()


def test_an_offer_left_unanswered_makes_certificate_rules_inconclusive(dual: Dual, tmp_path: Path) -> None:
    """A server that stalls the RSA-only handshake: that offer is a deployment in error, so a rule every
    deployment must pass is inconclusive (never a pass on the one certificate seen), naming the offer."""

    def stall_rsa_only(hello: bytes) -> str:
        offered = _sigalgs(hello)
        return "silent" if offered and offered <= _RSA_SIGALGS else "forward"

    with (
        openssl_server(*dual.ecdsa, "-tls1_3") as port,
        hello_filter_proxy(port, stall_rsa_only) as proxy,
    ):
        _, _, report = _scan(f"localhost:{proxy.port}", tmp_path, "--pack", "mozilla-modern", "--timeout", "2")
    assert proxy.actions.count("silent") == 1
    deployments = report["targets"][0]["facts"]["certificate_deployments"]
    assert [(d["offers"], d["certificate"]["status"]) for d in deployments] == [
        (["default", "ecdsa"], "ok"),
        (["rsa"], "error"),
    ]
    assert deployments[1]["certificate"]["error"]["error_class"] == "timeout"
    key_type = _finding(report, "MOZILLA-MODERN-006")
    assert (key_type["status"], key_type["evidence"]["deployment"]) == ("error", "rsa offer")


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("fact: certificate.leaf.public_key.type\n    deployments: some\n    equals: EC", "is every or any"),
        ("fact: protocols\n    deployments: any\n    some: {version: TLSv1.3}", "certificate facts only"),
    ],
)
def test_pack_deployments_key_is_checked(rule: str, message: str, tmp_path: Path) -> None:
    """`deployments` takes every or any, and only on a rule that reads the certificate."""
    pack = tmp_path / "pack.yaml"
    pack.write_text(
        f'id: bad\ntitle: Bad\nversion: "1"\nrules:\n  - id: R1\n    title: R\n    severity: low\n    {rule}\n'
    )
    with pytest.raises(PackError) as raised:
        load_pack(pack)
    assert message in str(raised.value)
    assert "pack.yaml:9:18: " in str(raised.value)  # at the value of the key


def test_chains_too_large_for_openssl_are_discovered_in_the_clear(tmp_path: Path) -> None:
    """Two certificates whose Certificate messages exceed OpenSSL's 100 KiB limit, TLS 1.2: both deployments are
    read with tlsgate's own hello (as the default chain is), none is left in error."""
    root = pki.issue(pki.name("large root CA"), ca=True, days=3650)
    leaf: dict[str, Any] = {"sans": SANS, "eku": pki.SERVER_AUTH, "days": 90, "issuer": root}
    ecdsa = pki.issue(pki.name("localhost"), key=pki.new_key("p256"), **leaf).write(tmp_path, "ecdsa")
    rsa = pki.issue(pki.name("localhost"), key=pki.new_key("rsa2048"), **leaf).write(tmp_path, "rsa")
    with openssl_server(*rsa, "-dcert", str(ecdsa[0]), "-dkey", str(ecdsa[1]), "-tls1_2") as port:
        _, _, report = _scan(f"localhost:{port}", tmp_path, "--no-revocation")
    deployments = report["targets"][0]["facts"]["certificate_deployments"]
    assert sorted(d["certificate"]["leaf"]["public_key"]["type"] for d in deployments) == ["EC", "RSA"]
    assert all(len(d["certificate"]["leaf"]["subject_alt_names"]) == len(SANS) for d in deployments)


def test_offers_go_through_starttls(dual: Dual, tmp_path: Path) -> None:
    """IMAP STARTTLS in front of one ECDSA certificate: each offer upgrades first, so the ECDSA offer finds the
    certificate again and the others are refused by TLS (not broken by the plaintext dialogue)."""
    context = server_context(ServerFiles(cert=dual.ecdsa[0], key=dual.ecdsa[1], ca=dual.ca), ssl.TLSVersion.TLSv1_2)
    with LoopbackServer(starttls_server(PROTOCOLS["imap"], context)) as server:
        _, _, report = _scan(server.target, tmp_path, "--starttls", "imap", "--no-revocation")
    deployments = report["targets"][0]["facts"]["certificate_deployments"]
    assert [(d["offers"], d["certificate"]["status"]) for d in deployments] == [(["default", "ecdsa"], "ok")]


def test_a_server_requiring_a_client_certificate_shows_both(dual: Dual, tmp_path: Path) -> None:
    """s_server demanding a client certificate (TLS 1.3, where it asks before sending its own): every offer still
    reads the chain that comes before the request, scanned without a client certificate."""
    args = ("-dcert", str(dual.ecdsa[0]), "-dkey", str(dual.ecdsa[1]), "-Verify", "1", "-tls1_3")
    with openssl_server(*dual.rsa, *args) as port:
        _, _, report = _scan(f"localhost:{port}", tmp_path, "--no-revocation")
    deployments = report["targets"][0]["facts"]["certificate_deployments"]
    assert sorted(d["certificate"]["leaf"]["sha256"] for d in deployments) == sorted(
        [dual.ecdsa_sha256, dual.rsa_sha256]
    )


@pytest.mark.parametrize("version", ["-tls1_3", "-tls1_2"])
def test_an_ed25519_certificate_is_found_by_the_other_offer(dual: Dual, version: str, tmp_path: Path) -> None:
    """ECDSA and Ed25519 side by side: the ECDSA offer gets one, the EdDSA/DSA offer the other; RSA is refused."""
    issuer = pki.issue(pki.name("ed25519 test CA"), ca=True, days=30)
    ed25519 = pki.issue(pki.name("localhost"), issuer=issuer, key=pki.new_key("ed25519"), sans=("localhost",))
    ed_cert, ed_key = ed25519.write(tmp_path, "ed25519")
    with openssl_server(*dual.ecdsa, "-dcert", str(ed_cert), "-dkey", str(ed_key), version) as port:
        found = discover(loopback_endpoint(port, server_name="localhost"))
    keys = {
        offer: type(chain.chain[0].public_key()).__name__ for offer, chain in found if not isinstance(chain, ProbeError)
    }
    assert keys == {"ecdsa": "ECPublicKey", "other": "Ed25519PublicKey"}


def test_one_chain_too_large_for_openssl_beside_a_small_one(dual: Dual, tmp_path: Path) -> None:
    """A small ECDSA chain by default and an RSA one over OpenSSL's limit (TLS 1.2): the RSA offer, refused by
    OpenSSL, is read in the clear instead of being left in error."""
    issuer = pki.issue(pki.name("large RSA CA"), ca=True, days=30)
    large = pki.issue(pki.name("localhost"), issuer=issuer, key=pki.new_key("rsa2048"), sans=SANS, days=30)
    rsa_cert, rsa_key = large.write(tmp_path, "large-rsa")
    with openssl_server(*dual.ecdsa, "-dcert", str(rsa_cert), "-dkey", str(rsa_key), "-tls1_2") as port:
        _, _, report = _scan(f"localhost:{port}", tmp_path, "--no-revocation")
    deployments = report["targets"][0]["facts"]["certificate_deployments"]
    assert [(d["offers"], d["certificate"]["leaf"]["sha256"]) for d in deployments] == [
        (["default", "ecdsa"], dual.ecdsa_sha256),
        (["rsa"], large.sha256),
    ]
