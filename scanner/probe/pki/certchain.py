"""The served chain as a compliance officer reads it: every certificate, name match, order, trust per store,
stapled OCSP and live revocation. One function over what sslyze received."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

from cryptography import x509
from cryptography.x509 import ocsp

from scanner.facts import CertificateFacts
from scanner.probe.pki.answers import IssuerIndex, find_issuer
from scanner.probe.pki.certificates import chain_facts, name_check
from scanner.probe.pki.fetch import Fetcher
from scanner.probe.pki.lints import certificate_lints
from scanner.probe.pki.ocsp import stapled_ocsp
from scanner.probe.pki.revocation import check_revocation
from scanner.probe.pki.stores import TrustStoreSpec, load_anchors
from scanner.probe.pki.trust import evaluate_trust

MOZILLA = TrustStoreSpec(kind="mozilla")


@dataclass(frozen=True)
class CertificateOptions:
    stores: tuple[TrustStoreSpec, ...] = (MOZILLA,)
    pins: tuple[str, ...] = ()
    revocation: bool = True  # live OCSP and CRL checks (stapled responses are always read)
    anchors: tuple[x509.Certificate, ...] = field(default=(), compare=False)  # loaded once per run, for issuers

    @cached_property
    def anchor_index(self) -> IssuerIndex:
        """``anchors`` by subject, built on first use: every target looks the issuers of its chain up in them."""
        return IssuerIndex(self.anchors)


def with_anchors(options: CertificateOptions) -> CertificateOptions:
    """Load every store once (raises TrustStoreError for the CLI to report before any scanning)."""
    anchors = [cert for spec in options.stores for cert in load_anchors(spec)]
    return CertificateOptions(options.stores, options.pins, options.revocation, tuple(anchors))


def analyse(
    chain: Sequence[x509.Certificate],
    stapled: ocsp.OCSPResponse | None,
    name: str | None,
    options: CertificateOptions,
    fetcher: Fetcher,
    now: datetime | None = None,
    *,
    check_name: bool = True,
) -> CertificateFacts:
    """Everything about a served chain for the target ``name``. ``check_name`` False judges trust by the chain
    alone (peers identified by their DN, as MQ channels are); ``hostname_match`` is reported either way."""
    now = now or datetime.now(UTC)
    served = list(chain)
    certificates, _, order = chain_facts(served, name, now)
    names = name_check(served[0], name)
    trust_name = name if check_name else None
    trust, complete = evaluate_trust(served, trust_name, list(options.stores), list(options.pins), fetcher, now)
    issuer = find_issuer(served[0], served[1:], options.anchor_index)
    stapled_fact = stapled_ocsp(stapled, served[0], issuer, now=now)
    if options.revocation:
        revocation = check_revocation(served, fetcher, stapled=stapled_fact, issuers=options.anchor_index, now=now)
    else:
        revocation = []
    return CertificateFacts(
        status="ok",
        leaf=certificates[0],
        chain=certificates,
        hostname_match=names.match,
        hostname_mismatch=names.mismatch,
        hostname_match_cn_only=names.cn_only,
        chain_order_valid=order,
        chain_complete=complete,
        trust=trust,
        lints=certificate_lints(served),
        trust_name=trust_name,
        ocsp_stapled=stapled_fact,
        revocation=revocation,
    )
