"""Trust: does the chain a server sent lead to an anchor the user named, and if not, why not.

Anchors come from a :class:`TrustStoreSpec`: the Mozilla store that sslyze bundles, the system store, a CA bundle
file, an OpenSSL hashed CA directory, a Java/PKCS#12 truststore, or pinned certificates. :func:`evaluate_trust`
gives one :class:`~scanner.facts.TrustResult` per store (plus one for pins) and whether the served chain is complete.

Path building and the verdict are cryptography's (``cryptography.x509.verification``: the web PKI profile, with
the two relaxations in :func:`_policies`). When it says no, its message is often vague ("candidates exhausted"), so
the reason comes from our own checks of the path we build ourselves: an issuer that is neither served nor in the
store, a self-signed leaf, a signature that does not verify, SHA-1/MD5, validity against ``now``, the name. A
missing intermediate is fetched from the AIA CA-issuer URL (through the run's :class:`Fetcher`) and the path retried.

Store problems (a missing file, a wrong truststore password) raise :class:`TrustStoreError`; certificate content
problems never raise, they become reasons.
"""

from __future__ import annotations

import binascii
import contextlib
import functools
import hashlib
import hmac
import ipaddress
import itertools
import os
import re
import ssl
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, get_args

import idna
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import AuthorityInformationAccessOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    Subject,
    VerificationError,
)

from scanner.facts import NOT_PROBED, ErrorClass, Observed, TrustReason, TrustResult, observed, unobserved
from scanner.probe.pki.fetch import Fetcher, FetchError

SOURCE = "tlsgate"

TrustStoreKind = Literal["mozilla", "system", "file", "capath", "truststore", "pin"]
TRUST_STORE_KINDS: tuple[str, ...] = get_args(TrustStoreKind)
_NEEDS_PATH = ("file", "capath", "truststore", "pin")

MAX_AIA_FETCHES = 4  # a chain longer than this is not something a server "forgot"
MAX_PATH_LENGTH = 10
MAX_PATH_STEPS = 200  # certificates looked at while building one path
WEAK_SIGNATURE_HASHES = frozenset({"md2", "md4", "md5", "sha1"})
# Signature OIDs cryptography cannot name a hash for (it refuses MD2/MD4), still worth reporting as weak.
_LEGACY_SIGNATURE_HASHES = {
    "1.2.840.113549.1.1.2": "md2",
    "1.2.840.113549.1.1.3": "md4",
    "1.2.840.113549.1.1.4": "md5",
}

# Where distributions keep the system bundle, when Python's OpenSSL does not point at an existing one.
SYSTEM_BUNDLES = (
    Path("/etc/ssl/certs/ca-certificates.crt"),  # Debian, Ubuntu, Alpine, Arch
    Path("/etc/pki/tls/certs/ca-bundle.crt"),  # Fedora, RHEL, CentOS
    Path("/etc/ssl/ca-bundle.pem"),  # openSUSE
    Path("/etc/ssl/cert.pem"),  # macOS, BSDs, Alpine
)


class TrustStoreError(Exception):
    """A trust store (or pin) the user named cannot be used; the message says which and why, never a password."""


@dataclass(frozen=True)
class TrustStoreSpec:
    """One set of trust anchors the user named.

    ``password_env`` names an environment variable, ``password_file`` a file (its first line) holding the password
    of a ``truststore``; the password itself is never part of a spec, a label or a message.
    """

    kind: TrustStoreKind
    path: Path | None = None
    password_env: str | None = None
    password_file: Path | None = None

    def __post_init__(self) -> None:
        if self.kind not in TRUST_STORE_KINDS:
            raise TrustStoreError(f"unknown trust store kind {self.kind!r} (one of {', '.join(TRUST_STORE_KINDS)})")
        if self.kind in _NEEDS_PATH and self.path is None:
            raise TrustStoreError(f"a {self.kind} trust store needs a path")
        if self.kind not in _NEEDS_PATH and self.path is not None:
            raise TrustStoreError(f"the {self.kind} trust store takes no path")
        has_password = self.password_env is not None or self.password_file is not None
        if has_password and self.kind != "truststore":
            raise TrustStoreError(f"only a truststore takes a password, not a {self.kind} trust store")
        if self.password_env is not None and self.password_file is not None:
            raise TrustStoreError("give the truststore password by environment variable or by file, not both")

    @property
    def label(self) -> str:
        """The ``store`` of its results: ``mozilla``, ``system``, ``file:PATH``, ``capath:PATH``, ..."""
        return self.kind if self.path is None else f"{self.kind}:{self.path}"


