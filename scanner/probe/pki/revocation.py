"""Revocation of the served chain: the stapled OCSP response, live OCSP queries and CRL downloads.

Every certificate of the chain except a self-signed root is checked against each OCSP responder named in its
AIA extension and each CRL named in its CRL distribution points, one ``RevocationResult`` per certificate,
source and URL. A source that could not be consulted says so, never silently: ``not_checked`` with the reason
("offline mode", "no OCSP URL", "no CRL distribution point", "issuer not available", a non-HTTP URL) or
``error`` with what went wrong (timeout, HTTP status, unparseable answer, bad signature).

An answer counts only when it is about this certificate and signed by its issuer (or, for OCSP, by a responder
the issuer delegated to with the OCSPSigning EKU), and when it is fresh: a thisUpdate in the future or a
nextUpdate in the past makes a ``good`` answer ``unknown``. A stale answer that says ``revoked`` stays
``revoked`` (revocation is permanent, RFC 5280 section 3.3) unless the reason is certificateHold.

All HTTP goes through the run's :class:`Fetcher`: bounded by its timeout, cached per run (OCSP requests carry
no nonce unless asked, so identical requests hit the cache), and skipped in offline mode.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPublicKeyTypes
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, SignatureAlgorithmOID

from scanner.facts import ErrorClass, Observed, OcspResponseFacts, RevocationResult, observed, unobserved
from scanner.probe.pki.fetch import Fetcher, FetchError

SOURCE = "tlsgate"
OCSP_REQUEST_TYPE = "application/ocsp-request"
CLOCK_SKEW = dt.timedelta(minutes=5)  # tolerated for thisUpdate/lastUpdate in the future and delegate validity
MAX_WORKERS = 8

Status = Literal["good", "revoked", "unknown", "not_checked", "error"]
State = Literal["good", "revoked", "unknown"]
Source = Literal["ocsp", "crl", "stapled_ocsp"]

_RESPONSE_STATUS = {
    ocsp.OCSPResponseStatus.SUCCESSFUL: "successful",
    ocsp.OCSPResponseStatus.MALFORMED_REQUEST: "malformedRequest",
    ocsp.OCSPResponseStatus.INTERNAL_ERROR: "internalError",
    ocsp.OCSPResponseStatus.TRY_LATER: "tryLater",
    ocsp.OCSPResponseStatus.SIG_REQUIRED: "sigRequired",
    ocsp.OCSPResponseStatus.UNAUTHORIZED: "unauthorized",
}
_CERT_STATUS: dict[ocsp.OCSPCertStatus, State] = {
    ocsp.OCSPCertStatus.GOOD: "good",
    ocsp.OCSPCertStatus.REVOKED: "revoked",
    ocsp.OCSPCertStatus.UNKNOWN: "unknown",
}


class _Problem(Exception):
    """An answer that cannot be used; the message goes into the facts."""


# -- small helpers --------------------------------------------------------------------------------------------


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def _sha256(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def _is_self_signed(cert: x509.Certificate) -> bool:
    return cert.subject == cert.issuer


def _issuer_key(cert: x509.Certificate) -> CertificateIssuerPublicKeyTypes | None:
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


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def find_issuer(cert: x509.Certificate, candidates: Sequence[x509.Certificate]) -> x509.Certificate | None:
    """The candidate whose name matches ``cert``'s issuer and whose key verifies its signature."""
    for candidate in candidates:
        if candidate is not cert and candidate.subject == cert.issuer and _issued_by(cert, candidate):
            return candidate
    return None


def _der_tlv(data: bytes, pos: int) -> tuple[int, int]:
    """(start of the value, its length) of the DER element at ``pos``."""
    length = data[pos + 1]
    if length < 0x80:
        return pos + 2, length
    count = length & 0x7F
    return pos + 2 + count, int.from_bytes(data[pos + 2 : pos + 2 + count], "big")


