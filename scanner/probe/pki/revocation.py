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

The readers are in ``ocsp`` and ``crl``; what an answer means is in ``answers``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from cryptography import x509

from scanner.facts import Observed, OcspResponseFacts, RevocationResult
from scanner.probe.pki.answers import IssuerIndex, Source, find_issuer, fingerprint, is_self_signed, result
from scanner.probe.pki.crl import check_crl
from scanner.probe.pki.fetch import Fetcher
from scanner.probe.pki.ocsp import check_ocsp, ocsp_verdict
from scanner.probe.pki.paths import access_urls, extension

MAX_WORKERS = 8


def ocsp_urls(cert: x509.Certificate) -> list[str]:
    return access_urls(cert, x509.oid.AuthorityInformationAccessOID.OCSP)


def crl_urls(cert: x509.Certificate) -> list[str]:
    points = extension(cert, x509.CRLDistributionPoints)
    if points is None:
        return []
    return [
        str(name.value)
        for point in points
        for name in point.full_name or []
        if isinstance(name, x509.UniformResourceIdentifier)
    ]


def _stapled_result(leaf: x509.Certificate, stapled: Observed[OcspResponseFacts], now: dt.datetime) -> RevocationResult:
    if stapled.status == "not_probed":
        return result(leaf, "stapled_ocsp", None, "not_checked", "stapling not probed")
    if stapled.status == "error":
        message = stapled.error.message if stapled.error else "stapled OCSP response not usable"
        return result(leaf, "stapled_ocsp", None, "error", message)
    if stapled.value is None:
        return result(leaf, "stapled_ocsp", None, "not_checked", "no OCSP response stapled")
    return ocsp_verdict(leaf, "stapled_ocsp", None, stapled.value, now)


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
            jobs.append(partial(result, cert, source, None, "not_checked", none_detail))
            continue
        for url in urls:
            if issuer is None:
                jobs.append(partial(result, cert, source, url, "not_checked", "issuer not available"))
            elif not url.lower().startswith(("http://", "https://")):
                detail = "not fetched: only http and https URLs are"
                jobs.append(partial(result, cert, source, url, "not_checked", detail))
            elif source == "ocsp":
                jobs.append(partial(check_ocsp, cert, issuer, url, fetcher, now, use_nonce))
            else:
                jobs.append(partial(check_crl, cert, issuer, url, fetcher, now))
    return jobs


def check_revocation(
    chain: Sequence[x509.Certificate],
    fetcher: Fetcher,
    *,
    stapled: Observed[OcspResponseFacts] | None = None,
    issuers: Sequence[x509.Certificate] | IssuerIndex = (),
    now: dt.datetime | None = None,
    ocsp_nonce: bool = False,
) -> list[RevocationResult]:
    """Revocation of each certificate of ``chain`` (as served, leaf first) by OCSP and CRL, leaf first.

    ``stapled`` (from :func:`stapled_ocsp`) adds a ``stapled_ocsp`` result for the leaf; it needs no network, so
    it is judged in offline mode too. ``issuers`` are more candidate issuers that are not themselves checked
    (trust anchors, intermediates fetched from AIA; a run passes its anchors as an :class:`IssuerIndex` built
    once): servers rarely send the root, so without them the last certificate of a served chain is
    ``not_checked`` with "issuer not available". Self-signed certificates are skipped. ``ocsp_nonce`` sends a
    random nonce (and rejects a response echoing another one), which also defeats the per-run cache for OCSP.
    """
    moment = now or dt.datetime.now(dt.UTC)
    results: list[RevocationResult] = []
    if stapled is not None and chain:
        results.append(_stapled_result(chain[0], stapled, moment))
    more = issuers if isinstance(issuers, IssuerIndex) else IssuerIndex(issuers)
    jobs: list[Job] = []
    for cert in chain:
        if is_self_signed(cert):
            continue
        jobs += _jobs_for(cert, find_issuer(cert, chain, more), fetcher, moment, ocsp_nonce)
    fetching = [job for job in jobs if job.func in (check_ocsp, check_crl)]
    if len(fetching) > 1 and not fetcher.offline:
        with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(jobs)), thread_name_prefix="revocation") as pool:
            results += pool.map(lambda job: job(), jobs)
    else:
        # Nothing to fetch, or one request: threads would only cost (most chains have no URL for one of them).
        results += [job() for job in jobs]
    leaf = fingerprint(chain[0]) if chain else None
    return [r.model_copy(update={"leaf": r.certificate == leaf}) for r in results]
