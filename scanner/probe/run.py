"""Run the probes for a list of targets: ``(targets, options) -> Facts``.

Per target: a preflight (resolve, connect, one ClientHello) decides whether there is a TLS peer at all;
then sslyze (SSLv2, certificate, behaviours and vulnerability plugins) and tlsgate's own probes run side
by side, each filling its part of the facts. A probe that fails leaves its part as an error, never a
default; a target that fails never stops the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from scanner.facts import (
    Behaviours,
    CertificateFacts,
    ClientAuthFacts,
    ErrorClass,
    Facts,
    GroupFacts,
    ProbeError,
    ProtocolSupport,
    ProtocolVersion,
    SessionFacts,
    TargetInfo,
)
from scanner.probe import sslyze_adapter
from scanner.probe.alpn import probe_alpn
from scanner.probe.certchain import analyse
from scanner.probe.ciphers import enumerate_all
from scanner.probe.clientauth import probe_client_auth
from scanner.probe.endpoint import Endpoint
from scanner.probe.fetch import Fetcher
from scanner.probe.groups import probe_groups
from scanner.probe.options import ConnectOptions, ProbeOptions
from scanner.probe.plan import ProbeKind
from scanner.probe.preflight import Reachable, preflight, resolve_all
from scanner.probe.sessions import probe_sessions
from scanner.probe.sslyze_adapter import Extra, ServedCertificates, SslyzeOutcome, SslyzeRequest
from scanner.targets import Target

G = TypeVar("G", SessionFacts, ClientAuthFacts, GroupFacts)


@dataclass(frozen=True)
class ScanItem:
    """One (target, address) pair to probe: a name with all_addresses becomes several items."""

    target: Target
    options: ConnectOptions
    address: str | None = None
    label: str = ""

    @property
    def server_name(self) -> str | None:
        if self.options.no_sni:
            return None
        return self.options.server_name or self.target.server_name


@dataclass
class _Partial:
    """The facts of one item as the probes fill them in."""

    item: ScanItem
    started: datetime
    address: str | None = None
    error: ProbeError | None = None
    protocols: dict[ProtocolVersion, ProtocolSupport] = field(default_factory=dict)
    certificate: CertificateFacts | None = None
    behaviours: dict[str, Any] = field(default_factory=dict)
    sessions: SessionFacts | None = None
    client_auth: ClientAuthFacts | None = None
    groups: GroupFacts | None = None
    served: ServedCertificates | None = None
    sslyze_error: ProbeError | None = None
    failures: dict[ProbeKind, ProbeError] = field(default_factory=dict)


def expand(targets: Sequence[tuple[Target, ConnectOptions]]) -> list[ScanItem]:
    """One item per target, or per address when all_addresses is set (a name that does not resolve stays one
    item, so its DNS error is reported)."""
    items: list[ScanItem] = []
    for target, options in targets:
        if options.all_addresses and options.connect_address is None and not target.is_ip:
            addresses = resolve_all(target)
            if isinstance(addresses, list) and len(addresses) > 1:
                items.extend(ScanItem(target, options, a, f"{target.input} @ {a}") for a in addresses)
                continue
            if isinstance(addresses, list):
                items.append(ScanItem(target, options, addresses[0], target.input))
                continue
        items.append(ScanItem(target, options, options.connect_address, target.input))
    return items


def _endpoint(item: ScanItem, address: str, options: ProbeOptions) -> Endpoint:
    return Endpoint(
        target=item.target,
        address=address,
        server_name=item.server_name,
        timeout=item.options.timeout or options.timeout,
        credentials=item.options.credentials,
        starttls=item.options.starttls,
    )


def _target_info(partial: _Partial) -> TargetInfo:
    item = partial.item
    return TargetInfo(
        input=item.label or item.target.input,
        host=item.target.host,
        port=item.target.port,
        server_name=item.server_name,
        ip_address=partial.address,
        starttls=item.options.starttls.value if item.options.starttls else None,
    )


def _sslyze_request(endpoint: Endpoint, plan: frozenset[ProbeKind]) -> SslyzeRequest:
    # tlsgate's enumerator covers SSLv3 to TLS 1.3 (the whole IANA registry, in accepted + 1 round trips);
    # sslyze keeps SSL 2.0, whose hello our wire code does not speak.
    versions = frozenset({ProtocolVersion.SSLv2}) if ProbeKind.protocols in plan else frozenset()
    extras = set()
    if ProbeKind.certificate in plan:
        extras.add(Extra.certificate)
    if ProbeKind.behaviours in plan:
        extras.add(Extra.behaviours)
    return SslyzeRequest(endpoint=endpoint, versions=versions, extras=frozenset(extras))


def _merge_sslyze(partial: _Partial, outcome: SslyzeOutcome) -> None:
    if outcome.error is not None:
        partial.sslyze_error = outcome.error
        return
    for protocol in outcome.protocols:
        partial.protocols.setdefault(protocol.version, protocol)
    if isinstance(outcome.certificate, ServedCertificates):
        partial.served = outcome.certificate
    elif outcome.certificate is not None:
        partial.certificate = outcome.certificate
    partial.behaviours.update(sslyze_adapter.behaviours_from(outcome.behaviours))


Merge = Callable[[_Partial], None]


def _sessions_probe(endpoint: Endpoint, options: ProbeOptions) -> Merge:
    facts = probe_sessions(endpoint, age_check_seconds=options.session_age_check)
    return lambda partial: setattr(partial, "sessions", facts)


def _client_auth_probe(endpoint: Endpoint, options: ProbeOptions) -> Merge:
    facts = probe_client_auth(endpoint)
    return lambda partial: setattr(partial, "client_auth", facts)


def _ciphers_probe(endpoint: Endpoint, options: ProbeOptions) -> Merge:
    protocols = enumerate_all(endpoint)

    def merge(partial: _Partial) -> None:
        for protocol in protocols:
            partial.protocols[protocol.version] = protocol

    return merge


def _groups_probe(endpoint: Endpoint, options: ProbeOptions) -> Merge:
    facts = probe_groups(endpoint)
    return lambda partial: setattr(partial, "groups", facts)


def _alpn_probe(endpoint: Endpoint, options: ProbeOptions) -> Merge:
    value = probe_alpn(endpoint)
    return lambda partial: partial.behaviours.__setitem__("alpn", value)


@dataclass(frozen=True)
class OwnProbe:
    name: str
    kind: ProbeKind
    run: Callable[[Endpoint, ProbeOptions], Merge]


# tlsgate's own probes, by the kind of facts they fill; each returns a function that merges its result.
OWN_PROBES: tuple[OwnProbe, ...] = (
    OwnProbe("cipher suites", ProbeKind.protocols, _ciphers_probe),
    OwnProbe("sessions", ProbeKind.sessions, _sessions_probe),
    OwnProbe("alpn", ProbeKind.behaviours, _alpn_probe),
    OwnProbe("client_auth", ProbeKind.client_auth, _client_auth_probe),
    OwnProbe("groups", ProbeKind.groups, _groups_probe),
)


def _own_probes(endpoint: Endpoint, options: ProbeOptions) -> list[Merge]:
    return [_guarded(probe, endpoint, options) for probe in OWN_PROBES if probe.kind in options.plan]


def _guarded(probe: OwnProbe, endpoint: Endpoint, options: ProbeOptions) -> Merge:
    """A probe that raises is a bug on one target: record it as that probe's error and carry on."""
    try:
        return probe.run(endpoint, options)
    except Exception as exc:  # any failure of one probe must not lose the target
        error = ProbeError(error_class=ErrorClass.probe_failed, message=f"{probe.name} probe failed: {exc!r}")

        def record(partial: _Partial) -> None:
            partial.failures.setdefault(probe.kind, error)

        return record