@dataclass(frozen=True)
class Pin:
    sha256: str  # of the certificate's DER, lower-case hex without colons
    source: str  # where it came from, for details: "fingerprint" or the file


# --- loading anchors ----------------------------------------------------------------------------------------------

_cache: dict[TrustStoreSpec, tuple[x509.Certificate, ...]] = {}
_cache_lock = threading.Lock()


def load_anchors(spec: TrustStoreSpec) -> list[x509.Certificate]:
    """The certificates of a store, deduplicated; loaded once per process (call it up front to validate a spec)."""
    with _cache_lock:
        if spec not in _cache:
            with warnings.catch_warnings():
                # Some bundled roots have a non-positive serial; cryptography warns about each of them.
                warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                certs = _dedupe(_load(spec))
            if not certs:
                raise TrustStoreError(f"{spec.label}: holds no certificates")
            _cache[spec] = tuple(certs)
        return list(_cache[spec])


@dataclass(frozen=True)
class _Prepared:
    label: str
    store: Store  # cryptography's, for its verifier; immutable, so shared between threads
    index: _Anchors  # ours, for path building


_prepared: dict[TrustStoreSpec, _Prepared] = {}


def _prepare(spec: TrustStoreSpec) -> _Prepared:
    anchors = load_anchors(spec)
    with _cache_lock:
        if spec not in _prepared:
            _prepared[spec] = _Prepared(spec.label, Store(anchors), _Anchors(anchors))
        return _prepared[spec]


def _load(spec: TrustStoreSpec) -> list[x509.Certificate]:
    if spec.kind == "mozilla":
        return _read_bundle(mozilla_store_path(), "the bundled Mozilla store")
    if spec.kind == "system":
        return _load_system()
    if spec.path is None:  # TrustStoreSpec checks it; this narrows the type
        raise TrustStoreError(f"a {spec.kind} trust store needs a path")
    if spec.kind in ("file", "pin"):
        return _read_bundle(spec.path, f"{spec.kind} {spec.path}")
    if spec.kind == "capath":
        return _load_capath(spec.path)
    return _load_truststore(spec)


def mozilla_store_path() -> Path:
    """The Mozilla NSS roots that sslyze ships (the store its own validation uses), pinned by our sslyze version."""
    from sslyze.plugins.certificate_info.trust_stores.trust_store_repository import (  # noqa: PLC0415 - heavy
        TrustStoresRepository,
    )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        path = TrustStoresRepository.get_default().get_main_store().path
    return Path(path)


def _load_system() -> list[x509.Certificate]:
    paths = ssl.get_default_verify_paths()
    files = [Path(p) for p in (paths.cafile, paths.openssl_cafile) if p] + list(SYSTEM_BUNDLES)
    for candidate in files:
        if candidate.is_file():
            return _read_bundle(candidate, f"the system store {candidate}")
    for directory in (paths.capath, paths.openssl_capath):
        if directory and Path(directory).is_dir():
            return _load_capath(Path(directory))
    looked = ", ".join(str(p) for p in files)
    raise TrustStoreError(f"no system trust store found (looked for {looked}); name a CA file instead")


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise TrustStoreError(f"{what}: no such file") from None
    except IsADirectoryError:
        raise TrustStoreError(f"{what}: is a directory (a hashed CA directory is a capath store)") from None
    except OSError as exc:
        raise TrustStoreError(f"{what}: cannot be read: {exc.strerror}") from None


