"""Trust decisions on the chains real loopback servers send, against every kind of store a user can name."""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from scanner.probe.pki.fetch import Fetcher
from scanner.probe.pki.pins import parse_pins
from scanner.probe.pki.storefiles import TrustStoreError, read_jks
from scanner.probe.pki.stores import TrustStoreSpec, load_anchors
from scanner.probe.pki.trust import evaluate_trust
from tests.helpers import openssl_server, sslyze_certificate_deployment
from tests.pki import NOW, SERVER_AUTH, Hierarchy, Issued, hierarchy, issue, name, new_key

DER = serialization.Encoding.DER
MOZILLA = TrustStoreSpec("mozilla")
SYSTEM = TrustStoreSpec("system")
PASSWORD = "tlsgate-trust-test"  # noqa: S105 - a test truststore's password
PASSWORD_ENV, WRONG_ENV, UNSET_ENV = (
    "TLSGATE_TEST_TRUSTSTORE_PASSWORD",
    "TLSGATE_TEST_WRONG_PASSWORD",
    "TLSGATE_TEST_UNSET",
)


def received_chain(port: int, server_name: str = "localhost") -> list[x509.Certificate]:
    """The certificates the server at 127.0.0.1:port really sends, as sslyze received them, leaf first."""
    return list(sslyze_certificate_deployment(port, server_name).received_certificate_chain)


def serve(directory: Path, leaf: Issued, chain: list[Issued], *args: str) -> list[x509.Certificate]:
    """Serve ``leaf`` then ``chain`` with ``openssl s_server`` and return what a client receives."""
    cert, key = leaf.write(directory, "served")
    intermediates = None
    if chain:
        intermediates = directory / "served-chain.pem"
        intermediates.write_bytes(b"".join(c.pem for c in chain))
    with openssl_server(cert, key, *args, chain=intermediates) as port:
        return received_chain(port)


class AiaServer:
    """A plain HTTP server on 127.0.0.1 serving whatever bytes a test puts at a path (404 otherwise)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        files = self.files

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = files.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture(scope="module")
def aia() -> Iterator[AiaServer]:
    server = AiaServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("trust")


@pytest.fixture(scope="module")
def pki(aia: AiaServer) -> Hierarchy:
    """root -> intermediate -> leaf for localhost; the leaf names its issuer's AIA URL on the loopback server."""
    return hierarchy("trust", ca_issuer_url=aia.url("/trust-intermediate.crt"))


@pytest.fixture(scope="module")
def ca_file(work: Path, pki: Hierarchy) -> TrustStoreSpec:
    path = work / "root.pem"
    path.write_bytes(pki.root.pem)
    return TrustStoreSpec("file", path)


@pytest.fixture(scope="module")
def complete_chain(work: Path, pki: Hierarchy) -> list[x509.Certificate]:
    return serve(work / "complete", pki.leaf, [pki.intermediate])


@pytest.fixture(scope="module")
def leaf_only(work: Path, pki: Hierarchy) -> list[x509.Certificate]:
    return serve(work / "leaf-only", pki.leaf, [])


@pytest.fixture(scope="module")
def self_signed(work: Path) -> tuple[Issued, list[x509.Certificate]]:
    """A self-signed RSA 4096 certificate valid for 730 days, and the chain its server sends."""
    cert = issue(name("localhost"), key=new_key("rsa4096"), days=730, sans=("localhost", "127.0.0.1"), eku=SERVER_AUTH)
    return cert, serve(work / "self-signed", cert, [])


def evaluate(
    chain: list[x509.Certificate],
    specs: list[TrustStoreSpec],
    pins: list[str] | None = None,
    *,
    name: str | None = "localhost",
    fetcher: Fetcher | None = None,
    now: dt.datetime | None = None,
):
    return evaluate_trust(chain, name, specs, pins or [], fetcher or Fetcher(timeout=3), now or dt.datetime.now(dt.UTC))


