"""Load the client certificate a scan presents to servers that ask for one (mTLS).

The user gives either a PEM certificate (leaf first, then its chain) and a PEM key, or one PKCS#12 file. A
password, for an encrypted key or a PKCS#12 file, comes from an environment variable or a file: never from the
command line, where other users and shell histories see it. Whatever the input, the result is an unencrypted
PEM chain and key written to a private directory the caller owns (and removes), because that is what the TLS
libraries load.

No message here ever contains a password, and the password never sits in a plain local variable: it is held
in a ``_Secret`` whose ``repr`` is redacted, so not even a traceback that shows locals can reveal it.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from scanner.boundedfile import Unreadable, read_limited
from scanner.probe.connect.endpoint import ClientCredentials

# Keys that can sign a CertificateVerify (what PKCS#12 can hold, too).
_SigningKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
    | dsa.DSAPrivateKey
)
_SIGNING_KEYS = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
    dsa.DSAPrivateKey,
)
_PEM_KEY_MARKER = b"PRIVATE KEY-----"
_MAX_FILE_BYTES = 1 << 20  # a certificate chain, a key or a PKCS#12 bundle is kilobytes, never a megabyte


class CredentialsError(ValueError):
    """The client certificate or key cannot be used; the message says why and never contains a secret."""


class _Secret:
    """A password that does not show itself in ``repr``, ``str`` or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = value

    def reveal(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return "<password redacted>"

    __str__ = __repr__


_UNREADABLE = {
    errno.ENOENT: "does not exist",
    errno.EISDIR: "is a directory, not a file",
    errno.EACCES: "is not readable (permission denied)",
}


def _read(path: Path, what: str) -> bytes:
    try:
        return read_limited(path, _MAX_FILE_BYTES)
    except Unreadable as exc:
        if exc.too_large:
            raise CredentialsError(
                f"{what} {path} is larger than 1 MiB: not a certificate, key or PKCS#12 file"
            ) from None
        if exc.code in _UNREADABLE:
            raise CredentialsError(f"{what} {path} {_UNREADABLE[exc.code]}") from None
        raise CredentialsError(f"cannot read {what} {path}: {exc.reason}") from None


def _password(password_env: str | None, password_file: Path | None) -> _Secret | None:
    if password_env is not None and password_file is not None:
        raise CredentialsError("give the password either in an environment variable or in a file, not both")
    if password_env is not None:
        if password_env not in os.environ:
            raise CredentialsError(f"environment variable {password_env} (the password) is not set")
        return _Secret(os.fsencode(os.environ[password_env]))
    if password_file is not None:
        # The first line is the password; an editor's final newline is not part of it.
        return _Secret(_read(password_file, "password file").split(b"\n", 1)[0].removesuffix(b"\r"))
    return None


def _load_key(data: bytes, source: Path, password: _Secret | None) -> _SigningKey:
    try:
        key = serialization.load_pem_private_key(data, password.reveal() if password is not None else None)
    except TypeError:
        # cryptography: "Password was not given but private key is encrypted", or a password for a plain key.
        if password is None:
            raise CredentialsError(
                f"key {source} is encrypted: give its password in an environment variable or a file"
            ) from None
        key = serialization.load_pem_private_key(data, None)
    except ValueError:
        if password is not None and b"ENCRYPTED" in data:
            raise CredentialsError(f"cannot decrypt key {source}: wrong password") from None
        raise CredentialsError(f"{source} holds no PEM private key that can be read") from None
    except UnsupportedAlgorithm:
        raise CredentialsError(f"key {source} uses an unsupported algorithm") from None
    if not isinstance(key, _SIGNING_KEYS):
        raise CredentialsError(f"key {source} is of a type that cannot sign a TLS handshake")
    return key


def _load_chain(data: bytes, source: Path) -> list[x509.Certificate]:
    try:
        chain = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CredentialsError(f"{source} holds no PEM certificate that can be read") from None
    return chain


def _public_der(key: _SigningKey | x509.Certificate) -> bytes:
    public = key.public_key()
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _check_pair(chain: list[x509.Certificate], key: _SigningKey, description: str) -> None:
    if _public_der(chain[0]) != _public_der(key):
        raise CredentialsError(
            f"{description}: the private key does not match the certificate "
            f"({chain[0].subject.rfc4514_string() or 'empty subject'})"
        )


def _write_private(path: Path, data: bytes) -> None:
    """Create ``path`` readable by its owner only, before a single byte of the key is in it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _materialise(chain: list[x509.Certificate], key: _SigningKey, workdir: Path, description: str) -> ClientCredentials:
    _check_pair(chain, key, description)
    cert_path, key_path = workdir / "client-chain.pem", workdir / "client-key.pem"
    try:
        _write_private(cert_path, b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in chain))
        _write_private(
            key_path,
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
    except FileExistsError:
        raise CredentialsError(f"{workdir} already holds client credentials; give a fresh directory") from None
    except OSError as exc:
        raise CredentialsError(f"cannot write the client credentials to {workdir}: {exc.strerror}") from None
    return ClientCredentials(cert_chain=cert_path, key=key_path, description=description)


def _from_pkcs12(p12: Path, password: _Secret | None, workdir: Path) -> ClientCredentials:
    data = _read(p12, "PKCS#12 file")
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, password.reveal() if password is not None else None)
    except ValueError:
        # cryptography cannot tell a wrong password from a damaged file; neither can we, so say both.
        if password is None:
            raise CredentialsError(
                f"cannot open PKCS#12 file {p12}: it needs a password (give it in an environment variable or "
                "a file), or it is not a PKCS#12 file"
            ) from None
        raise CredentialsError(
            f"cannot open PKCS#12 file {p12}: wrong password, or not a PKCS#12 file"
        ) from None  # fmt: skip
    except UnsupportedAlgorithm:
        raise CredentialsError(f"PKCS#12 file {p12} uses an unsupported encryption algorithm") from None
    if key is None:
        raise CredentialsError(f"PKCS#12 file {p12} holds no private key")
    if not isinstance(key, _SIGNING_KEYS):
        raise CredentialsError(f"the key in PKCS#12 file {p12} is of a type that cannot sign a TLS handshake")
    if cert is None:
        raise CredentialsError(f"PKCS#12 file {p12} holds no certificate for its key")
    return _materialise([cert, *extra], key, workdir, p12.name)


def _from_pem(cert: Path, key: Path | None, password: _Secret | None, workdir: Path) -> ClientCredentials:
    cert_data = _read(cert, "certificate file")
    chain = _load_chain(cert_data, cert)
    if key is not None:
        private = _load_key(_read(key, "key file"), key, password)
        description = f"{cert.name} + {key.name}"
    elif _PEM_KEY_MARKER in cert_data:
        private = _load_key(cert_data, cert, password)  # one PEM file with the chain and the key
        description = cert.name
    else:
        raise CredentialsError(f"certificate file {cert} holds no private key: give the key file too")
    return _materialise(chain, private, workdir, description)


def load_credentials(
    cert: Path | None,
    key: Path | None,
    p12: Path | None,
    password_env: str | None,
    password_file: Path | None,
    workdir: Path,
) -> ClientCredentials:
    """Load a client certificate and key (PEM, or PKCS#12) into unencrypted PEM files in ``workdir``.

    ``workdir`` must be a private directory (``tempfile.mkdtemp()``) that the caller removes after the scan;
    the files are created mode 0600. Raises ``CredentialsError`` with a message fit for the user.
    """
    if p12 is not None and (cert is not None or key is not None):
        raise CredentialsError("give either a PKCS#12 file or a PEM certificate and key, not both")
    if p12 is None and cert is None and key is None:
        raise CredentialsError("no client certificate was given")
    if p12 is not None:
        return _from_pkcs12(p12, _password(password_env, password_file), workdir)
    if cert is None:
        raise CredentialsError("a client key was given without its certificate")
    return _from_pem(cert, key, _password(password_env, password_file), workdir)
