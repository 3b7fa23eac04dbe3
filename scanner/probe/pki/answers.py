"""What an OCSP or CRL answer means: the issuer that must have signed it, its freshness, its verdict.

Shared by the OCSP and CRL readers; the rules are in the ``revocation`` module docstring.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Sequence
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPublicKeyTypes
from cryptography.x509 import ocsp
from cryptography.x509.oid import SignatureAlgorithmOID

from scanner.facts import RevocationResult
from scanner.probe.pki.fetch import FetchError
from scanner.probe.pki.paths import CHECKS_CACHED, self_issued

SOURCE = "tlsgate"

CLOCK_SKEW = dt.timedelta(minutes=5)  # tolerated for thisUpdate/lastUpdate in the future and delegate validity

Status = Literal["good", "revoked", "unknown", "not_checked", "error"]

State = Literal["good", "revoked", "unknown"]

Source = Literal["ocsp", "crl", "stapled_ocsp"]

CERT_STATUS: dict[ocsp.OCSPCertStatus, State] = {
    ocsp.OCSPCertStatus.GOOD: "good",
    ocsp.OCSPCertStatus.REVOKED: "revoked",
    ocsp.OCSPCertStatus.UNKNOWN: "unknown",
}


class Problem(Exception):
    """An answer that cannot be used; the message goes into the facts."""


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def subject_text(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def is_self_signed(cert: x509.Certificate) -> bool:
    return self_issued(cert)


def issuer_key(cert: x509.Certificate) -> CertificateIssuerPublicKeyTypes | None:
    key = cert.public_key()
    if isinstance(
        key,
        rsa.RSAPublicKey
        | ec.EllipticCurvePublicKey
        | dsa.DSAPublicKey
        | ed25519.Ed25519PublicKey
        | ed448.Ed448PublicKey,
    ):
        return key
    return None


@functools.lru_cache(maxsize=CHECKS_CACHED)  # see paths.CHECKS_CACHED
def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


class IssuerIndex:
    """Candidate issuers (a run's trust anchors) by subject name, built once and shared by every target.

    cryptography builds a new ``Name`` each time a certificate's subject is read, so comparing a certificate's
    issuer with each of some 150 anchors, for each certificate of each target, was most of the certificate
    analysis of a scan. Keyed by ``Name``, whose equality is the one :func:`find_issuer` uses (attribute types and
    values, not the DER bytes); namesakes keep the order they were given in.
    """

    def __init__(self, certs: Iterable[x509.Certificate] = ()) -> None:
        self._by_subject: dict[x509.Name, list[x509.Certificate]] = {}
        for cert in certs:
            self._by_subject.setdefault(cert.subject, []).append(cert)

    def named(self, name: x509.Name) -> list[x509.Certificate]:
        return self._by_subject.get(name, [])


def find_issuer(
    cert: x509.Certificate, candidates: Sequence[x509.Certificate], more: IssuerIndex | None = None
) -> x509.Certificate | None:
    """The first of ``candidates``, then of ``more``, whose name matches ``cert``'s issuer and whose key verifies
    its signature."""
    issuer = cert.issuer
    named = [candidate for candidate in candidates if candidate.subject == issuer]
    if more is not None:
        named += more.named(issuer)
    for candidate in named:
        if candidate is not cert and issued_by(cert, candidate):
            return candidate
    return None


def signature_valid(
    key: CertificateIssuerPublicKeyTypes,
    signature: bytes,
    data: bytes,
    algorithm: hashes.HashAlgorithm | None,
    algorithm_oid: x509.ObjectIdentifier,
) -> bool:
    try:
        if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        elif algorithm is None:
            return False
        elif isinstance(key, rsa.RSAPublicKey):
            pad: padding.AsymmetricPadding = padding.PKCS1v15()
            if algorithm_oid == SignatureAlgorithmOID.RSASSA_PSS:
                pad = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.AUTO)
            key.verify(signature, data, pad, algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(algorithm))
        else:
            key.verify(signature, data, algorithm)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def freshness(
    kind: str, this_update: dt.datetime | None, next_update: dt.datetime | None, now: dt.datetime
) -> str | None:
    """Why an answer is not current, or None when it is."""
    if this_update is not None and this_update > now + CLOCK_SKEW:
        return f"{kind} not yet valid: its thisUpdate {_iso(this_update)} is in the future"
    if next_update is not None and next_update < now:
        return f"stale {kind}: its nextUpdate {_iso(next_update)} has passed"
    return None


def result(
    cert: x509.Certificate,
    source: Source,
    url: str | None,
    status: Status,
    detail: str | None = None,
    *,
    revoked_at: dt.datetime | None = None,
    reason: str | None = None,
) -> RevocationResult:
    return RevocationResult(
        certificate=fingerprint(cert),
        subject=subject_text(cert),
        source=source,
        url=url,
        status=status,
        revoked_at=revoked_at,
        reason=reason,
        detail=detail,
    )


def verdict(
    cert: x509.Certificate,
    source: Source,
    url: str | None,
    state: State,
    stale: str | None,
    revoked_at: dt.datetime | None,
    reason: str | None,
) -> RevocationResult:
    """One answer as a result, staleness applied (see the module docstring)."""
    if state == "revoked":
        if stale is not None and reason == "certificateHold":
            return result(cert, source, url, "unknown", f"{stale} (it said: on hold since {revoked_at})")
        detail = f"{stale}; revocation is permanent" if stale else None
        return result(cert, source, url, "revoked", detail, revoked_at=revoked_at, reason=reason)
    if state == "unknown":
        return result(cert, source, url, "unknown", stale or "the responder does not know this certificate")
    if stale is not None:
        return result(cert, source, url, "unknown", f"{stale} (it said: good)")
    return result(cert, source, url, "good")


def fetch_failure(cert: x509.Certificate, source: Source, failure: FetchError) -> RevocationResult:
    if failure.offline:
        return result(cert, source, failure.url, "not_checked", "offline mode")
    return result(cert, source, failure.url, "error", failure.reason)