def sha256(cert: Issued | x509.Certificate) -> str:
    return (cert.sha256 if isinstance(cert, Issued) else Issued(cert, None).sha256).lower()


def test_complete_chain_is_trusted_by_a_ca_file(pki, ca_file, complete_chain):
    """A served leaf + intermediate reaches the root in a CA file: trusted, by the root, with the 3-certificate path."""
    assert [sha256(c) for c in complete_chain] == [pki.leaf.sha256, pki.intermediate.sha256]
    (result,), complete = evaluate(complete_chain, [ca_file])
    assert result.trusted and result.reason is None
    assert result.store == f"file:{ca_file.path}"
    assert result.anchor == pki.root.cert.subject.rfc4514_string()
    assert result.path == [pki.leaf.sha256, pki.intermediate.sha256, pki.root.sha256]
    assert not result.completed_via_aia
    assert complete.status == "ok" and complete.value is True


def test_private_chain_is_unknown_to_the_mozilla_and_system_stores(complete_chain):
    """The test root is in neither the bundled Mozilla store nor the system store: unknown issuer for both."""
    results, complete = evaluate(complete_chain, [MOZILLA, SYSTEM])
    assert [(r.store, r.trusted, r.reason) for r in results] == [
        ("mozilla", False, "unknown_issuer"),
        ("system", False, "unknown_issuer"),
    ]
    assert "trust root CA" in (results[0].detail or "")
    assert complete.value is False  # the first store (Mozilla) is not reached by what was served


def test_not_yet_valid_at_an_earlier_time(pki, ca_file, complete_chain):
    """Evaluated at a time before the leaf was issued, the chain is not yet valid."""
    (result,), _ = evaluate(complete_chain, [ca_file], now=NOW - dt.timedelta(days=2))
    assert (result.trusted, result.reason) == (False, "not_yet_valid")
    assert "leaf" in (result.detail or "")


def test_missing_intermediate_when_the_aia_url_fails(aia, ca_file, leaf_only):
    """A leaf served alone, whose AIA URL answers 404: missing intermediate, and the detail says the fetch failed."""
    aia.files.clear()
    (result,), complete = evaluate(leaf_only, [ca_file])
    assert (result.trusted, result.reason, result.completed_via_aia) == (False, "missing_intermediate", False)
    assert "HTTP 404" in (result.detail or "")
    assert complete.value is False


def test_missing_intermediate_offline_says_the_aia_fetch_was_skipped(aia, pki, ca_file, leaf_only):
    """In offline mode the AIA URL is not fetched: missing intermediate, and the detail says the fetch was skipped."""
    aia.files["/trust-intermediate.crt"] = pki.intermediate.cert.public_bytes(DER)
    fetcher = Fetcher(offline=True)
    (result,), _ = evaluate(leaf_only, [ca_file], fetcher=fetcher)
    assert (result.trusted, result.reason) == (False, "missing_intermediate")
    assert "skipped" in (result.detail or "") and "offline" in (result.detail or "")
    assert fetcher.requests == 0


@pytest.mark.parametrize("encoding", ["der", "pem", "pkcs7"])
def test_missing_intermediate_completed_via_aia(aia, pki, ca_file, leaf_only, encoding):
    """With the intermediate at the leaf's AIA URL (DER, PEM or PKCS#7), the chain is completed and trusted."""
    body = {
        "der": pki.intermediate.cert.public_bytes(DER),
        "pem": pki.intermediate.pem,
        "pkcs7": pkcs7.serialize_certificates([pki.intermediate.cert], DER),
    }[encoding]
    aia.files["/trust-intermediate.crt"] = body
    fetcher = Fetcher(timeout=3)
    (by_file, by_mozilla), complete = evaluate(leaf_only, [ca_file, MOZILLA], fetcher=fetcher)
    assert by_file.trusted and by_file.completed_via_aia
    assert by_file.path == [pki.leaf.sha256, pki.intermediate.sha256, pki.root.sha256]
    assert aia.url("/trust-intermediate.crt") in (by_file.detail or "")
    # The fetched intermediate leads to a root Mozilla does not know; it was fetched once for both stores.
    assert (by_mozilla.trusted, by_mozilla.reason, by_mozilla.completed_via_aia) == (False, "unknown_issuer", True)
    assert fetcher.requests == 1
    assert complete.value is False  # completeness is about what the server sent


