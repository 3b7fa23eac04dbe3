"""Trust stores: which anchors a :class:`TrustStoreSpec` names, loaded once per process.

The Mozilla store that sslyze bundles, the system store, a CA bundle file, an OpenSSL hashed CA directory, a Java
or PKCS#12 truststore, or pinned certificates.
"""

from __future__ import annotations

import os
import ssl
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.utils import CryptographyDeprecationWarning

from scanner.probe.pki.storefiles import (
    JCEKS_MAGIC,
    JKS_MAGIC,
    TrustStoreError,
    dedupe,
    load_capath,
    read_bundle,
    read_file,
    read_jks,
)

TrustStoreKind = Literal["mozilla", "system", "file", "capath", "truststore", "pin"]

TRUST_STORE_KINDS: tuple[str, ...] = get_args(TrustStoreKind)

_NEEDS_PATH = ("file", "capath", "truststore", "pin")

# Where distributions keep the system bundle, when Python's OpenSSL does not point at an existing one.
SYSTEM_BUNDLES = (
    Path("/etc/ssl/certs/ca-certificates.crt"),  # Debian, Ubuntu, Alpine, Arch
    Path("/etc/pki/tls/certs/ca-bundle.crt"),  # Fedora, RHEL, CentOS
    Path("/etc/ssl/ca-bundle.pem"),  # openSUSE
    Path("/etc/ssl/cert.pem"),  # macOS, BSDs, Alpine
)


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


_cache: dict[TrustStoreSpec, tuple[x509.Certificate, ...]] = {}

_cache_lock = threading.Lock()


def load_anchors(spec: TrustStoreSpec) -> list[x509.Certificate]:
    """The certificates of a store, deduplicated; loaded once per process (call it up front to validate a spec)."""
    with _cache_lock:
        if spec not in _cache:
            with warnings.catch_warnings():
                # Some bundled roots have a non-positive serial; cryptography warns about each of them.
                warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                certs = dedupe(_load(spec))
            if not certs:
                raise TrustStoreError(f"{spec.label}: holds no certificates")
            _cache[spec] = tuple(certs)
        return list(_cache[spec])


def _load(spec: TrustStoreSpec) -> list[x509.Certificate]:
    if spec.kind == "mozilla":
        from scanner.probe.sslyze_adapter import mozilla_store_path  # noqa: PLC0415 - sslyze is heavy; only this store needs it

        return read_bundle(mozilla_store_path(), "the bundled Mozilla store")
    if spec.kind == "system":
        return _load_system()
    if spec.path is None:  # TrustStoreSpec checks it; this narrows the type
        raise TrustStoreError(f"a {spec.kind} trust store needs a path")
    if spec.kind in ("file", "pin"):
        return read_bundle(spec.path, f"{spec.kind} {spec.path}")
    if spec.kind == "capath":
        return load_capath(spec.path)
    return _load_truststore(spec)


def _load_system() -> list[x509.Certificate]:
    paths = ssl.get_default_verify_paths()
    files = [Path(p) for p in (paths.cafile, paths.openssl_cafile) if p] + list(SYSTEM_BUNDLES)
    for candidate in files:
        if candidate.is_file():
            return read_bundle(candidate, f"the system store {candidate}")
    for directory in (paths.capath, paths.openssl_capath):
        if directory and Path(directory).is_dir():
            return load_capath(Path(directory))
    looked = ", ".join(str(p) for p in files)
    raise TrustStoreError(f"no system trust store found (looked for {looked}); name a CA file instead")


def _truststore_password(spec: TrustStoreSpec) -> str | None:
    if spec.password_env is not None:
        value = os.environ.get(spec.password_env)
        if value is None:
            raise TrustStoreError(
                f"truststore {spec.path}: environment variable {spec.password_env} (its password) is not set"
            )
        return value
    if spec.password_file is not None:
        text = read_file(spec.password_file, f"password file {spec.password_file} of truststore {spec.path}")
        lines = text.decode("utf-8", errors="strict").splitlines()
        return lines[0] if lines else ""
    return None


def _load_truststore(spec: TrustStoreSpec) -> list[x509.Certificate]:
    """A Java truststore: JKS or JCEKS (by their magic number, as Java does), else PKCS#12."""
    if spec.path is None:  # TrustStoreSpec checks it; this narrows the type
        raise TrustStoreError("a truststore needs a path")
    what = f"truststore {spec.path}"
    data = read_file(spec.path, what)
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