def _key_hash(cert: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    """Hash of the subjectPublicKey BIT STRING (without its unused-bits octet): OCSP CertID and byKey IDs."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    start, _ = _der_tlv(spki, 0)  # SubjectPublicKeyInfo SEQUENCE
    algorithm_start, algorithm_length = _der_tlv(spki, start)  # AlgorithmIdentifier
    bits_start, bits_length = _der_tlv(spki, algorithm_start + algorithm_length)  # subjectPublicKey BIT STRING
    digest = hashes.Hash(algorithm)
    digest.update(spki[bits_start + 1 : bits_start + bits_length])
    return digest.finalize()


def _name_hash(cert: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    digest = hashes.Hash(algorithm)
    digest.update(cert.subject.public_bytes())
    return digest.finalize()


def _signature_valid(
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


def _freshness(
    kind: str, this_update: dt.datetime | None, next_update: dt.datetime | None, now: dt.datetime
) -> str | None:
    """Why an answer is not current, or None when it is."""
    if this_update is not None and this_update > now + CLOCK_SKEW:
        return f"{kind} not yet valid: its thisUpdate {_iso(this_update)} is in the future"
    if next_update is not None and next_update < now:
        return f"stale {kind}: its nextUpdate {_iso(next_update)} has passed"
    return None


def _result(
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
        certificate=_sha256(cert),
        subject=_subject(cert),
        source=source,
        url=url,
        status=status,
        revoked_at=revoked_at,
        reason=reason,
        detail=detail,
    )


def _verdict(
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
            return _result(cert, source, url, "unknown", f"{stale} (it said: on hold since {revoked_at})")
        detail = f"{stale}; revocation is permanent" if stale else None
        return _result(cert, source, url, "revoked", detail, revoked_at=revoked_at, reason=reason)
    if state == "unknown":
        return _result(cert, source, url, "unknown", stale or "the responder does not know this certificate")
    if stale is not None:
        return _result(cert, source, url, "unknown", f"{stale} (it said: good)")
    return _result(cert, source, url, "good")


# -- OCSP -----------------------------------------------------------------------------------------------------


def _load_ocsp(data: bytes | ocsp.OCSPResponse) -> ocsp.OCSPResponse:
    if isinstance(data, ocsp.OCSPResponse):
        return data
    try:
        return ocsp.load_der_ocsp_response(data)
    except ValueError as exc:
        raise _Problem(f"unparseable OCSP response: {exc}") from None


def _responder_is(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    if response.responder_name is not None:
        return cert.subject == response.responder_name
    return response.responder_key_hash == _key_hash(cert, hashes.SHA1())  # noqa: S303 - byKey IDs are SHA-1


def _delegate_problem(responder: x509.Certificate, issuer: x509.Certificate, now: dt.datetime) -> str | None:
    if not _issued_by(responder, issuer):
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
                raise _Problem(f"the OCSP responder certificate {_subject(candidate)} {problem}")
            return candidate
    raise _Problem("the OCSP response is signed by neither the issuer nor a responder it delegated to")


def _verify_ocsp_signature(response: ocsp.OCSPResponse, issuer: x509.Certificate, now: dt.datetime) -> None:
    signer = _ocsp_signer(response, issuer, now)
    key = _issuer_key(signer)
    try:
        algorithm = response.signature_hash_algorithm
    except UnsupportedAlgorithm:
        algorithm = None
    if key is None or not _signature_valid(
        key, response.signature, response.tbs_response_bytes, algorithm, response.signature_algorithm_oid
    ):
        raise _Problem(f"the OCSP response signature does not verify with the key of {_subject(signer)}")


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
    raise _Problem(f"the OCSP response is not about this certificate (serial {cert.serial_number:x})")


def _read_ocsp(
    data: bytes | ocsp.OCSPResponse,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    now: dt.datetime,
    nonce: bytes | None = None,
) -> OcspResponseFacts:
    """Parse, authenticate and match an OCSP response; raises _Problem when it cannot be used."""
    response = _load_ocsp(data)
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise _Problem(f"the OCSP responder answered {_RESPONSE_STATUS[response.response_status]}")
    try:
        single = _single_response(response, cert, issuer)
        _verify_ocsp_signature(response, issuer, now)
        if nonce is not None:
            try:
                echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
            except x509.ExtensionNotFound:
                echoed = nonce  # RFC 8954: a responder may ignore the nonce
            if echoed != nonce:
                raise _Problem("the OCSP response carries another nonce than the request (a replay?)")
        state = _CERT_STATUS[single.certificate_status]
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
        raise _Problem(f"malformed OCSP response: {exc}") from None


def _ocsp_verdict(
    cert: x509.Certificate, source: Source, url: str | None, facts: OcspResponseFacts, now: dt.datetime
) -> RevocationResult:
    stale = _freshness("OCSP response", facts.this_update, facts.next_update, now)
    return _verdict(cert, source, url, facts.status, stale, facts.revoked_at, facts.revocation_reason)


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
    except _Problem as problem:
        return unobserved(ErrorClass.probe_failed, f"stapled OCSP response: {problem}", SOURCE)


def _ocsp_request(cert: x509.Certificate, issuer: x509.Certificate, nonce: bytes | None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())  # noqa: S303 - CertIDs use SHA-1
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def _check_ocsp(
    cert: x509.Certificate, issuer: x509.Certificate, url: str, fetcher: Fetcher, now: dt.datetime, use_nonce: bool
) -> RevocationResult:
    nonce = os.urandom(16) if use_nonce else None
    answer = fetcher.post(url, _ocsp_request(cert, issuer, nonce), OCSP_REQUEST_TYPE)
    if isinstance(answer, FetchError):
        return _fetch_failure(cert, "ocsp", answer)
    try:
        facts = _read_ocsp(answer, cert, issuer, now, nonce)
    except _Problem as problem:
        return _result(cert, "ocsp", url, "error", str(problem))
    return _ocsp_verdict(cert, "ocsp", url, facts, now)


# -- CRL ------------------------------------------------------------------------------------------------------


def _load_crl(data: bytes) -> x509.CertificateRevocationList:
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError as exc:
        raise _Problem(f"unparseable CRL: {exc}") from None


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
    key = _issuer_key(issuer)
    if crl.issuer != issuer.subject:
        raise _Problem(f"the CRL is issued by {crl.issuer.rfc4514_string()}, not by {_subject(issuer)}")
    try:
        signed = key is not None and crl.is_signature_valid(key)
    except (UnsupportedAlgorithm, TypeError, ValueError):
        signed = False
    if not signed:
        raise _Problem(f"the CRL signature does not verify with the key of {_subject(issuer)}")
    scope = _crl_scope_problem(crl, cert)
    if scope is not None:
        return _result(cert, "crl", url, "unknown", f"the CRL is {scope}")
    stale = _freshness("CRL", crl.last_update_utc, crl.next_update_utc, now)
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    if entry is None:
        return _verdict(cert, "crl", url, "good", stale, None, None)
    try:
        reason: str | None = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.value
    except x509.ExtensionNotFound:
        reason = None
    if reason == "removeFromCRL":  # only meaningful in delta CRLs: the certificate is no longer on hold
        return _verdict(cert, "crl", url, "good", stale, None, None)
    return _verdict(cert, "crl", url, "revoked", stale, entry.revocation_date_utc, reason)


def _check_crl(
    cert: x509.Certificate, issuer: x509.Certificate, url: str, fetcher: Fetcher, now: dt.datetime
) -> RevocationResult:
    answer = fetcher.get(url)
    if isinstance(answer, FetchError):
        return _fetch_failure(cert, "crl", answer)
    try:
        return _read_crl(answer, cert, issuer, url, now)
    except _Problem as problem:
        return _result(cert, "crl", url, "error", str(problem))


# -- the chain ------------------------------------------------------------------------------------------------


def _fetch_failure(cert: x509.Certificate, source: Source, failure: FetchError) -> RevocationResult:
    if failure.offline:
        return _result(cert, source, failure.url, "not_checked", "offline mode")
    return _result(cert, source, failure.url, "error", failure.reason)


def ocsp_urls(cert: x509.Certificate) -> list[str]:
    try:
        access = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [
        str(d.access_location.value)
        for d in access
        if d.access_method == x509.oid.AuthorityInformationAccessOID.OCSP
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
    ]


def crl_urls(cert: x509.Certificate) -> list[str]:
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    return [
        str(name.value)
        for point in points
        for name in point.full_name or []
        if isinstance(name, x509.UniformResourceIdentifier)
    ]


def _stapled_result(leaf: x509.Certificate, stapled: Observed[OcspResponseFacts], now: dt.datetime) -> RevocationResult:
    if stapled.status == "not_probed":
        return _result(leaf, "stapled_ocsp", None, "not_checked", "stapling not probed")
    if stapled.status == "error":
        message = stapled.error.message if stapled.error else "stapled OCSP response not usable"
        return _result(leaf, "stapled_ocsp", None, "error", message)
    if stapled.value is None:
        return _result(leaf, "stapled_ocsp", None, "not_checked", "no OCSP response stapled")
    return _ocsp_verdict(leaf, "stapled_ocsp", None, stapled.value, now)


Job = partial[RevocationResult]


def _jobs_for(
    cert: x509.Certificate,
    issuer: x509.Certificate | None,
    fetcher: Fetcher,
    now: dt.datetime,
    use_nonce: bool,
) -> list[Job]:
    jobs: list[Job] = []
    sources: list[tuple[Source, list[str], str]] = [
        ("ocsp", ocsp_urls(cert), "no OCSP URL"),
        ("crl", crl_urls(cert), "no CRL distribution point"),
    ]
    for source, urls, none_detail in sources:
        if not urls:
            jobs.append(partial(_result, cert, source, None, "not_checked", none_detail))
            continue
        for url in urls:
            if issuer is None:
                jobs.append(partial(_result, cert, source, url, "not_checked", "issuer not available"))
            elif not url.lower().startswith(("http://", "https://")):
                detail = "not fetched: only http and https URLs are"
                jobs.append(partial(_result, cert, source, url, "not_checked", detail))
            elif source == "ocsp":
                jobs.append(partial(_check_ocsp, cert, issuer, url, fetcher, now, use_nonce))
            else:
                jobs.append(partial(_check_crl, cert, issuer, url, fetcher, now))
    return jobs


def check_revocation(
    chain: Sequence[x509.Certificate],
    fetcher: Fetcher,
    *,
    stapled: Observed[OcspResponseFacts] | None = None,
    issuers: Sequence[x509.Certificate] = (),
    now: dt.datetime | None = None,
    ocsp_nonce: bool = False,
) -> list[RevocationResult]:
    """Revocation of each certificate of ``chain`` (as served, leaf first) by OCSP and CRL, leaf first.

    ``stapled`` (from :func:`stapled_ocsp`) adds a ``stapled_ocsp`` result for the leaf; it needs no network, so
    it is judged in offline mode too. ``issuers`` are more candidate issuers that are not themselves checked
    (trust anchors, intermediates fetched from AIA): servers rarely send the root, so without them the last
    certificate of a served chain is ``not_checked`` with "issuer not available". Self-signed certificates are
    skipped. ``ocsp_nonce`` sends a random nonce (and rejects a response echoing another one), which also
    defeats the per-run cache for OCSP.
    """
    moment = now or dt.datetime.now(dt.UTC)
    results: list[RevocationResult] = []
    if stapled is not None and chain:
        results.append(_stapled_result(chain[0], stapled, moment))
    candidates = [*chain, *issuers]
    jobs: list[Job] = []
    for cert in chain:
        if _is_self_signed(cert):
            continue
        jobs += _jobs_for(cert, find_issuer(cert, candidates), fetcher, moment, ocsp_nonce)
    fetching = [job for job in jobs if job.func in (_check_ocsp, _check_crl)]
    if len(fetching) > 1 and not fetcher.offline:
        with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(jobs)), thread_name_prefix="revocation") as pool:
            results += pool.map(lambda job: job(), jobs)
    else:
        # Nothing to fetch, or one request: threads would only cost (most chains have no URL for one of them).
        results += [job() for job in jobs]
    leaf = _sha256(chain[0]) if chain else None
    return [r.model_copy(update={"leaf": r.certificate == leaf}) for r in results]