def test_expired_leaf(work, ca_file, pki):
    """A leaf that expired yesterday, under the trusted intermediate: expired."""
    old = issue(
        name("localhost"), issuer=pki.intermediate, not_before=NOW - dt.timedelta(days=31), days=30,
        sans=("localhost", "127.0.0.1"), eku=SERVER_AUTH,
    )  # fmt: skip
    chain = serve(work / "expired", old, [pki.intermediate])
    (result,), complete = evaluate(chain, [ca_file])
    assert (result.trusted, result.reason) == (False, "expired")
    assert "leaf" in (result.detail or "") and "expired" in (result.detail or "")
    assert complete.value is True


def test_leaf_for_another_name(work, ca_file, pki):
    """A valid chain whose leaf is for another name: name mismatch for localhost, trusted when no name is checked."""
    other = issue(name("other.example"), issuer=pki.intermediate, sans=("other.example",), eku=SERVER_AUTH)
    chain = serve(work / "other-name", other, [pki.intermediate])
    (result,), _ = evaluate(chain, [ca_file], name="localhost")
    assert (result.trusted, result.reason) == (False, "name_mismatch")
    assert "other.example" in (result.detail or "")
    (unnamed,), _ = evaluate(chain, [ca_file], name=None)
    assert unnamed.trusted


def test_ip_address_name_is_checked_against_ip_sans(ca_file, complete_chain):
    """A target given as 127.0.0.1 matches the leaf's IP SAN; ::1 does not."""
    (by_ip,), _ = evaluate(complete_chain, [ca_file], name="127.0.0.1")
    (by_v6,), _ = evaluate(complete_chain, [ca_file], name="[::1]")
    assert by_ip.trusted
    assert by_v6.reason == "name_mismatch"


def test_self_signed_certificate(work, self_signed, ca_file):
    """A self-signed RSA 4096 leaf is self-signed for a CA file and the system store, and trusted once it is in one."""
    cert, chain = self_signed
    assert len(chain) == 1 and chain[0].public_key().key_size == 4096
    results, complete = evaluate(chain, [ca_file, SYSTEM])
    assert [(r.trusted, r.reason) for r in results] == [(False, "self_signed"), (False, "self_signed")]
    assert complete.value is True  # nothing is missing: it is its own root
    direct = work / "self-signed-ca.pem"
    direct.write_bytes(cert.pem)
    (result,), _ = evaluate(chain, [TrustStoreSpec("file", direct)])
    assert result.trusted and result.path == [cert.sha256]


def test_pin_by_fingerprint(self_signed, complete_chain):
    """A SHA-256 fingerprint pin, with colons and upper case, trusts the self-signed certificate and nothing else."""
    cert, chain = self_signed
    colons = ":".join(cert.sha256[i : i + 2] for i in range(0, 64, 2)).upper()
    for pin in (colons, cert.sha256):
        (result,), _ = evaluate(chain, [], [pin])
        assert (result.store, result.trusted) == ("pin", True)
        assert result.anchor == cert.cert.subject.rfc4514_string()
        assert result.path == [cert.sha256]
    (other,), _ = evaluate(complete_chain, [], [cert.sha256])
    assert (other.trusted, other.reason) == (False, "not_pinned")