def _read_bundle(path: Path, what: str) -> list[x509.Certificate]:
    try:
        certs = parse_certificates(_read(path, what))
    except ValueError as exc:
        raise TrustStoreError(f"{what}: {exc}") from None
    if not certs:
        raise TrustStoreError(f"{what}: holds no certificates (expected PEM or DER)")
    return certs


_HASHED_NAME = re.compile(r"^[0-9a-f]{8}\.[0-9]+$")


def _load_capath(directory: Path) -> list[x509.Certificate]:
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
        certs.extend(_read_bundle(name, f"{what}: {name.name}"))
    return certs


def _truststore_password(spec: TrustStoreSpec) -> str | None:
    if spec.password_env is not None:
        value = os.environ.get(spec.password_env)
        if value is None:
            raise TrustStoreError(
                f"truststore {spec.path}: environment variable {spec.password_env} (its password) is not set"
            )
        return value
    if spec.password_file is not None:
        text = _read(spec.password_file, f"password file {spec.password_file} of truststore {spec.path}")
        lines = text.decode("utf-8", errors="strict").splitlines()
        return lines[0] if lines else ""
    return None


JKS_MAGIC = 0xFEEDFEED
JCEKS_MAGIC = 0xCECECECE


def _load_truststore(spec: TrustStoreSpec) -> list[x509.Certificate]:
    """A Java truststore: JKS or JCEKS (by their magic number, as Java does), else PKCS#12."""
    if spec.path is None:  # TrustStoreSpec checks it; this narrows the type
        raise TrustStoreError("a truststore needs a path")
    what = f"truststore {spec.path}"
    data = _read(spec.path, what)
    try:
        password = _truststore_password(spec)
    except UnicodeDecodeError:
        raise TrustStoreError(f"{what}: its password file is not UTF-8") from None
    if len(data) >= 4 and int.from_bytes(data[:4], "big") in (JKS_MAGIC, JCEKS_MAGIC):
        return read_jks(data, password, what)
    try:
        store = pkcs12.load_pkcs12(data, password.encode() if password is not None else None)
    except ValueError:
        raise TrustStoreError(
            f"{what}: cannot be opened: wrong password, or not a PKCS#12, JKS or JCEKS file"
            + ("" if password is not None else " (no password was given)")
        ) from None
    # Like Java's TrustManager, only certificates without a key are anchors; a key entry's certificate is not.
    certs = [entry.certificate for entry in store.additional_certs]
    if not certs:
        raise TrustStoreError(f"{what}: holds no trusted certificates (only a private key entry)")
    return certs


class _JksReader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    def take(self, size: int) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise TrustStoreError(f"{self.what}: truncated or corrupt keystore (at byte {self.pos})")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")

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


def _first_der_element(data: bytes) -> bytes:
    """The first DER TLV of ``data`` (an OpenSSL TRUSTED CERTIFICATE is the certificate, then its trust settings)."""
    if len(data) < 2 or data[0] != 0x30:
        raise ValueError("not DER")
    if data[1] < 0x80:
        return data[: 2 + data[1]]
    size = data[1] & 0x7F
    length = int.from_bytes(data[2 : 2 + size], "big")
    return data[: 2 + size + length]


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
                certs.append(x509.load_der_x509_certificate(_first_der_element(der)))
            elif label == b"PKCS7":
                certs.extend(pkcs7.load_der_pkcs7_certificates(der))
        except (ValueError, binascii.Error) as exc:
            raise ValueError(f"PEM block {number} ({label.decode()}) is not a valid certificate: {exc}") from None
    return certs


_HEX_PIN = re.compile(r"^[0-9a-f]{64}$")


def parse_pins(pins: Sequence[str]) -> list[Pin]:
    """Pins given as SHA-256 fingerprints (64 hex digits, colons and case ignored) or certificate files (PEM/DER,
    any number of certificates). Raises TrustStoreError for anything else."""
    parsed: list[Pin] = []
    for pin in pins:
        text = pin.strip()
        compact = text.replace(":", "").lower()
        if _HEX_PIN.match(compact):
            parsed.append(Pin(compact, "fingerprint"))
            continue
        path = Path(text)
        if not path.exists():
            raise TrustStoreError(
                f"pin {text!r} is neither a SHA-256 certificate fingerprint (64 hex digits) nor an existing file"
            )
        spec = TrustStoreSpec("pin", path)
        parsed.extend(Pin(_sha256(cert), str(path)) for cert in load_anchors(spec))
    return parsed


