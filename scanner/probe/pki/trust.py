"""Trust: does the chain a server sent lead to an anchor the user named, and if not, why not.

:func:`evaluate_trust` gives one :class:`~scanner.facts.TrustResult` per store (``stores``) plus one for pins
(``pins``) and whether the served chain is complete.

Path building and the verdict are cryptography's (``cryptography.x509.verification``: the web PKI profile, with
the two relaxations in :func:`_policies`). When it says no, its message is often vague ("candidates exhausted"), so
the reason comes from our own checks of the path we build ourselves (``paths``): an issuer that is neither served nor
in the store, a self-signed leaf, a signature that does not verify, SHA-1/MD5, validity against ``now``, the name. A
missing intermediate is fetched from the AIA CA-issuer URL (through the run's :class:`Fetcher`) and the path retried.

Store problems (a missing file, a wrong truststore password) raise :class:`TrustStoreError`; certificate content
problems never raise, they become reasons.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import itertools
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import idna
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
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
from scanner.probe.pki.paths import (
    WEAK_SIGNATURE_HASHES,
    Anchors,
    BuiltPath,
    build_path,
    ca_issuer_urls,
    ca_leaf,
    describe,
    extension,
    fingerprint,
    first_non_ca,
    lacks_server_auth,
    name_constraint_violation,
    path_complete,
    path_length_violation,
    san_names,
    self_issued,
    self_signed,
    signature_hash,
    signed_by,
    subject_text,
)
from scanner.probe.pki.pins import Pin, evaluate_pins, parse_pins
from scanner.probe.pki.storefiles import certificate_der, dedupe, parse_certificates
from scanner.probe.pki.stores import TrustStoreSpec, load_anchors

SOURCE = "tlsgate"

MAX_AIA_FETCHES = 4  # a chain longer than this is not something a server "forgot"


@dataclass(frozen=True)
class _Prepared:
    label: str
    store: Store  # cryptography's, for its verifier; immutable, so shared between threads
    index: Anchors  # ours, for path building


_prepared: dict[TrustStoreSpec, _Prepared] = {}
_prepared_lock = threading.Lock()


def _prepare(spec: TrustStoreSpec) -> _Prepared:
    anchors = load_anchors(spec)
    with _prepared_lock:
        if spec not in _prepared:
            _prepared[spec] = _Prepared(spec.label, Store(anchors), Anchors(anchors))
        return _prepared[spec]


def _ca_key_usage(policy: Policy, cert: x509.Certificate, usage: x509.KeyUsage | None) -> None:
    if usage is not None and not usage.key_cert_sign:
        raise ValueError("a CA certificate's key usage does not allow keyCertSign")


def _ca_constraints(policy: Policy, cert: x509.Certificate, constraints: x509.BasicConstraints) -> None:
    if not constraints.ca:
        raise ValueError("basicConstraints does not assert cA")


@functools.cache
def _policies() -> tuple[ExtensionPolicy, ExtensionPolicy]:
    """cryptography's web PKI profile, relaxed to what OpenSSL's verifier and browsers accept (docs/trust.md).

    RFC 5280 and the CA/B BRs ask CAs for a critical basicConstraints, a (critical) keyUsage, SKI and AKI; clients
    do not refuse a chain that lacks them, so neither do we: criticality is not judged, the Authority Key
    Identifier may be absent and a CA certificate may lack keyUsage (when present it must allow keyCertSign).
    What clients do enforce stays: a CA certificate must assert cA. cryptography insists on basicConstraints even
    in a root, where OpenSSL would take a root without them whose keyUsage allows keyCertSign (a documented
    difference). The deviations are reported as lints (``lints``), for packs to judge.
    """
    ca = (
        ExtensionPolicy.webpki_defaults_ca()
        .require_present(x509.BasicConstraints, Criticality.AGNOSTIC, _ca_constraints)
        .may_be_present(x509.AuthorityKeyIdentifier, Criticality.AGNOSTIC, None)
        .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, _ca_key_usage)
    )
    ee = (
        ExtensionPolicy.webpki_defaults_ee()
        .may_be_present(x509.AuthorityKeyIdentifier, Criticality.AGNOSTIC, None)
        .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, None)
    )
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
    for general in san_names(leaf):
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
    urls = ca_issuer_urls(cert)
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
        issuers = [c for c in certs if c.subject == cert.issuer and signed_by(cert, c) is not False]
        if issuers:
            aia.notes.append(f"{subject_text(issuers[0])} was fetched from the AIA CA-issuer URL {url}")
            return issuers[0]
        problems.append(f"the AIA CA-issuer URL {url} did not serve the issuer of {subject_text(cert)}")
    aia.failure = "; ".join(problems) or None
    return None


def _complete_via_aia(
    leaf: x509.Certificate, pool: list[x509.Certificate], anchors: Anchors, fetcher: Fetcher
) -> tuple[BuiltPath, _Aia]:
    aia = _Aia()
    built = build_path(leaf, pool, anchors)
    for _ in range(MAX_AIA_FETCHES):
        top = built.path[-1]
        if path_complete(built) or not ca_issuer_urls(top):
            break
        issuer = _fetch_issuer(top, fetcher, aia)
        if issuer is None or any(certificate_der(issuer) == certificate_der(c) for c in [*pool, *aia.fetched]):
            break
        aia.fetched.append(issuer)
        built = build_path(leaf, [*pool, *aia.fetched], anchors)
    return built, aia


def _uses_fetched(path: Sequence[x509.Certificate], aia: _Aia) -> bool:
    """Whether a fetched intermediate (not a fetched root) made it into the path."""
    fetched = {certificate_der(c) for c in aia.fetched}
    return any(certificate_der(c) in fetched and not self_signed(c) for c in path)


def _diagnose_unanchored(built: BuiltPath, aia: _Aia) -> tuple[TrustReason, str]:
    """Why the path we built stops short of the store: self-signed, unknown issuer or missing intermediate."""
    top = built.path[-1]
    if self_issued(top) and signed_by(top, top) is False:
        return "bad_signature", f"the self-signature of {subject_text(top)} does not verify"
    if self_signed(top):
        if len(built.path) == 1:
            return "self_signed", f"the leaf {subject_text(top)} is self-signed and not in the store"
        return "unknown_issuer", f"the root {subject_text(top)} the chain leads to is not in the store"
    issuer = top.issuer.rfc4514_string()
    if ca_issuer_urls(top):
        # Its issuer is published for download: an intermediate the server should have sent.
        detail = f"the issuer {issuer} of {subject_text(top)} was not served and is not in the store"
        return "missing_intermediate", detail + (f"; {aia.failure}" if aia.failure else "")
    return "unknown_issuer", f"the issuer {issuer} of {subject_text(top)} is neither served nor in the store"


def _constraint_reason(path: list[x509.Certificate]) -> tuple[TrustReason, str] | None:
    """A constraint of the path that OpenSSL and browsers enforce: issuers are CAs, path lengths, the server
    purpose, name constraints."""
    non_ca = first_non_ca(path)
    if non_ca is not None:
        position, cert = non_ca
        return "not_a_ca", f"the {describe(cert, position, position == len(path) - 1)} is not a CA (basicConstraints)"
    too_long = path_length_violation(path)
    if too_long is not None:
        position, cert, below = too_long
        return "path_length_exceeded", (
            f"the {describe(cert, position, position == len(path) - 1)} allows a path length of "
            f"{_path_length(cert)}, {below} intermediate(s) follow it"
        )
    if ca_leaf(path[0]):
        return "wrong_purpose", f"the leaf {subject_text(path[0])} is a CA certificate (basicConstraints cA)"
    for position, cert in enumerate(path[:-1]):
        if lacks_server_auth(cert):
            return "wrong_purpose", f"the extended key usage of the {describe(cert, position, False)} lacks serverAuth"
    breach = name_constraint_violation(path)
    if breach is not None:
        cert, how = breach
        return "name_constraints_violated", f"the name constraints of {subject_text(cert)} are broken: {how}"
    return None


def _path_length(cert: x509.Certificate) -> int | None:
    constraints = extension(cert, x509.BasicConstraints)
    return None if constraints is None else constraints.path_length


def _diagnose(
    built: BuiltPath, aia: _Aia, name: Subject | None, retry: tuple[Store, list[x509.Certificate], datetime], error: str
) -> tuple[TrustReason, str]:
    """Why cryptography said no, from the path we built ourselves; ``error`` (its message) when nothing we check."""
    path = built.path
    if built.anchor is None:
        return _diagnose_unanchored(built, aia)
    for position, (child, parent) in enumerate(itertools.pairwise(path)):
        if signed_by(child, parent) is False:
            return "bad_signature", (
                f"the signature of the {describe(child, position, False)} does not verify with the key of "
                f"{subject_text(parent)}"
            )
    for position, cert in enumerate(path[:-1]):
        digest = signature_hash(cert)
        if digest in WEAK_SIGNATURE_HASHES:
            return "weak_signature_hash", f"the {describe(cert, position, False)} is signed with {digest.upper()}"
    constraint = _constraint_reason(path)
    if constraint is not None:
        return constraint
    store, pool, now = retry
    for position, cert in enumerate(path):
        role = describe(cert, position, cert is built.anchor)
        if now > cert.not_valid_after_utc:
            return "expired", f"the {role} expired on {cert.not_valid_after_utc.isoformat()}"
        if now < cert.not_valid_before_utc:
            return "not_yet_valid", f"the {role} is not valid before {cert.not_valid_before_utc.isoformat()}"
    if name is not None:
        if extension(path[0], x509.SubjectAlternativeName) is None:
            # Clients match names in the subjectAltName only (RFC 9525); the CN-ID fallback is gone.
            return "name_mismatch", (
                f"the leaf has no subjectAltName, so it is for no name: its subject {subject_text(path[0])} is not "
                f"matched against {_display(name)}"
            )
        verified, _ = _verify(store, path[0], pool, _own_name(path[0]), now)
        if verified is not None:
            held = ", ".join(str(n.value) for n in san_names(path[0])) or "no names"
            return "name_mismatch", f"the leaf is for {held}, not {_display(name)}"
    return "invalid", error or "the chain was rejected"


def _evaluate_store(
    prepared: _Prepared, chain: list[x509.Certificate], name: Subject | None, fetcher: Fetcher, now: datetime
) -> TrustResult:
    label, store, index = prepared.label, prepared.store, prepared.index
    leaf, pool = chain[0], dedupe(chain[1:])
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
        path=[fingerprint(c) for c in built.path],
        reason=reason,
        detail="; ".join([*aia.notes, detail]),
        completed_via_aia=_uses_fetched(built.path, aia),
    )


def _trusted(label: str, path: list[x509.Certificate], aia: _Aia | None = None) -> TrustResult:
    via_aia = aia is not None and _uses_fetched(path, aia)
    return TrustResult(
        store=label,
        trusted=True,
        anchor=subject_text(path[-1]),
        path=[fingerprint(c) for c in path],
        detail="; ".join(aia.notes) if aia is not None and via_aia else None,
        completed_via_aia=via_aia,
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
        Pin("certificate", fingerprint(cert), str(spec.path))
        for spec in specs
        if spec.kind == "pin"
        for cert in load_anchors(spec)
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
        results.append(evaluate_pins(chain, all_pins))
    complete: Observed[bool] = NOT_PROBED
    if loaded:
        try:
            complete = observed(path_complete(build_path(chain[0], dedupe(chain[1:]), loaded[0].index)), SOURCE)
        except (ValueError, TypeError, UnsupportedAlgorithm, x509.DuplicateExtension) as exc:
            complete = unobserved(ErrorClass.probe_failed, f"the chain cannot be followed: {exc}", SOURCE)
    return results, complete