def test_pin_file_with_old_and_new_certificate(work, pki, self_signed, complete_chain, leaf_only):
    """A pin file holding two certificates (rotation) trusts a server serving either of them."""
    cert, chain = self_signed
    pin_file = work / "pins.pem"
    pin_file.write_bytes(pki.leaf.pem + cert.pem)
    assert {p.sha256 for p in parse_pins([str(pin_file)])} == {pki.leaf.sha256, cert.sha256}
    for served in (chain, complete_chain, leaf_only):
        (result,), _ = evaluate(served, [], [str(pin_file)])
        assert result.trusted, result.detail
    # The same file as a pin store gives one "pin" result next to the other stores.
    results, _ = evaluate(chain, [SYSTEM, TrustStoreSpec("pin", pin_file)])
    assert [(r.store, r.trusted) for r in results] == [("system", False), ("pin", True)]


def test_pin_on_the_intermediate(pki, complete_chain):
    """A pin on the served intermediate trusts the chain, the pinned certificate being the anchor."""
    (result,), _ = evaluate(complete_chain, [], [pki.intermediate.sha256])
    assert result.trusted
    assert result.anchor == pki.intermediate.cert.subject.rfc4514_string()
    assert result.path == [pki.leaf.sha256, pki.intermediate.sha256]


def openssl_pin_sha256(cert: Issued) -> str:
    """The HPKP pin of a certificate's key, computed by openssl as RFC 7469 appendix A does."""
    pubkey = subprocess.run(
        ["openssl", "x509", "-pubkey", "-noout"], input=cert.pem, capture_output=True, check=True
    ).stdout
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "der"], input=pubkey, capture_output=True, check=True
    ).stdout
    digest = subprocess.run(["openssl", "dgst", "-sha256", "-binary"], input=der, capture_output=True, check=True)
    return base64.b64encode(digest.stdout).decode()


def test_pin_forms_of_the_same_certificate_and_key(self_signed, complete_chain):
    """Hex with or without colons, any case; base64 SPKI with or without pin-sha256= and quotes: all trust the
    self-signed server, and none of them trusts another chain."""
    cert, chain = self_signed
    spki = openssl_pin_sha256(cert)
    colons = ":".join(cert.sha256[i : i + 2] for i in range(0, 64, 2))
    forms = [cert.sha256.upper(), colons, colons.upper(), spki, f"pin-sha256={spki}", f'pin-sha256="{spki}"',
             f"'{spki}'", f"sha256/{spki}"]  # fmt: skip
    for form in forms:
        (result,), _ = evaluate(chain, [], [form])
        assert (result.trusted, result.path) == (True, [cert.sha256]), form
        (other,), _ = evaluate(complete_chain, [], [form])
        assert (other.trusted, other.reason) == (False, "not_pinned"), form
    (key_pin,) = parse_pins([f'pin-sha256="{spki}"'])
    assert key_pin.kind == "key"
    (result,), _ = evaluate(chain, [], [spki])
    assert result.detail is not None and result.detail.startswith("the key of CN=localhost")
    assert f'pin-sha256="{spki}"' in result.detail


def test_key_pin_survives_a_renewal_and_matches_an_intermediate(work, pki, self_signed, complete_chain):
    """A key pin trusts a renewed certificate with the same key (a certificate pin does not), and a key pin on
    the served intermediate trusts the chain below it."""
    cert, _ = self_signed
    renewed = issue(name("localhost"), key=cert.key, days=365, sans=("localhost",), eku=SERVER_AUTH)
    served = serve(work / "renewed", renewed, [])
    (by_key,), _ = evaluate(served, [], [openssl_pin_sha256(cert)])
    (by_cert,), _ = evaluate(served, [], [cert.sha256])
    assert (by_key.trusted, by_cert.trusted, by_cert.reason) == (True, False, "not_pinned")
    (on_intermediate,), _ = evaluate(complete_chain, [], [openssl_pin_sha256(pki.intermediate)])
    assert on_intermediate.trusted
    assert on_intermediate.path == [pki.leaf.sha256, pki.intermediate.sha256]