# --- certificates -------------------------------------------------------------------------------------------------


def _sha256(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _name(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def _dedupe(certs: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    seen: set[bytes] = set()
    unique = []
    for cert in certs:
        der = _der(cert)
        if der not in seen:
            seen.add(der)
            unique.append(cert)
    return unique


def _signed_by(child: x509.Certificate, parent: x509.Certificate) -> bool | None:
    """Whether ``parent``'s key verifies ``child``'s signature; None when that cannot be checked (unknown algorithm).

    Done by hand rather than with ``verify_directly_issued_by``, which refuses SHA-1: a SHA-1 signature that does
    verify is weak, one that does not is bad, and we want to tell which.
    """
    try:
        key = parent.public_key()
        digest = child.signature_hash_algorithm
        signature, tbs = child.signature, child.tbs_certificate_bytes
        if isinstance(key, rsa.RSAPublicKey) and digest is not None:
            params = _signature_parameters(child)
            key.verify(signature, tbs, params if isinstance(params, padding.PSS) else padding.PKCS1v15(), digest)
        elif isinstance(key, ec.EllipticCurvePublicKey) and digest is not None:
            # Built from the hash: cryptography gives no parameters for ecdsa-with-SHA1.
            key.verify(signature, tbs, ec.ECDSA(digest))
        elif isinstance(key, dsa.DSAPublicKey) and digest is not None:
            key.verify(signature, tbs, digest)
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey) and digest is None:
            key.verify(signature, tbs)
        else:
            return False  # the issuer's key type cannot have made this signature
    except InvalidSignature:
        return False
    except (UnsupportedAlgorithm, ValueError, TypeError):
        return None
    return True


def _signature_parameters(cert: x509.Certificate) -> object:
    try:
        return cert.signature_algorithm_parameters
    except (UnsupportedAlgorithm, ValueError):
        return None


def _signature_hash(cert: x509.Certificate) -> str | None:
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return _LEGACY_SIGNATURE_HASHES.get(cert.signature_algorithm_oid.dotted_string)
    return algorithm.name.lower() if algorithm is not None else None


def _self_issued(cert: x509.Certificate) -> bool:
    return cert.subject == cert.issuer


def _self_signed(cert: x509.Certificate) -> bool:
    return _self_issued(cert) and _signed_by(cert, cert) is not False


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _key_ids_agree(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    """False only when both key identifiers are there and differ: then ``issuer`` is a namesake, not the issuer."""
    aki = _extension(child, x509.AuthorityKeyIdentifier)
    ski = _extension(issuer, x509.SubjectKeyIdentifier)
    if not isinstance(aki, x509.AuthorityKeyIdentifier) or aki.key_identifier is None:
        return True
    if not isinstance(ski, x509.SubjectKeyIdentifier):
        return True
    return aki.key_identifier == ski.digest


def _ca_issuer_urls(cert: x509.Certificate) -> list[str]:
    aia = _extension(cert, x509.AuthorityInformationAccess)
    if not isinstance(aia, x509.AuthorityInformationAccess):
        return []
    return [
        d.access_location.value
        for d in aia
        if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
    ]


def _san_names(cert: x509.Certificate) -> list[x509.GeneralName]:
    san = _extension(cert, x509.SubjectAlternativeName)
    if not isinstance(san, x509.SubjectAlternativeName):
        return []
    return [n for n in san if isinstance(n, x509.DNSName | x509.IPAddress)]


def _describe(cert: x509.Certificate, position: int, anchor: bool) -> str:
    role = "trust anchor" if anchor else "leaf" if position == 0 else "intermediate"
    return f"{role} {_name(cert)}"


# --- path building ------------------------------------------------------------------------------------------------


class _Anchors:
    """A store's certificates, indexed for issuer lookup; a served certificate with an anchor's name and key is it."""

    def __init__(self, certs: Sequence[x509.Certificate]) -> None:
        self.certs = list(certs)
        self.by_der = {_der(c): c for c in certs}
        self.by_name_key = {(c.subject.public_bytes(), _spki(c)): c for c in certs}
        self.by_subject: dict[bytes, list[x509.Certificate]] = {}
        for cert in certs:
            self.by_subject.setdefault(cert.subject.public_bytes(), []).append(cert)

    def match(self, cert: x509.Certificate) -> x509.Certificate | None:
        found = self.by_der.get(_der(cert))
        return found or self.by_name_key.get((cert.subject.public_bytes(), _spki(cert)))

    def issuers(self, cert: x509.Certificate) -> list[x509.Certificate]:
        return self.by_subject.get(cert.issuer.public_bytes(), [])


@dataclass
class _Built:
    path: list[x509.Certificate]  # leaf first; ends with the anchor when one was reached
    anchor: x509.Certificate | None = None


def _build(leaf: x509.Certificate, pool: Sequence[x509.Certificate], anchors: _Anchors) -> _Built:
    """Our own path building, by names and key identifiers: it goes as far as it can, so that where it stops says
    why a chain is not trusted. Signatures only order the candidates; a link whose signature fails is still taken
    (and reported as a bad signature) when there is no other."""

    def ranked(cert: x509.Certificate, candidates: list[x509.Certificate]) -> list[x509.Certificate]:
        matching = [c for c in candidates if c.subject == cert.issuer and _key_ids_agree(cert, c)]
        return sorted(matching, key=lambda c: _signed_by(cert, c) is not True)

    budget = [MAX_PATH_STEPS]  # a hostile server may send many namesakes: bound the search, not just its depth

    def walk(path: list[x509.Certificate]) -> _Built:
        cert = path[-1]
        anchor = anchors.match(cert)
        if anchor is not None:
            return _Built([*path[:-1], anchor], anchor)
        budget[0] -= 1
        if len(path) >= MAX_PATH_LENGTH or budget[0] <= 0 or _self_signed(cert):
            return _Built(path)
        in_path = {_der(c) for c in path}
        from_store = ranked(cert, anchors.issuers(cert))
        if from_store:
            return _Built([*path, from_store[0]], from_store[0])
        best = _Built(path)
        for issuer in ranked(cert, [c for c in pool if _der(c) not in in_path]):
            found = walk([*path, issuer])
            if found.anchor is not None:
                return found
            if len(found.path) > len(best.path):
                best = found
        return best

    return walk([leaf])


def _complete(built: _Built) -> bool:
    return built.anchor is not None or _self_signed(built.path[-1])


# --- verification -------------------------------------------------------------------------------------------------


def _ca_key_usage(policy: Policy, cert: x509.Certificate, usage: x509.KeyUsage | None) -> None:
    if usage is not None and not usage.key_cert_sign:
        raise ValueError("a CA certificate's key usage does not allow keyCertSign")


@functools.cache
def _policies() -> tuple[ExtensionPolicy, ExtensionPolicy]:
    """cryptography's web PKI profile, relaxed where RFC 5280 clients (OpenSSL, Java) accept what private PKIs
    commonly issue: the Authority Key Identifier may be absent (self-signed leaves, older CAs), and a CA certificate
    may lack Key Usage (``openssl req -x509`` makes such roots), though when present it must allow keyCertSign."""
    ca = (
        ExtensionPolicy.webpki_defaults_ca()
        .may_be_present(x509.AuthorityKeyIdentifier, Criticality.AGNOSTIC, None)
        .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, _ca_key_usage)
    )
    ee = ExtensionPolicy.webpki_defaults_ee().may_be_present(x509.AuthorityKeyIdentifier, Criticality.AGNOSTIC, None)
    return ca, ee


_LOCATION = re.compile(r" \(encountered processing <Certificate\(subject=<Name\((.*?)\)>, \.\.\.\)>\)")


def _verify(
    store: Store, leaf: x509.Certificate, pool: list[x509.Certificate], subject: Subject, now: datetime
) -> tuple[list[x509.Certificate] | None, str]:
    """(path, "") when cryptography builds a valid path for ``subject``; (None, its message) when not."""
    ca_policy, ee_policy = _policies()
    try:
        verifier = (
            PolicyBuilder()
            .store(store)
            .time(now)
            .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
            .build_server_verifier(subject)
        )
        return verifier.verify(leaf, pool), ""
    except VerificationError as exc:
        return None, _LOCATION.sub(r" (at \1)", str(exc))
    except ValueError as exc:
        return None, str(exc)


def _subject(name: str) -> Subject:
    host = name.strip().removeprefix("[").removesuffix("]")
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        pass
    host = host.rstrip(".").lower()
    if not host.isascii():
        with contextlib.suppress(idna.IDNAError):
            host = idna.encode(host, uts46=True).decode("ascii")  # certificates hold A-labels (IDNA 2008)
    return x509.DNSName(host)


def _own_name(leaf: x509.Certificate) -> Subject:
    """A name the leaf does hold, to verify everything but the name; a placeholder when it holds none."""
    for general in _san_names(leaf):
        if isinstance(general, x509.DNSName):
            return x509.DNSName(
                "tlsgate-probe" + general.value[1:] if general.value.startswith("*.") else general.value
            )
        if isinstance(general, x509.IPAddress) and not isinstance(
            general.value, ipaddress.IPv4Network | ipaddress.IPv6Network
        ):
            return general
    return x509.DNSName("no-subject-alt-name.invalid")


def _display(subject: Subject) -> str:
    return str(subject.value)


@dataclass
class _Aia:
    fetched: list[x509.Certificate] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was fetched
    failure: str | None = None  # why the last needed fetch did not help


def _fetch_issuer(cert: x509.Certificate, fetcher: Fetcher, aia: _Aia) -> x509.Certificate | None:
    urls = _ca_issuer_urls(cert)
    problems = []
    for url in urls:
        got = fetcher.get(url)
        if isinstance(got, FetchError):
            verb = "was skipped" if got.offline else "failed"
            problems.append(f"the AIA CA-issuer fetch of {url} {verb} ({got.reason})")
            continue
        try:
            certs = parse_certificates(got)
        except ValueError:
            certs = []
        issuers = [c for c in certs if c.subject == cert.issuer and _signed_by(cert, c) is not False]
        if issuers:
            aia.notes.append(f"{_name(issuers[0])} was fetched from the AIA CA-issuer URL {url}")
            return issuers[0]
        problems.append(f"the AIA CA-issuer URL {url} did not serve the issuer of {_name(cert)}")
    aia.failure = "; ".join(problems) or None
    return None


def _complete_via_aia(
    leaf: x509.Certificate, pool: list[x509.Certificate], anchors: _Anchors, fetcher: Fetcher
) -> tuple[_Built, _Aia]:
    aia = _Aia()
    built = _build(leaf, pool, anchors)
    for _ in range(MAX_AIA_FETCHES):
        top = built.path[-1]
        if _complete(built) or not _ca_issuer_urls(top):
            break
        issuer = _fetch_issuer(top, fetcher, aia)
        if issuer is None or any(_der(issuer) == _der(c) for c in [*pool, *aia.fetched]):
            break
        aia.fetched.append(issuer)
        built = _build(leaf, [*pool, *aia.fetched], anchors)
    return built, aia


def _uses_fetched(path: Sequence[x509.Certificate], aia: _Aia) -> bool:
    """Whether a fetched intermediate (not a fetched root) made it into the path."""
    fetched = {_der(c) for c in aia.fetched}
    return any(_der(c) in fetched and not _self_signed(c) for c in path)


def _diagnose_unanchored(built: _Built, aia: _Aia) -> tuple[TrustReason, str]:
    """Why the path we built stops short of the store: self-signed, unknown issuer or missing intermediate."""
    top = built.path[-1]
    if _self_issued(top) and _signed_by(top, top) is False:
        return "bad_signature", f"the self-signature of {_name(top)} does not verify"
    if _self_signed(top):
        if len(built.path) == 1:
            return "self_signed", f"the leaf {_name(top)} is self-signed and not in the store"
        return "unknown_issuer", f"the root {_name(top)} the chain leads to is not in the store"
    issuer = top.issuer.rfc4514_string()
    if _ca_issuer_urls(top):
        # Its issuer is published for download: an intermediate the server should have sent.
        detail = f"the issuer {issuer} of {_name(top)} was not served and is not in the store"
        return "missing_intermediate", detail + (f"; {aia.failure}" if aia.failure else "")
    return "unknown_issuer", f"the issuer {issuer} of {_name(top)} is neither served nor in the store"


def _diagnose(
    built: _Built, aia: _Aia, name: Subject | None, retry: tuple[Store, list[x509.Certificate], datetime], error: str
) -> tuple[TrustReason, str]:
    """Why cryptography said no, from the path we built ourselves; ``error`` (its message) when nothing we check."""
    path = built.path
    if built.anchor is None:
        return _diagnose_unanchored(built, aia)
    for position, (child, parent) in enumerate(itertools.pairwise(path)):
        if _signed_by(child, parent) is False:
            return "bad_signature", (
                f"the signature of the {_describe(child, position, False)} does not verify with the key of "
                f"{_name(parent)}"
            )
    for position, cert in enumerate(path[:-1]):
        digest = _signature_hash(cert)
        if digest in WEAK_SIGNATURE_HASHES:
            return "weak_signature_hash", f"the {_describe(cert, position, False)} is signed with {digest.upper()}"
    store, pool, now = retry
    for position, cert in enumerate(path):
        role = _describe(cert, position, cert is built.anchor)
        if now > cert.not_valid_after_utc:
            return "expired", f"the {role} expired on {cert.not_valid_after_utc.isoformat()}"
        if now < cert.not_valid_before_utc:
            return "not_yet_valid", f"the {role} is not valid before {cert.not_valid_before_utc.isoformat()}"
    if name is not None:
        verified, _ = _verify(store, path[0], pool, _own_name(path[0]), now)
        if verified is not None:
            held = ", ".join(str(n.value) for n in _san_names(path[0])) or "no names"
            return "name_mismatch", f"the leaf is for {held}, not {_display(name)}"
    return "invalid", error or "the chain was rejected"


def _evaluate_store(
    prepared: _Prepared, chain: list[x509.Certificate], name: Subject | None, fetcher: Fetcher, now: datetime
) -> TrustResult:
    label, store, index = prepared.label, prepared.store, prepared.index
    leaf, pool = chain[0], _dedupe(chain[1:])
    subject = name if name is not None else _own_name(leaf)
    verified, error = _verify(store, leaf, pool, subject, now)
    if verified is not None:
        return _trusted(label, verified)
    built, aia = _complete_via_aia(leaf, pool, index, fetcher)
    extended = [*pool, *aia.fetched]
    if aia.fetched:
        verified, error = _verify(store, leaf, extended, subject, now)
        if verified is not None:
            return _trusted(label, verified, aia)
    reason, detail = _diagnose(built, aia, name, (store, extended, now), error)
    return TrustResult(
        store=label,
        trusted=False,
        path=[_sha256(c) for c in built.path],
        reason=reason,
        detail="; ".join([*aia.notes, detail]),
        completed_via_aia=_uses_fetched(built.path, aia),
    )


def _trusted(label: str, path: list[x509.Certificate], aia: _Aia | None = None) -> TrustResult:
    via_aia = aia is not None and _uses_fetched(path, aia)
    return TrustResult(
        store=label,
        trusted=True,
        anchor=_name(path[-1]),
        path=[_sha256(c) for c in path],
        detail="; ".join(aia.notes) if aia is not None and via_aia else None,
        completed_via_aia=via_aia,
    )


def _evaluate_pins(chain: list[x509.Certificate], pins: list[Pin]) -> TrustResult:
    """Trusted when a served certificate is pinned and the leaf chains to it through served certificates (so a
    pinned intermediate cannot be appended to an unrelated leaf)."""
    wanted = {p.sha256: p for p in pins}
    pinned = [c for c in chain if _sha256(c) in wanted]
    if not pinned:
        return TrustResult(
            store="pin",
            trusted=False,
            reason="not_pinned",
            detail=f"none of the {len(chain)} served certificates matches any of the {len(wanted)} pins",
        )
    built = _build(chain[0], _dedupe(chain[1:]), _Anchors(pinned))
    if built.anchor is None:
        return TrustResult(
            store="pin",
            trusted=False,
            path=[_sha256(c) for c in built.path],
            reason="not_pinned",
            detail=f"{_name(pinned[0])} is pinned and was served, but the leaf does not chain to it",
        )
    for child, parent in itertools.pairwise(built.path):
        if _signed_by(child, parent) is False:
            return TrustResult(
                store="pin",
                trusted=False,
                path=[_sha256(c) for c in built.path],
                reason="bad_signature",
                detail=f"the signature of {_name(child)} does not verify with the key of the pinned {_name(parent)}",
            )
    pin = wanted[_sha256(built.anchor)]
    return TrustResult(
        store="pin",
        trusted=True,
        anchor=_name(built.anchor),
        path=[_sha256(c) for c in built.path],
        detail=f"{_name(built.anchor)} matches the pin {pin.sha256} ({pin.source})",
    )


def evaluate_trust(
    chain: list[x509.Certificate],
    name: str | None,
    specs: list[TrustStoreSpec],
    pins: list[str],
    fetcher: Fetcher,
    now: datetime,
) -> tuple[list[TrustResult], Observed[bool]]:
    """One result per store in ``specs``, then one ``pin`` result for ``pins`` and all ``pin`` specs together;
    and whether the served chain, without fetching, reaches an anchor of the first store (or a root it includes).

    ``chain`` is as served, leaf first; ``name`` the host the client asked for (None: no name check). Raises
    TrustStoreError only for a store or pin that cannot be loaded (validate them with :func:`load_anchors` and
    :func:`parse_pins` before scanning; they are cached).
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    stores = [s for s in specs if s.kind != "pin"]
    all_pins = parse_pins(pins) + [
        Pin(_sha256(cert), str(spec.path)) for spec in specs if spec.kind == "pin" for cert in load_anchors(spec)
    ]
    loaded = [_prepare(spec) for spec in stores]
    has_pins = bool(pins) or len(stores) < len(specs)
    if not chain:
        labels = [p.label for p in loaded] + (["pin"] if has_pins else [])
        results = [
            TrustResult(store=label, trusted=False, reason="invalid", detail="the server sent no certificate")
            for label in labels
        ]
        return results, unobserved(ErrorClass.probe_failed, "the server sent no certificate", SOURCE)
    subject = _subject(name) if name else None
    results = []
    for prepared in loaded:
        try:
            results.append(_evaluate_store(prepared, chain, subject, fetcher, now))
        except (ValueError, TypeError, UnsupportedAlgorithm, x509.DuplicateExtension) as exc:
            # A certificate too malformed for cryptography to look at is a verdict, not a crash.
            detail = f"the chain cannot be evaluated: {type(exc).__name__}: {exc}"
            results.append(TrustResult(store=prepared.label, trusted=False, reason="invalid", detail=detail))
    if has_pins:
        results.append(_evaluate_pins(chain, all_pins))
    complete: Observed[bool] = NOT_PROBED
    if loaded:
        try:
            complete = observed(_complete(_build(chain[0], _dedupe(chain[1:]), loaded[0].index)), SOURCE)
        except (ValueError, TypeError, UnsupportedAlgorithm, x509.DuplicateExtension) as exc:
            complete = unobserved(ErrorClass.probe_failed, f"the chain cannot be followed: {exc}", SOURCE)
    return results, complete
