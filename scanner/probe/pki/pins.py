"""Pinned certificates: SHA-256 fingerprints or certificate files, and the verdict of a served chain against them."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from scanner.facts import TrustResult
from scanner.probe.pki.paths import Anchors, build_path, fingerprint, signed_by, subject_text
from scanner.probe.pki.storefiles import TrustStoreError, dedupe
from scanner.probe.pki.stores import TrustStoreSpec, load_anchors


@dataclass(frozen=True)
class Pin:
    sha256: str  # of the certificate's DER, lower-case hex without colons
    source: str  # where it came from, for details: "fingerprint" or the file


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
        parsed.extend(Pin(fingerprint(cert), str(path)) for cert in load_anchors(spec))
    return parsed


def evaluate_pins(chain: list[x509.Certificate], pins: list[Pin]) -> TrustResult:
    """Trusted when a served certificate is pinned and the leaf chains to it through served certificates (so a
    pinned intermediate cannot be appended to an unrelated leaf)."""
    wanted = {p.sha256: p for p in pins}
    pinned = [c for c in chain if fingerprint(c) in wanted]
    if not pinned:
        return TrustResult(
            store="pin",
            trusted=False,
            reason="not_pinned",
            detail=f"none of the {len(chain)} served certificates matches any of the {len(wanted)} pins",
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
    pin = wanted[fingerprint(built.anchor)]
    return TrustResult(
        store="pin",
        trusted=True,
        anchor=subject_text(built.anchor),
        path=[fingerprint(c) for c in built.path],
        detail=f"{subject_text(built.anchor)} matches the pin {pin.sha256} ({pin.source})",
    )
