"""CRLs (RFC 5280): one downloaded from a distribution point, checked for scope, signature and freshness."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from scanner.facts import RevocationResult
from scanner.probe.pki.answers import Problem, fetch_failure, freshness, issuer_key, result, subject_text, verdict
from scanner.probe.pki.fetch import Fetcher, FetchError


def _load_crl(data: bytes) -> x509.CertificateRevocationList:
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError as exc:
        raise Problem(f"unparseable CRL: {exc}") from None


def _crl_scope_problem(crl: x509.CertificateRevocationList, cert: x509.Certificate) -> str | None:
    """Why this CRL cannot speak for ``cert`` (a delta CRL, an indirect or partitioned one), or None."""
    try:
        crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
        return "a delta CRL, and the base CRL is not known"
    except x509.ExtensionNotFound:
        pass
    try:
        point = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    except x509.ExtensionNotFound:
        return None
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if point.indirect_crl:
        return "an indirect CRL, which is not supported"
    if point.only_some_reasons is not None:
        return "a CRL partitioned by reason, which is not supported"
    if point.only_contains_user_certs and is_ca:
        return "a CRL that covers end-entity certificates only"
    if point.only_contains_ca_certs and not is_ca:
        return "a CRL that covers CA certificates only"
    if point.only_contains_attribute_certs:
        return "a CRL that covers attribute certificates only"
    return None


def _read_crl(
    data: bytes, cert: x509.Certificate, issuer: x509.Certificate, url: str, now: dt.datetime
) -> RevocationResult:
    crl = _load_crl(data)
    key = issuer_key(issuer)
    if crl.issuer != issuer.subject:
        raise Problem(f"the CRL is issued by {crl.issuer.rfc4514_string()}, not by {subject_text(issuer)}")
    try:
        signed = key is not None and crl.is_signature_valid(key)
    except (UnsupportedAlgorithm, TypeError, ValueError):
        signed = False
    if not signed:
        raise Problem(f"the CRL signature does not verify with the key of {subject_text(issuer)}")
    scope = _crl_scope_problem(crl, cert)
    if scope is not None:
        return result(cert, "crl", url, "unknown", f"the CRL is {scope}")
    stale = freshness("CRL", crl.last_update_utc, crl.next_update_utc, now)
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    if entry is None:
        return verdict(cert, "crl", url, "good", stale, None, None)
    try:
        reason: str | None = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.value
    except x509.ExtensionNotFound:
        reason = None
    if reason == "removeFromCRL":  # only meaningful in delta CRLs: the certificate is no longer on hold
        return verdict(cert, "crl", url, "good", stale, None, None)
    return verdict(cert, "crl", url, "revoked", stale, entry.revocation_date_utc, reason)


def check_crl(
    cert: x509.Certificate, issuer: x509.Certificate, url: str, fetcher: Fetcher, now: dt.datetime
) -> RevocationResult:
    answer = fetcher.get(url)
    if isinstance(answer, FetchError):
        return fetch_failure(cert, "crl", answer)
    try:
        return _read_crl(answer, cert, issuer, url, now)
    except Problem as problem:
        return result(cert, "crl", url, "error", str(problem))
