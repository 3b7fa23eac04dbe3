"""Reading trust anchors from files: PEM and DER bundles, OpenSSL hashed directories, JKS/JCEKS keystores.

Every problem with a file the user named raises :class:`TrustStoreError`, whose message says which file and why
(never a password). The JKS/JCEKS reader is our own: pyjks is unmaintained.
"""

from __future__ import annotations

import binascii
import errno
import hashlib
import hmac
import re
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from scanner.boundedfile import Unreadable, read_limited
from scanner.probe.wire.cursor import Cursor, ParseError
from scanner.probe.wire.der import first_element


class TrustStoreError(Exception):
    """A trust store (or pin) the user named cannot be used; the message says which and why, never a password."""


def read_file(path: Path, what: str) -> bytes:
    """The bytes of a file the user named, bounded (``scanner.boundedfile``): a directory, a FIFO, a device or a
    file over 16 MiB is a TrustStoreError, never a hang."""
    try:
        return read_limited(path)
    except Unreadable as exc:
        if exc.code == errno.EISDIR:
            raise TrustStoreError(f"{what}: is a directory (a hashed CA directory is a capath store)") from None
        if exc.code == errno.ENOENT:
            raise TrustStoreError(f"{what}: no such file") from None
        raise TrustStoreError(f"{what}: {'is' if exc.too_large else 'cannot be read:'} {exc.reason}") from None


def read_bundle(path: Path, what: str) -> list[x509.Certificate]:
    try:
        certs = parse_certificates(read_file(path, what))
    except ValueError as exc:
        raise TrustStoreError(f"{what}: {exc}") from None
    if not certs:
        raise TrustStoreError(f"{what}: holds no certificates (expected PEM or DER)")
    return certs


_HASHED_NAME = re.compile(r"^[0-9a-f]{8}\.[0-9]+$")


def load_capath(directory: Path) -> list[x509.Certificate]:
    """Certificates of an OpenSSL CApath: only ``<subject hash>.<n>`` files count, as OpenSSL only looks those up."""
    what = f"capath {directory}"
    if not directory.is_dir():
        raise TrustStoreError(f"{what}: no such directory")
    try:
        names = sorted(p for p in directory.iterdir() if _HASHED_NAME.match(p.name))
    except OSError as exc:
        raise TrustStoreError(f"{what}: cannot be listed: {exc.strerror}") from None
    if not names:
        raise TrustStoreError(f"{what}: no <hash>.0 files; create them with `openssl rehash {directory}`")
    certs: list[x509.Certificate] = []
    for name in names:
        certs.extend(read_bundle(name, f"{what}: {name.name}"))
    return certs


JKS_MAGIC = 0xFEEDFEED

JCEKS_MAGIC = 0xCECECECE


class _JksReader(Cursor):
    """Java's DataOutputStream layout; a short read means a truncated or corrupt keystore."""

    def __init__(self, data: bytes, what: str) -> None:
        super().__init__(data)
        self.what = what

    def take(self, n: int) -> bytes:
        try:
            return super().take(n)
        except ParseError:
            raise TrustStoreError(f"{self.what}: truncated or corrupt keystore (at byte {self.pos})") from None

    def utf(self) -> str:
        # Java's modified UTF-8; aliases only appear in messages, so a lenient decode is enough.
        return self.take(self.u16()).decode("utf-8", errors="replace")

    def certificate(self, version: int) -> bytes:
        if version == 2:
            kind = self.utf()
            if kind != "X.509":
                raise TrustStoreError(f"{self.what}: holds a {kind!r} certificate, not X.509")
        return self.take(self.u32())


def _jks_entry(reader: _JksReader, magic: int, version: int) -> tuple[str, bytes] | None:
    """(alias, certificate DER) of a trusted-certificate entry; None for a private key entry, which is stepped over."""
    tag = reader.u32()
    alias = reader.utf()
    reader.take(8)  # creation time, milliseconds since 1970
    if tag == 1:  # private key entry: protected key, then its certificate chain
        reader.take(reader.u32())
        for _ in range(reader.u32()):
            reader.certificate(version)
        return None
    if tag == 2:  # trusted certificate entry
        return alias, reader.certificate(version)
    if tag == 3 and magic == JCEKS_MAGIC:
        raise TrustStoreError(f"{reader.what}: secret-key entry {alias!r} is not supported; keep only certificates")
    raise TrustStoreError(f"{reader.what}: unknown entry type {tag} ({alias!r}); the keystore may be corrupt")


