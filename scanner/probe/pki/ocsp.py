"""OCSP: the stapled response and live queries (RFC 6960), read and judged against the certificate's issuer."""

from __future__ import annotations

import datetime as dt
import os

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from scanner.facts import ErrorClass, Observed, OcspResponseFacts, RevocationResult, observed, unobserved
from scanner.probe.pki.answers import (
    CERT_STATUS,
    CLOCK_SKEW,
    SOURCE,
    Problem,
    Source,
    fetch_failure,
    freshness,
    issued_by,
    issuer_key,
    result,
    signature_valid,
    subject_text,
    verdict,
)
from scanner.probe.pki.fetch import Fetcher, FetchError
from scanner.probe.wire import der

OCSP_REQUEST_TYPE = "application/ocsp-request"

_RESPONSE_STATUS = {
    ocsp.OCSPResponseStatus.SUCCESSFUL: "successful",
    ocsp.OCSPResponseStatus.MALFORMED_REQUEST: "malformedRequest",
    ocsp.OCSPResponseStatus.INTERNAL_ERROR: "internalError",
    ocsp.OCSPResponseStatus.TRY_LATER: "tryLater",
    ocsp.OCSPResponseStatus.SIG_REQUIRED: "sigRequired",
    ocsp.OCSPResponseStatus.UNAUTHORIZED: "unauthorized",
}