def _finish(partial: _Partial, plan: frozenset[ProbeKind]) -> Facts:
    now = datetime.now(UTC)
    if partial.error is not None:
        return Facts(
            target=_target_info(partial),
            started_at=partial.started,
            finished_at=now,
            status="error",
            error=partial.error,
        )
    gap = partial.sslyze_error
    protocols: list[ProtocolSupport] = []
    if ProbeKind.protocols in plan:
        for version in ProtocolVersion:
            found = partial.protocols.get(version)
            if found is None:
                reason = (
                    partial.failures.get(ProbeKind.protocols)
                    or gap
                    or ProbeError(error_class=ErrorClass.probe_failed, message="no probe reported this version")
                )
                found = ProtocolSupport(version=version, status="error", error=reason)
            protocols.append(found)
    if not any(p.status == "accepted" for p in protocols) and gap is not None:
        # Nothing was accepted and sslyze could not connect: the target as a whole could not be scanned.
        return Facts(
            target=_target_info(partial), started_at=partial.started, finished_at=now, status="error", error=gap
        )
    certificate = CertificateFacts(status="not_probed")
    if ProbeKind.certificate in plan:
        certificate = partial.certificate or CertificateFacts(
            status="error",
            error=gap or ProbeError(error_class=ErrorClass.probe_failed, message="certificate not observed"),
        )
    behaviours = Behaviours(status="not_probed")
    if ProbeKind.behaviours in plan:
        behaviours = Behaviours(status="ok", **partial.behaviours)
    sessions = _group(plan, ProbeKind.sessions, partial.sessions, partial, SessionFacts)
    client_auth = _group(plan, ProbeKind.client_auth, partial.client_auth, partial, ClientAuthFacts)
    groups = _group(plan, ProbeKind.groups, partial.groups, partial, GroupFacts)
    return Facts(
        target=_target_info(partial),
        started_at=partial.started,
        finished_at=now,
        status="ok",
        protocols=protocols,
        certificate=certificate,
        behaviours=behaviours,
        sessions=sessions,
        client_auth=client_auth,
        groups=groups,
    )