def read_jks(data: bytes, password: str | None, what: str = "keystore") -> list[x509.Certificate]:
    """The trusted-certificate entries of a JKS or JCEKS keystore, after checking its SHA-1 integrity digest.

    The digest is SHA-1 over the password (UTF-16BE), the salt ``Mighty Aphrodite`` and every byte before it. Without
    a password the check is skipped, as Java does when a truststore is loaded with a null password. Private key
    entries are stepped over (Java does not take them as anchors); JCEKS secret-key entries are Java-serialized
    objects we do not parse, so a keystore holding one is refused.
    """
    reader = _JksReader(data, what)
    magic, version = reader.u32(), reader.u32()
    if magic not in (JKS_MAGIC, JCEKS_MAGIC) or version not in (1, 2):
        raise TrustStoreError(f"{what}: not a JKS/JCEKS keystore (magic {magic:#x}, version {version})")
    ders = [entry for _ in range(reader.u32()) if (entry := _jks_entry(reader, magic, version)) is not None]
    body_end = reader.pos
    digest = reader.take(20)
    if reader.pos != len(data):
        raise TrustStoreError(f"{what}: {len(data) - reader.pos} unexpected bytes after the integrity digest")
    if password is not None:
        expected = hashlib.sha1(  # noqa: S324 - the JKS format defines its integrity check with SHA-1
            password.encode("utf-16-be") + b"Mighty Aphrodite" + data[:body_end]
        ).digest()
        if not hmac.compare_digest(expected, digest):
            raise TrustStoreError(f"{what}: integrity check failed: wrong password, or the keystore was modified")
    if not ders:
        raise TrustStoreError(f"{what}: holds no trusted certificate entries")
    certs = []
    for alias, der in ders:
        try:
            certs.append(x509.load_der_x509_certificate(der))
        except ValueError as exc:
            raise TrustStoreError(f"{what}: entry {alias!r} is not a valid certificate: {exc}") from None
    return certs


_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL)


def parse_certificates(data: bytes) -> list[x509.Certificate]:
    """Certificates from PEM (CERTIFICATE, TRUSTED CERTIFICATE, PKCS7 blocks; other blocks ignored), a DER
    certificate, or a DER PKCS#7 certs-only message (what AIA CA-issuer URLs serve as .p7c). ValueError if malformed."""
    blocks = _PEM_BLOCK.findall(data)
    if not blocks:
        if data[:1] != b"\x30":
            return []
        try:
            return [x509.load_der_x509_certificate(data)]
        except ValueError:
            try:
                return list(pkcs7.load_der_pkcs7_certificates(data))
            except ValueError:
                raise ValueError("neither a PEM file nor a DER certificate or PKCS#7 bundle") from None
    certs: list[x509.Certificate] = []
    for number, (label, body) in enumerate(blocks, start=1):
        try:
            der = binascii.a2b_base64(body)
            if label in (b"CERTIFICATE", b"X509 CERTIFICATE"):
                certs.append(x509.load_der_x509_certificate(der))
            elif label == b"TRUSTED CERTIFICATE":
                # An OpenSSL TRUSTED CERTIFICATE is the certificate, then its trust settings.
                if der[:1] != b"\x30":
                    raise ValueError("not DER")
                certs.append(x509.load_der_x509_certificate(first_element(der)))
            elif label == b"PKCS7":
                certs.extend(pkcs7.load_der_pkcs7_certificates(der))
        except (ValueError, binascii.Error) as exc:
            raise ValueError(f"PEM block {number} ({label.decode()}) is not a valid certificate: {exc}") from None
    return certs


def certificate_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def dedupe(certs: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    seen: set[bytes] = set()
    unique = []
    for cert in certs:
        der = certificate_der(cert)
        if der not in seen:
            seen.add(der)
            unique.append(cert)
    return unique
