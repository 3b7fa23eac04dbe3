"""Loading the scan's client certificate: PEM or PKCS#12, passwords from the environment or a file, never shown."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from scanner.probe.connect.credentials import CredentialsError, _Secret, load_credentials
from tests.helpers import ClientPki, client_pki, issue_certificate

ENV = "TLSGATE_TEST_CLIENT_PASSWORD"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> ClientPki:
    return client_pki(tmp_path_factory.mktemp("client-pki"))


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    directory = tmp_path / "work"
    directory.mkdir(mode=0o700)
    return directory


def _load(
    workdir: Path,
    *,
    cert: Path | None = None,
    key: Path | None = None,
    p12: Path | None = None,
    password_env: str | None = None,
    password_file: Path | None = None,
):
    return load_credentials(cert, key, p12, password_env, password_file, workdir)


def _error(workdir: Path, **kwargs) -> str:
    with pytest.raises(CredentialsError) as caught:
        _load(workdir, **kwargs)
    return str(caught.value)


def _assert_usable(credentials, client: ClientPki) -> None:
    chain = x509.load_pem_x509_certificates(credentials.cert_chain.read_bytes())
    expected = x509.load_pem_x509_certificates(client.cert.read_bytes())
    assert chain == expected  # leaf first, then the CA
    key = serialization.load_pem_private_key(credentials.key.read_bytes(), None)  # unencrypted
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert key.public_key().public_bytes(serialization.Encoding.DER, spki) == chain[0].public_key().public_bytes(
        serialization.Encoding.DER, spki
    )
    for path in (credentials.cert_chain, credentials.key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_pem_certificate_and_key(client: ClientPki, workdir: Path) -> None:
    """A PEM chain and key are written, unencrypted and mode 0600, into the work directory."""
    credentials = _load(workdir, cert=client.cert, key=client.key)
    assert credentials.cert_chain.parent == workdir
    assert credentials.key.parent == workdir
    assert credentials.description == "client.pem + client-key.pem"
    _assert_usable(credentials, client)


def test_pem_with_the_key_in_the_certificate_file(client: ClientPki, workdir: Path) -> None:
    """One PEM file holding the chain and the key is enough."""
    credentials = _load(workdir, cert=client.combined)
    assert credentials.description == "client-combined.pem"
    _assert_usable(credentials, client)


def test_encrypted_pem_key_with_password_from_env(
    client: ClientPki, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An encrypted PEM key is decrypted with the password from an environment variable."""
    monkeypatch.setenv(ENV, client.password)
    _assert_usable(_load(workdir, cert=client.cert, key=client.encrypted_key, password_env=ENV), client)


def test_encrypted_pem_key_without_password(client: ClientPki, workdir: Path) -> None:
    """An encrypted PEM key without a password says it is encrypted."""
    message = _error(workdir, cert=client.cert, key=client.encrypted_key)
    assert "is encrypted" in message


def test_encrypted_pem_key_wrong_password(client: ClientPki, workdir: Path, tmp_path: Path) -> None:
    """A wrong password for a PEM key is named as such, and the password is not in the message."""
    password_file = tmp_path / "password"
    password_file.write_text("hunter2-not-it\n")
    message = _error(workdir, cert=client.cert, key=client.encrypted_key, password_file=password_file)
    assert "wrong password" in message
    assert "hunter2" not in message


def test_pkcs12_with_password_from_env(client: ClientPki, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PKCS#12 file opened with the password from an environment variable becomes PEM files."""
    monkeypatch.setenv(ENV, client.password)
    credentials = _load(workdir, p12=client.p12, password_env=ENV)
    assert credentials.description == "client.p12"
    _assert_usable(credentials, client)


@pytest.mark.parametrize("ending", ["", "\n", "\r\n"])
def test_pkcs12_with_password_from_file(client: ClientPki, workdir: Path, tmp_path: Path, ending: str) -> None:
    """The password file's first line is the password; a final newline is not part of it."""
    password_file = tmp_path / "password"
    password_file.write_bytes((client.password + ending).encode())
    _assert_usable(_load(workdir, p12=client.p12, password_file=password_file), client)


def test_pkcs12_wrong_password(client: ClientPki, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong PKCS#12 password is a clear error that never contains the password."""
    wrong = "s3cr3t-wrong-Pa55word"
    monkeypatch.setenv(ENV, wrong)
    with pytest.raises(CredentialsError) as caught:
        _load(workdir, p12=client.p12, password_env=ENV)
    message = str(caught.value)
    assert "wrong password" in message
    assert "client.p12" in message
    assert wrong not in message
    assert wrong not in repr(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    assert list(workdir.iterdir()) == []  # nothing half-written


def test_pkcs12_without_password(client: ClientPki, workdir: Path) -> None:
    """An encrypted PKCS#12 file without a password says that it needs one."""
    message = _error(workdir, p12=client.p12)
    assert "needs a password" in message


def test_password_env_not_set(client: ClientPki, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unset password variable is named in the error."""
    monkeypatch.delenv(ENV, raising=False)
    message = _error(workdir, p12=client.p12, password_env=ENV)
    assert ENV in message
    assert "not set" in message


def test_pkcs12_without_key(client: ClientPki, workdir: Path, tmp_path: Path) -> None:
    """A PKCS#12 file that holds certificates but no key is refused."""
    only_certs = tmp_path / "certs-only.p12"
    ca = x509.load_pem_x509_certificate(client.ca.read_bytes())
    only_certs.write_bytes(
        pkcs12.serialize_key_and_certificates(None, None, None, [ca], serialization.NoEncryption())
    )  # fmt: skip
    message = _error(workdir, p12=only_certs)
    assert "holds no private key" in message


def test_key_does_not_match_certificate(client: ClientPki, workdir: Path, tmp_path: Path) -> None:
    """A key that belongs to another certificate is refused with both named."""
    other = issue_certificate(tmp_path / "other", "other", key_type="p384")
    message = _error(workdir, cert=client.cert, key=other.key)
    assert "does not match the certificate" in message
    assert "tlsgate test client" in message


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"cert": Path("/nonexistent/client.pem"), "key": Path("/nonexistent/key.pem")}, "does not exist"),
        ({"p12": Path("/nonexistent/client.p12")}, "does not exist"),
        ({"key": Path("/nonexistent/key.pem")}, "without its certificate"),
        ({}, "no client certificate"),
    ],
)
def test_missing_or_incomplete_input(workdir: Path, kwargs: dict[str, Path], expected: str) -> None:
    """A missing file or a key without a certificate is a clear error."""
    assert expected in _error(workdir, **kwargs)


def test_conflicting_inputs(client: ClientPki, workdir: Path, tmp_path: Path) -> None:
    """PEM and PKCS#12 together, or two password sources, are refused."""
    assert "not both" in _error(workdir, cert=client.cert, key=client.key, p12=client.p12)
    password_file = tmp_path / "password"
    password_file.write_text(client.password)
    assert "not both" in _error(workdir, p12=client.p12, password_env=ENV, password_file=password_file)


def test_not_a_certificate(workdir: Path, tmp_path: Path) -> None:
    """A file that is not PEM, given as the certificate, is refused."""
    junk = tmp_path / "junk.pem"
    junk.write_text("hello\n")
    assert "no PEM certificate" in _error(workdir, cert=junk, key=junk)


def test_secret_does_not_show_itself() -> None:
    """The password holder's repr and str are redacted."""
    secret = _Secret(b"topsecret")
    assert "topsecret" not in repr(secret)
    assert "topsecret" not in str(secret)
    assert secret.reveal() == b"topsecret"