def test_pin_file_of_text_pins(work, self_signed):
    """A text file of pins, one a line, with comments; a bad line is refused with its line number and the forms."""
    cert, chain = self_signed
    pins = work / "pins.txt"
    pins.write_text(f'# current key\npin-sha256="{openssl_pin_sha256(cert)}"\n\n{"2e" * 32}  # the next certificate\n')
    assert [p.kind for p in parse_pins([str(pins)])] == ["key", "certificate"]
    (result,), _ = evaluate(chain, [], [str(pins)])
    assert result.trusted and result.detail is not None and f"({pins}:2)" in result.detail
    bad = work / "bad-pins.txt"
    bad.write_text(f"{'2e' * 32}\n{'2e' * 31}\n")
    with pytest.raises(TrustStoreError, match=r"bad-pins.txt, line 2: '2e2e.*' is not a pin; a pin is a certificate"):
        parse_pins([str(bad)])
    empty = work / "empty-pins.txt"
    empty.write_text("# nothing yet\n")
    with pytest.raises(TrustStoreError, match="holds no pins"):
        parse_pins([str(empty)])


@pytest.mark.parametrize(
    "text",
    ["2e" * 31, "2e" * 33, "zz" * 32, 'pin-sha256="short"', "A" * 44, "pin-sha256=" + "A" * 42 + "=="],
)
def test_malformed_pins_show_the_accepted_forms(text):
    """Too short or long, not hex, base64 of the wrong length or padding: refused, naming every accepted form."""
    with pytest.raises(TrustStoreError) as info:
        parse_pins([text])
    message = str(info.value)
    assert "64 hex digits" in message and "pin-sha256=" in message and "PEM/DER certificate file" in message


def test_capath_made_by_openssl_rehash(work, pki, complete_chain):
    """A hashed CA directory made by `openssl rehash` is a store; one without hash links is refused clearly."""
    directory = work / "capath"
    directory.mkdir()
    (directory / "trust-root.pem").write_bytes(pki.root.pem)
    (directory / "unrelated.pem").write_bytes(hierarchy("unrelated").root.pem)
    with pytest.raises(TrustStoreError, match="openssl rehash"):
        load_anchors(TrustStoreSpec("capath", directory))
    subprocess.run(["openssl", "rehash", str(directory)], check=True, capture_output=True)
    (result,), complete = evaluate(complete_chain, [TrustStoreSpec("capath", directory)])
    assert result.trusted and result.store == f"capath:{directory}"
    assert result.anchor == pki.root.cert.subject.rfc4514_string()
    assert complete.value is True


def test_pkcs12_truststore_with_password_from_env_or_file(work, pki, complete_chain, monkeypatch):
    """A PKCS#12 truststore opens with the password from an environment variable or a file; never echoing it."""
    path = work / "truststore.p12"
    path.write_bytes(
        pkcs12.serialize_key_and_certificates(
            None, None, None, [pki.root.cert], serialization.BestAvailableEncryption(PASSWORD.encode())
        )
    )
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    spec = TrustStoreSpec("truststore", path, password_env=PASSWORD_ENV)
    (result,), _ = evaluate(complete_chain, [spec])
    assert result.trusted and result.store == f"truststore:{path}"
    password_file = work / "truststore.password"
    password_file.write_text(PASSWORD + "\n")
    (by_file,), _ = evaluate(complete_chain, [TrustStoreSpec("truststore", path, password_file=password_file)])
    assert by_file.trusted
    monkeypatch.setenv(WRONG_ENV, "not-" + PASSWORD)
    with pytest.raises(TrustStoreError, match="wrong password") as wrong:
        load_anchors(TrustStoreSpec("truststore", path, password_env=WRONG_ENV))
    with pytest.raises(TrustStoreError, match=UNSET_ENV) as unset:
        load_anchors(TrustStoreSpec("truststore", path, password_env=UNSET_ENV))
    assert PASSWORD not in str(wrong.value) + str(unset.value)