def _group(plan: frozenset[ProbeKind], kind: ProbeKind, found: G | None, partial: _Partial, model: type[G]) -> G:
    """A fact group as probed, not_probed when the plan skipped it, or an error when its probe broke."""
    if kind not in plan:
        return model(status="not_probed")
    if found is not None:
        return found
    error = partial.failures.get(kind) or ProbeError(
        error_class=ErrorClass.probe_failed, message=f"no {kind} probe ran"
    )
    return model(status="error", error=error)


def probe_targets(targets: Sequence[tuple[Target, ConnectOptions]], options: ProbeOptions) -> list[Facts]:
    """Probe every target; a target that fails yields Facts with an error and never stops the others."""
    items = expand(targets)
    started = datetime.now(UTC)
    partials = [_Partial(item=item, started=started) for item in items]
    workers = max(1, min(options.concurrency, len(items) or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe") as pool:
        checks = list(
            pool.map(
                lambda it: preflight(
                    it.target,
                    it.options.timeout or options.timeout,
                    address=it.address,
                    server_name=it.server_name,
                    starttls=it.options.starttls,
                ),
                items,
            )
        )
        reachable: list[tuple[_Partial, Endpoint]] = []
        for partial, check in zip(partials, checks, strict=True):
            if isinstance(check, Reachable):
                partial.address = check.ip_address
                reachable.append((partial, _endpoint(partial.item, check.ip_address, options)))
            else:
                partial.error = check

        # tlsgate's own probes run one after another per target, and before sslyze: many TLS services
        # (embedded stacks, openssl s_server) serve one connection at a time, and a probe waiting behind
        # another's long connection would time out. Targets still run in parallel.
        own = [pool.submit(_own_probes, endpoint, options) for _, endpoint in reachable]
        for (partial, _), future in zip(reachable, own, strict=True):
            for merge in future.result():
                merge(partial)
        requests = [_sslyze_request(endpoint, options.plan) for _, endpoint in reachable]
        for index, outcome in sslyze_adapter.scan(
            requests, per_server_connections=options.per_server_connections, concurrent_servers=options.concurrency
        ):
            _merge_sslyze(reachable[index][0], outcome)
        # Trust and revocation fetch AIA issuers, OCSP and CRLs: one Fetcher (one cache) for the whole run.
        fetcher = Fetcher(options.timeout, offline=options.offline)
        served = [(p, e, p.served) for p, e in reachable if p.served is not None]
        analysed = pool.map(lambda item: _analyse(item[2], item[1], options, fetcher), served)
        for (partial, _, _), facts in zip(served, analysed, strict=True):
            partial.certificate = facts
    return [_finish(partial, options.plan) for partial in partials]


def _analyse(
    served: ServedCertificates, endpoint: Endpoint, options: ProbeOptions, fetcher: Fetcher
) -> CertificateFacts:
    name = endpoint.server_name or endpoint.target.host
    try:
        return analyse(served.chain, served.stapled, name, options.certificates, fetcher)
    except Exception as exc:  # one odd certificate must not lose the target's other facts
        error = ProbeError(error_class=ErrorClass.probe_failed, message=f"certificate analysis failed: {exc!r}")
        return CertificateFacts(status="error", error=error)
