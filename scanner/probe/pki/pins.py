"""Pinned certificates and keys, and the verdict of a served chain against them.

A pin is one of:

- a certificate pin: the SHA-256 of a certificate's DER, written as 64 hex digits (colons and case ignored:
  ``openssl x509 -noout -fingerprint -sha256`` and ``certificate.leaf.sha256`` both work), or every certificate
  of a PEM/DER file;
- a key pin: the SHA-256 of a SubjectPublicKeyInfo in base64, the HPKP form (RFC 7469 section 2.4), with or
  without its ``pin-sha256=`` prefix and quotes (``sha256/`` as OkHttp writes it is accepted too). It survives
  a certificate renewal that keeps the key.

A file that holds no certificate is read as text: one pin a line, blank lines and ``#`` comments skipped.
Each pin matches any certificate the server sent (leaf or intermediate), by its DER or by its key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from scanner.facts import TrustResult
from scanner.probe.pki.paths import Anchors, build_path, fingerprint, signed_by, subject_text
from scanner.probe.pki.storefiles import TrustStoreError, dedupe, parse_certificates, read_file

ACCEPTED_FORMS = (
    "a certificate's SHA-256 as 64 hex digits (colons and case ignored), a key's SHA-256 in base64 as HPKP "
    'writes it (pin-sha256="...", the prefix and quotes optional), or a PEM/DER certificate file or a text '
    "file of such pins, one a line"
)

_HEX = re.compile(r"^[0-9a-f]{64}$")
_BASE64 = re.compile(r"^[A-Za-z0-9+/]{43}=$")  # 32 bytes
_PREFIXES = re.compile(r"^(pin-sha256\s*=\s*|sha256/)", re.IGNORECASE)


@dataclass(frozen=True)
class Pin:
    kind: Literal["certificate", "key"]
    sha256: str  # of the certificate's DER or of its SubjectPublicKeyInfo, lower-case hex without colons
    source: str  # where it came from, for details: "fingerprint", "pin-sha256" or the file

    def text(self) -> str:
        if self.kind == "key":
            return f'pin-sha256="{base64.b64encode(bytes.fromhex(self.sha256)).decode()}"'
        return self.sha256


def spki_sha256(cert: x509.Certificate) -> str:
    """The SHA-256 of the certificate's SubjectPublicKeyInfo (what an HPKP pin-sha256 is the base64 of)."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def parse_pin_text(text: str) -> Pin | None:
    """One pin written as text, or None when ``text`` is no pin form at all."""
    compact = text.strip().replace(":", "").lower()
    if _HEX.match(compact):
        return Pin("certificate", compact, "fingerprint")
    value = _PREFIXES.sub("", text.strip()).strip().strip("\"'")
    if _BASE64.match(value):
        try:
            return Pin("key", base64.b64decode(value, validate=True).hex(), "pin-sha256")
        except binascii.Error:
            return None
    return None


def _pins_of_file(path: Path) -> list[Pin]:
    data = read_file(path, f"pin file {path}")
    try:
        certs = parse_certificates(data)
    except ValueError as exc:
        raise TrustStoreError(f"pin file {path}: {exc}") from None
    if certs:
        return [Pin("certificate", fingerprint(cert), str(path)) for cert in certs]
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise TrustStoreError(f"pin file {path}: neither certificates nor text; a pin is {ACCEPTED_FORMS}") from None
    pins = []
    for number, line in enumerate(lines, 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        pin = parse_pin_text(entry)
        if pin is None:
            raise TrustStoreError(f"pin file {path}, line {number}: {entry!r} is not a pin; a pin is {ACCEPTED_FORMS}")
        pins.append(Pin(pin.kind, pin.sha256, f"{path}:{number}"))
    if not pins:
        raise TrustStoreError(f"pin file {path}: holds no pins; a pin is {ACCEPTED_FORMS}")
    return pins


def parse_pins(pins: Sequence[str]) -> list[Pin]:
    """Pins given on the command line (see the module). Raises TrustStoreError, naming the accepted forms, for
    anything else."""
    parsed: list[Pin] = []
    for pin in pins:
        written = parse_pin_text(pin)
        if written is not None:
            parsed.append(written)
            continue
        path = Path(pin.strip())
        if not path.exists():
            raise TrustStoreError(
                f"pin {pin.strip()!r} is neither a pin nor an existing file; a pin is {ACCEPTED_FORMS}"
            )
        parsed.extend(_pins_of_file(path))
    return parsed


def _matching(cert: x509.Certificate, pins: Sequence[Pin]) -> Pin | None:
    digests = {"certificate": fingerprint(cert), "key": spki_sha256(cert)}
    return next((p for p in pins if digests[p.kind] == p.sha256), None)


def evaluate_pins(chain: list[x509.Certificate], pins: list[Pin]) -> TrustResult:
    """Trusted when a served certificate is pinned (by its DER or its key) and the leaf chains to it through served
    certificates (so a pinned intermediate cannot be appended to an unrelated leaf)."""
    pinned = [c for c in chain if _matching(c, pins) is not None]
    if not pinned:
        return TrustResult(
            store="pin",
            trusted=False,
            reason="not_pinned",
            detail=f"none of the {len(chain)} served certificates matches any of the {len(set(pins))} pins",
        )
    built = build_path(chain[0], dedupe(chain[1:]), Anchors(pinned))
    if built.anchor is None:
        return TrustResult(
            store="pin",
            trusted=False,
            path=[fingerprint(c) for c in built.path],
            reason="not_pinned",
            detail=f"{subject_text(pinned[0])} is pinned and was served, but the leaf does not chain to it",
        )
    for child, parent in itertools.pairwise(built.path):
        if signed_by(child, parent) is False:
            return TrustResult(
                store="pin",
                trusted=False,
                path=[fingerprint(c) for c in built.path],
                reason="bad_signature",
                detail=(
                    f"the signature of {subject_text(child)} does not verify"
                    f" with the key of the pinned {subject_text(parent)}"
                ),
            )
    anchor = subject_text(built.anchor)
    detail = f"{anchor} is pinned"
    pin = _matching(built.anchor, pins)  # never None: the anchor is one of the pinned certificates
    if pin is not None:
        whose = f"the key of {anchor}" if pin.kind == "key" else anchor
        detail = f"{whose} matches the pin {pin.text()} ({pin.source})"
    return TrustResult(
        store="pin", trusted=True, anchor=anchor, path=[fingerprint(c) for c in built.path], detail=detail
    )