KEYTOOL = shutil.which("keytool")


def keytool_store(path: Path, storetype: str, *certs: tuple[str, Path], key_alias: str | None = None) -> Path:
    """A Java keystore made by keytool: trusted certificates imported under aliases, optionally a key pair too."""
    assert KEYTOOL
    common = ["-keystore", str(path), "-storetype", storetype, "-storepass", PASSWORD]
    if key_alias:
        subprocess.run(
            [KEYTOOL, "-genkeypair", *common, "-keypass", PASSWORD, "-alias", key_alias, "-keyalg", "EC",
             "-groupname", "secp256r1", "-dname", "CN=tlsgate client", "-validity", "30"],
            check=True, capture_output=True,
        )  # fmt: skip
    for alias, cert in certs:
        subprocess.run(
            [KEYTOOL, "-importcert", "-noprompt", *common, "-alias", alias, "-file", str(cert)],
            check=True, capture_output=True,
        )  # fmt: skip
    return path


@pytest.mark.skipif(KEYTOOL is None, reason="keytool (a Java runtime) is not installed")
@pytest.mark.parametrize("storetype", ["JKS", "JCEKS", "PKCS12"])
def test_java_truststore_made_by_keytool(work, pki, ca_file, complete_chain, storetype, monkeypatch):
    """A keytool truststore (JKS, JCEKS or PKCS12) with a key pair and the root: only the root is an anchor."""
    assert ca_file.path is not None
    path = keytool_store(work / f"truststore.{storetype.lower()}", storetype, ("root", ca_file.path), key_alias="me")
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    spec = TrustStoreSpec("truststore", path, password_env=PASSWORD_ENV)
    assert [sha256(c) for c in load_anchors(spec)] == [pki.root.sha256]
    (result,), _ = evaluate(complete_chain, [spec])
    assert result.trusted and result.anchor == pki.root.cert.subject.rfc4514_string()


