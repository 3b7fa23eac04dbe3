"""Issue 4 end to end: servers with each certificate defect, scanned by the CLI; facts, reasons and trust."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests.helpers import free_port, openssl_server
from tests.ocsp_crl_server import RevocationServer
from tests.pki import CLIENT_AUTH, NOW, SERVER_AUTH, Issued, hierarchy, issue, name, new_key


def _scan(tlsgate, tmp_path: Path, leaf: Issued, chain: list[Issued], *extra: str) -> dict:
    """Serve leaf (+ chain) with openssl s_server and scan it; return the certificate facts."""
    cert, key = leaf.write(tmp_path, "leaf")
    chain_file = None
    if chain:
        chain_file = tmp_path / "chain.pem"
        chain_file.write_bytes(b"".join(c.pem for c in chain))
    with openssl_server(cert, key, chain=chain_file) as port:
        run = tlsgate("scan", f"127.0.0.1:{port}", "--timeout", "3", "--json", str(tmp_path / "r.json"), *extra)
    assert run.code in (0, 1), run.stdout + run.stderr
    facts = json.loads((tmp_path / "r.json").read_text())["targets"][0]["facts"]["certificate"]
    assert facts["status"] == "ok", facts["error"]
    return facts


def _trust(facts: dict) -> dict[str, dict]:
    return {result["store"].split(":")[0]: result for result in facts["trust"]}


@pytest.fixture
def root_file(tmp_path):
    def write(root: Issued) -> str:
        path = tmp_path / "root.pem"
        path.write_bytes(root.pem)
        return str(path)

    return write


def test_complete_chain_trusted_by_ca_file_not_by_public_stores(tlsgate, tmp_path, root_file):
    """A complete chain to a test root: trusted by that CA file (path of 3), unknown_issuer for Mozilla and system."""
    pki = hierarchy("complete")
    facts = _scan(tlsgate, tmp_path, pki.leaf, [pki.intermediate], "--ca-file", root_file(pki.root), "--system-trust")
    trust = _trust(facts)
    assert trust["file"]["trusted"] is True
    assert trust["file"]["path"] == [pki.leaf.sha256, pki.intermediate.sha256, pki.root.sha256]
    assert trust["file"]["anchor"] == pki.root.cert.subject.rfc4514_string()
    assert (trust["mozilla"]["trusted"], trust["mozilla"]["reason"]) == (False, "unknown_issuer")
    assert (trust["system"]["trusted"], trust["system"]["reason"]) == (False, "unknown_issuer")
    assert facts["chain_complete"]["value"] is True
    assert facts["chain_order_valid"]["value"] is True
    assert facts["hostname_match"]["value"] is True  # 127.0.0.1 is an IP SAN of the leaf
    assert [c["sha256"] for c in facts["chain"]] == [pki.leaf.sha256, pki.intermediate.sha256]


def test_missing_intermediate(tlsgate, tmp_path, root_file):
    """The leaf alone, its AIA CA-issuer unreachable: missing_intermediate, and the chain is not complete."""
    pki = hierarchy("missing", ca_issuer_url=f"http://127.0.0.1:{free_port()}/intermediate.der")
    facts = _scan(tlsgate, tmp_path, pki.leaf, [], "--ca-file", root_file(pki.root))
    trust = _trust(facts)
    assert (trust["file"]["trusted"], trust["file"]["reason"]) == (False, "missing_intermediate")
    assert "intermediate.der" in trust["file"]["detail"]
    assert facts["chain_complete"]["value"] is False


def test_expired_leaf(tlsgate, tmp_path, root_file):
    """An expired leaf is untrusted with reason expired, and its days remaining are negative."""
    pki = hierarchy("expired", not_before=NOW - dt.timedelta(days=100), leaf_days=30)
    facts = _scan(tlsgate, tmp_path, pki.leaf, [pki.intermediate], "--ca-file", root_file(pki.root))
    assert (_trust(facts)["file"]["trusted"], _trust(facts)["file"]["reason"]) == (False, "expired")
    assert facts["leaf"]["days_remaining"] < -60


def test_self_signed_rsa4096_pinned(tlsgate, tmp_path):
    """A self-signed RSA 4096 / 730-day certificate: self_signed for the stores, trusted by its pin."""
    selfsigned = issue(name("localhost"), key=new_key("rsa4096"), days=730, sans=("localhost", "127.0.0.1"))
    facts = _scan(tlsgate, tmp_path, selfsigned, [], "--system-trust", "--pin", selfsigned.sha256.upper())
    trust = _trust(facts)
    assert (trust["mozilla"]["reason"], trust["system"]["reason"]) == ("self_signed", "self_signed")
    assert trust["pin"]["trusted"] is True
    leaf = facts["leaf"]
    assert (leaf["public_key"]["type"], leaf["public_key"]["size"], leaf["validity_days"]) == ("RSA", 4096, 730)
    assert leaf["self_signed"] is True


def test_two_pinned_certificates_for_rotation(tlsgate, tmp_path):
    """A pin file with the old and the new certificate accepts a server presenting either; a third is refused."""
    old = issue(name("localhost"), key=new_key("rsa2048"), days=730, sans=("127.0.0.1",))
    new = issue(name("localhost"), key=new_key("rsa2048"), days=730, sans=("127.0.0.1",))
    other = issue(name("localhost"), key=new_key("rsa2048"), days=730, sans=("127.0.0.1",))
    pins = tmp_path / "pins.pem"
    pins.write_bytes(old.pem + new.pem)
    for served, expected in ((old, True), (new, True), (other, False)):
        facts = _scan(tlsgate, tmp_path, served, [], "--pin", str(pins))
        pin = _trust(facts)["pin"]
        assert pin["trusted"] is expected
        if not expected:
            assert pin["reason"] == "not_pinned"


def test_leaf_with_server_and_client_auth(tlsgate, tmp_path, root_file):
    """A leaf with EKU serverAuth+clientAuth shows both usages, names and OIDs."""
    pki = hierarchy("eku", eku=SERVER_AUTH + CLIENT_AUTH)
    facts = _scan(tlsgate, tmp_path, pki.leaf, [pki.intermediate], "--ca-file", root_file(pki.root))
    eku = [(e["name"], e["oid"]) for e in facts["leaf"]["extended_key_usage"]]
    assert eku == [("serverAuth", "1.3.6.1.5.5.7.3.1"), ("clientAuth", "1.3.6.1.5.5.7.3.2")]


def test_leaf_for_another_name(tlsgate, tmp_path, root_file):
    """A leaf for other.example scanned as 127.0.0.1: name_mismatch and hostname_match false."""
    pki = hierarchy("other", sans=("other.example",))
    facts = _scan(tlsgate, tmp_path, pki.leaf, [pki.intermediate], "--ca-file", root_file(pki.root))
    assert (_trust(facts)["file"]["trusted"], _trust(facts)["file"]["reason"]) == (False, "name_mismatch")
    assert facts["hostname_match"]["value"] is False


@pytest.mark.parametrize("revoked", [True, False])
def test_revoked_and_good_leaf(tlsgate, tmp_path, root_file, revoked):
    """OCSP and CRL both say revoked (keyCompromise, with the time) for a revoked leaf, and good for a good one."""
    with RevocationServer() as responder:
        pki = hierarchy("revocation", ocsp_url=responder.ocsp_url, crl_url=responder.crl_url("intermediate"))
        responder.add_issuer("intermediate", pki.intermediate)
        when = responder.revoke(pki.leaf) if revoked else None
        facts = _scan(tlsgate, tmp_path, pki.leaf, [pki.intermediate], "--ca-file", root_file(pki.root))
    leaf_results = {r["source"]: r for r in facts["revocation"] if r["certificate"] == pki.leaf.sha256}
    assert set(leaf_results) >= {"ocsp", "crl"}
    for source in ("ocsp", "crl"):
        result = leaf_results[source]
        if revoked:
            assert (result["status"], result["reason"]) == ("revoked", "keyCompromise"), result
            assert result["revoked_at"].startswith(when.strftime("%Y-%m-%dT%H:%M:%S"))
        else:
            assert result["status"] == "good", result


def test_offline_checks_nothing(tlsgate, tmp_path, root_file):
    """--offline makes no request: OCSP and CRL are not_checked, with the reason."""
    with RevocationServer() as responder:
        pki = hierarchy("offline", ocsp_url=responder.ocsp_url, crl_url=responder.crl_url("intermediate"))
        responder.add_issuer("intermediate", pki.intermediate)
        facts = _scan(tlsgate, tmp_path, pki.leaf, [pki.intermediate], "--ca-file", root_file(pki.root), "--offline")
        assert responder.count("ocsp") == responder.count("crl") == 0
    live = [r for r in facts["revocation"] if r["source"] in ("ocsp", "crl") and r["certificate"] == pki.leaf.sha256]
    assert live and {r["status"] for r in live} == {"not_checked"}
    assert all("offline" in r["detail"] for r in live), live


def test_bad_trust_store_is_a_usage_error(tlsgate, tmp_path):
    """A CA file that does not exist is refused before scanning, with exit code 2 and one line."""
    run = tlsgate("scan", "127.0.0.1:1", "--ca-file", str(tmp_path / "nope.pem"))
    assert run.code == 2
    assert len(run.stderr.strip().splitlines()) == 1 and "nope.pem" in run.stderr
