"""Certificate messages over OpenSSL's 100 KiB limit (a leaf with thousands of SANs): sslyze cannot fetch the
chain, so tlsgate reads it in the clear with its own TLS 1.2 hello, or says why it cannot (TLS 1.3 only)."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from scanner.facts import ErrorClass, Facts
from scanner.probe.options import ConnectOptions, ProbeOptions
from scanner.probe.pki.certchain import CertificateOptions
from scanner.probe.pki.stores import TrustStoreSpec
from scanner.probe.pki.wirechain import OPENSSL_MAX_CERT_LIST
from scanner.probe.run import probe_targets
from scanner.targets import parse_target
from tests.helpers import openssl_server
from tests.pki import NOW, Hierarchy, Issued, hierarchy

SANS = ("localhost", "127.0.0.1", *(f"host-{n:05d}.a-rather-long-name-for-many-sans.test" for n in range(3000)))


@pytest.fixture(scope="module")
def big() -> Hierarchy:
    chain = hierarchy("big", sans=SANS)
    served = sum(len(c.cert.public_bytes(Encoding.DER)) for c in (chain.leaf, chain.intermediate))
    assert served > OPENSSL_MAX_CERT_LIST, "the test chain must exceed OpenSSL's limit"
    return chain


@contextlib.contextmanager
def _serve(tmp_path: Path, pki: Hierarchy, *args: str) -> Iterator[int]:
    cert, key = pki.leaf.write(tmp_path, "leaf")
    chain = tmp_path / "chain.pem"
    chain.write_bytes(pki.intermediate.pem)
    with openssl_server(cert, key, *args, chain=chain) as port:
        yield port


def _scan(port: int, tmp_path: Path, pki: Hierarchy) -> Facts:
    root = tmp_path / "root.pem"
    root.write_bytes(pki.root.pem)
    options = ProbeOptions(
        timeout=5, certificates=CertificateOptions(stores=(TrustStoreSpec("file", root),), revocation=False)
    )
    target = (parse_target(f"127.0.0.1:{port}"), ConnectOptions(server_name="localhost"))
    (facts,) = probe_targets([target], options)
    assert facts.status == "ok", facts.error
    return facts


@pytest.mark.parametrize("versions", [("-tls1_2",), ("-no_tls1_3",), ()], ids=["tls1.2", "up-to-1.2", "1.2-and-1.3"])
def test_large_chain_read_in_the_clear(big: Hierarchy, tmp_path: Path, versions: tuple[str, ...]) -> None:
    """Whenever the server speaks TLS 1.2, the whole chain is read off the wire and analysed as usual."""
    with _serve(tmp_path, big, *versions) as port:
        facts = _scan(port, tmp_path, big)
    certificate = facts.certificate
    assert certificate.status == "ok", certificate.error
    assert [c.sha256 for c in certificate.chain] == [big.leaf.sha256, big.intermediate.sha256]
    assert certificate.leaf is not None
    assert len(certificate.leaf.subject_alt_names) == len(SANS)
    assert (certificate.hostname_match.status, certificate.hostname_match.value) == ("ok", True)
    assert (certificate.chain_order_valid.status, certificate.chain_order_valid.value) == ("ok", True)
    assert [(t.trusted, t.path) for t in certificate.trust] == [
        (True, [big.leaf.sha256, big.intermediate.sha256, big.root.sha256])
    ]
    # No stapling configured: observed as none, not as an error.
    assert (certificate.ocsp_stapled.status, certificate.ocsp_stapled.value) == ("ok", None)


def good_response(leaf: Issued, issuer: Issued) -> bytes:
    """A DER OCSP response saying ``leaf`` is good for a day, signed by its issuer: for s_server -status_file."""
    response = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=leaf.cert,
            issuer=issuer.cert,
            algorithm=hashes.SHA256(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=NOW - dt.timedelta(hours=1),
            next_update=NOW + dt.timedelta(days=1),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, issuer.cert)
        .sign(issuer.key, hashes.SHA256())
    )
    return response.public_bytes(Encoding.DER)


def test_large_chain_with_stapled_ocsp(big: Hierarchy, tmp_path: Path) -> None:
    """The own TLS 1.2 hello asks for stapling too: the CertificateStatus message becomes ocsp_stapled."""
    status_file = tmp_path / "status.der"
    status_file.write_bytes(good_response(big.leaf, big.intermediate))
    with _serve(tmp_path, big, "-tls1_2", "-status_file", str(status_file)) as port:
        facts = _scan(port, tmp_path, big)
    stapled = facts.certificate.ocsp_stapled
    assert stapled.status == "ok", stapled.error
    assert stapled.value is not None
    assert stapled.value.status == "good"
    assert stapled.value.next_update is not None


def test_large_chain_tls13_only_says_why(big: Hierarchy, tmp_path: Path) -> None:
    """TLS 1.3 encrypts the Certificate message: the facts say it is too large, not that the handshake failed."""
    with _serve(tmp_path, big, "-tls1_3") as port:
        facts = _scan(port, tmp_path, big)
    certificate = facts.certificate
    assert certificate.status == "error"
    assert certificate.error is not None
    assert certificate.error.error_class == ErrorClass.handshake_failed
    assert f"certificate message larger than {OPENSSL_MAX_CERT_LIST} bytes" in certificate.error.message
    assert "TLS 1.3" in certificate.error.message
    assert certificate.chain == []
    # The protocol facts are tlsgate's own and unaffected by the chain's size.
    accepted = [p.version.value for p in facts.protocols if p.status == "accepted"]
    assert accepted == ["TLSv1.3"]