def _key_hash(cert: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    """Hash of the subjectPublicKey BIT STRING (without its unused-bits octet): OCSP CertID and byKey IDs."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    _, fields, _ = der.element(spki)  # SubjectPublicKeyInfo SEQUENCE: AlgorithmIdentifier, subjectPublicKey
    _, bits = der.children(fields)[1]
    digest = hashes.Hash(algorithm)
    digest.update(bits[1:])
    return digest.finalize()


def _name_hash(cert: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    digest = hashes.Hash(algorithm)
    digest.update(cert.subject.public_bytes())
    return digest.finalize()


def _load_ocsp(data: bytes | ocsp.OCSPResponse) -> ocsp.OCSPResponse:
    if isinstance(data, ocsp.OCSPResponse):
        return data
    try:
        return ocsp.load_der_ocsp_response(data)
    except ValueError as exc:
        raise Problem(f"unparseable OCSP response: {exc}") from None


def _responder_is(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    if response.responder_name is not None:
        return cert.subject == response.responder_name
    return response.responder_key_hash == _key_hash(cert, hashes.SHA1())  # noqa: S303 - byKey IDs are SHA-1


def _delegate_problem(responder: x509.Certificate, issuer: x509.Certificate, now: dt.datetime) -> str | None:
    if not issued_by(responder, issuer):
        return "is not issued by the certificate's issuer"
    try:
        eku = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return "has no OCSPSigning extended key usage"
    if ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
        return "has no OCSPSigning extended key usage"
    if not responder.not_valid_before_utc - CLOCK_SKEW <= now <= responder.not_valid_after_utc:
        return "is not valid now"
    return None


def _ocsp_signer(response: ocsp.OCSPResponse, issuer: x509.Certificate, now: dt.datetime) -> x509.Certificate:
    """The certificate entitled to have signed ``response``: the issuer, or a responder it delegated to."""
    if _responder_is(response, issuer):
        return issuer
    for candidate in response.certificates:
        if _responder_is(response, candidate):
            problem = _delegate_problem(candidate, issuer, now)
            if problem is not None:
                raise Problem(f"the OCSP responder certificate {subject_text(candidate)} {problem}")
            return candidate
    raise Problem("the OCSP response is signed by neither the issuer nor a responder it delegated to")


def _verify_ocsp_signature(response: ocsp.OCSPResponse, issuer: x509.Certificate, now: dt.datetime) -> None:
    signer = _ocsp_signer(response, issuer, now)
    key = issuer_key(signer)
    try:
        algorithm = response.signature_hash_algorithm
    except UnsupportedAlgorithm:
        algorithm = None
    if key is None or not signature_valid(
        key, response.signature, response.tbs_response_bytes, algorithm, response.signature_algorithm_oid
    ):
        raise Problem(f"the OCSP response signature does not verify with the key of {subject_text(signer)}")


def _single_response(
    response: ocsp.OCSPResponse, cert: x509.Certificate, issuer: x509.Certificate
) -> ocsp.OCSPSingleResponse:
    for single in response.responses:
        if (
            single.serial_number == cert.serial_number
            and single.issuer_key_hash == _key_hash(issuer, single.hash_algorithm)
            and single.issuer_name_hash == _name_hash(issuer, single.hash_algorithm)
        ):
            return single
    raise Problem(f"the OCSP response is not about this certificate (serial {cert.serial_number:x})")


def _read_ocsp(
    data: bytes | ocsp.OCSPResponse,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    now: dt.datetime,
    nonce: bytes | None = None,
) -> OcspResponseFacts:
    """Parse, authenticate and match an OCSP response; raises Problem when it cannot be used."""
    response = _load_ocsp(data)
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise Problem(f"the OCSP responder answered {_RESPONSE_STATUS[response.response_status]}")
    try:
        single = _single_response(response, cert, issuer)
        _verify_ocsp_signature(response, issuer, now)
        if nonce is not None:
            try:
                echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
            except x509.ExtensionNotFound:
                echoed = nonce  # RFC 8954: a responder may ignore the nonce
            if echoed != nonce:
                raise Problem("the OCSP response carries another nonce than the request (a replay?)")
        state = CERT_STATUS[single.certificate_status]
        reason = single.revocation_reason
        return OcspResponseFacts(
            status=state,
            produced_at=response.produced_at_utc,
            this_update=single.this_update_utc,
            next_update=single.next_update_utc,
            revoked_at=single.revocation_time_utc,
            revocation_reason=reason.value if reason is not None else None,
        )
    except (ValueError, UnsupportedAlgorithm) as exc:  # a malformed field cryptography only notices when read
        raise Problem(f"malformed OCSP response: {exc}") from None


def ocsp_verdict(
    cert: x509.Certificate, source: Source, url: str | None, facts: OcspResponseFacts, now: dt.datetime
) -> RevocationResult:
    stale = freshness("OCSP response", facts.this_update, facts.next_update, now)
    return verdict(cert, source, url, facts.status, stale, facts.revoked_at, facts.revocation_reason)


def stapled_ocsp(
    response: bytes | ocsp.OCSPResponse | None,
    leaf: x509.Certificate,
    issuer: x509.Certificate | None,
    *,
    now: dt.datetime | None = None,
) -> Observed[OcspResponseFacts]:
    """The stapled OCSP response as facts: ok with value None when none was stapled; error when it cannot be
    parsed, is not about the leaf, or is not signed by the leaf's issuer or a responder it delegated to.

    ``response`` is DER or cryptography's ``OCSPResponse`` (what sslyze hands over). Freshness is not judged
    here (the facts carry the dates); :func:`check_revocation` judges it for the ``stapled_ocsp`` result.
    """
    if response is None:
        return Observed[OcspResponseFacts](status="ok", value=None, source=SOURCE)
    if issuer is None:
        return unobserved(
            ErrorClass.probe_failed, "issuer not available: the stapled OCSP response cannot be verified", SOURCE
        )
    try:
        return observed(_read_ocsp(response, leaf, issuer, now or dt.datetime.now(dt.UTC)), SOURCE)
    except Problem as problem:
        return unobserved(ErrorClass.probe_failed, f"stapled OCSP response: {problem}", SOURCE)


def _ocsp_request(cert: x509.Certificate, issuer: x509.Certificate, nonce: bytes | None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())  # noqa: S303 - CertIDs use SHA-1
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def check_ocsp(
    cert: x509.Certificate, issuer: x509.Certificate, url: str, fetcher: Fetcher, now: dt.datetime, use_nonce: bool
) -> RevocationResult:
    nonce = os.urandom(16) if use_nonce else None
    answer = fetcher.post(url, _ocsp_request(cert, issuer, nonce), OCSP_REQUEST_TYPE)
    if isinstance(answer, FetchError):
        return fetch_failure(cert, "ocsp", answer)
    try:
        facts = _read_ocsp(answer, cert, issuer, now, nonce)
    except Problem as problem:
        return result(cert, "ocsp", url, "error", str(problem))
    return ocsp_verdict(cert, "ocsp", url, facts, now)