@pytest.mark.skipif(KEYTOOL is None, reason="keytool (a Java runtime) is not installed")
def test_jks_integrity_check(work, pki, ca_file):
    """The JKS SHA-1 integrity digest is checked with the password: a wrong password or a changed byte is refused."""
    assert ca_file.path is not None
    other = work / "other-root.pem"
    other.write_bytes(hierarchy("other").root.pem)
    path = keytool_store(work / "integrity.jks", "JKS", ("root", ca_file.path), ("other", other))
    data = path.read_bytes()
    assert {sha256(c) for c in read_jks(data, PASSWORD)} == {
        pki.root.sha256,
        sha256(load_anchors(TrustStoreSpec("file", other))[0]),
    }
    assert len(read_jks(data, None)) == 2  # no password: no check, as Java does
    with pytest.raises(TrustStoreError, match="integrity check failed"):
        read_jks(data, "wrong-password")
    tampered = bytearray(data)
    tampered[len(data) // 2] ^= 0x01
    with pytest.raises(TrustStoreError):
        read_jks(bytes(tampered), PASSWORD)
    with pytest.raises(TrustStoreError, match="truncated"):
        read_jks(data[:-30], PASSWORD)


def sha1_intermediate(directory: Path, root: Issued) -> Issued:
    """An intermediate the root signs with SHA-1, made by `openssl x509 -sha1` (cryptography refuses to sign SHA-1)."""
    directory.mkdir(parents=True, exist_ok=True)
    root_cert, root_key = root.write(directory, "sha1-root")
    key = new_key("p256")
    key_path, csr, cert = directory / "sha1-int-key.pem", directory / "sha1-int.csr", directory / "sha1-int.pem"
    key_path.write_bytes(Issued(root.cert, key).key_pem)
    extensions = directory / "sha1-int.cnf"
    extensions.write_text(
        "[v3]\nbasicConstraints=critical,CA:true,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
    subprocess.run(
        ["openssl", "req", "-new", "-key", str(key_path), "-subj", "/O=tlsgate tests/CN=sha1 intermediate CA",
         "-out", str(csr)],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        ["openssl", "x509", "-req", "-in", str(csr), "-CA", str(root_cert), "-CAkey", str(root_key), "-sha1",
         "-days", "30", "-set_serial", "4660", "-extfile", str(extensions), "-extensions", "v3", "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return Issued(x509.load_pem_x509_certificate(cert.read_bytes()), key, root)


def test_sha1_signed_intermediate(work, pki, ca_file):
    """An intermediate signed with SHA-1 (its signature valid) makes the chain untrusted for a weak signature hash."""
    intermediate = sha1_intermediate(work / "sha1", pki.root)
    leaf = issue(name("localhost"), issuer=intermediate, sans=("localhost",), eku=SERVER_AUTH)
    # OpenSSL 3 refuses to serve a SHA-1 chain unless the security level allows it.
    chain = serve(work / "sha1", leaf, [intermediate], "-cipher", "DEFAULT@SECLEVEL=0")
    (result,), _ = evaluate(chain, [ca_file])
    assert (result.trusted, result.reason) == (False, "weak_signature_hash")
    assert "SHA1" in (result.detail or "") and "sha1 intermediate CA" in (result.detail or "")


def test_bad_signature(work, pki, ca_file):
    """A leaf whose signature bytes were altered is untrusted for a bad signature (not an unknown issuer)."""
    leaf = issue(name("localhost"), issuer=pki.intermediate, sans=("localhost",), eku=SERVER_AUTH)
    der = bytearray(leaf.cert.public_bytes(DER))
    der[-3] ^= 0x01  # inside the signature value: still parses, no longer verifies
    broken = Issued(x509.load_der_x509_certificate(bytes(der)), leaf.key, pki.intermediate)
    chain = serve(work / "bad-signature", broken, [pki.intermediate])
    (result,), _ = evaluate(chain, [ca_file])
    assert (result.trusted, result.reason) == (False, "bad_signature")
    assert "leaf" in (result.detail or "")


def test_bundled_and_system_stores_load():
    """The bundled Mozilla store and the system store load, each with over a hundred roots."""
    assert len(load_anchors(MOZILLA)) > 100
    assert len(load_anchors(SYSTEM)) > 100


def test_store_and_pin_errors_are_clear(work):
    """Unusable stores and pins raise TrustStoreError naming the problem, and specs are checked when made."""
    with pytest.raises(TrustStoreError, match="no such file"):
        load_anchors(TrustStoreSpec("file", work / "missing.pem"))
    not_pem = work / "not-a-bundle.txt"
    not_pem.write_text("hello\n")
    with pytest.raises(TrustStoreError, match="holds no certificates"):
        load_anchors(TrustStoreSpec("file", not_pem))
    broken = work / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(TrustStoreError, match="PEM block 1"):
        load_anchors(TrustStoreSpec("file", broken))
    with pytest.raises(TrustStoreError, match="neither a pin nor an existing file; a pin is a certificate's SHA-256"):
        parse_pins(["abc123"])
    with pytest.raises(TrustStoreError, match="needs a path"):
        TrustStoreSpec("file")
    with pytest.raises(TrustStoreError, match="only a truststore takes a password"):
        TrustStoreSpec("file", not_pem, password_env="X")  # noqa: S106 - a variable name, not a password
    with pytest.raises(TrustStoreError, match="unknown trust store kind"):
        TrustStoreSpec("windows")  # type: ignore[arg-type]


def test_no_certificate_served(ca_file):
    """An empty chain gives an invalid verdict per store and an unobserved completeness, without raising."""
    results, complete = evaluate([], [ca_file], ["00" * 32])
    assert [(r.store, r.trusted, r.reason) for r in results] == [
        (f"file:{ca_file.path}", False, "invalid"),
        ("pin", False, "invalid"),
    ]
    assert complete.status == "error"
