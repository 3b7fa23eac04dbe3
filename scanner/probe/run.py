"""Run the probes for a list of targets: ``(targets, options) -> Facts``.

Each target runs its whole course on its own: a preflight (resolve, connect, one ClientHello) decides whether
there is a TLS peer at all; tlsgate's own probes (SSL 2.0 to TLS 1.3, groups, sessions ...) run one after
another; then sslyze (the certificate chain as served, behaviours and vulnerability plugins) — when the plan asks
sslyze for the chain alone, only its chain job's one handshake, at the highest version the enumeration found (no
connectivity test: ``sslyze_adapter.chain_only``); when it brings no chain, tlsgate reads it off the wire itself
(pki/wirechain: OpenSSL refuses Certificate messages over 100 KiB); then one handshake per kind of server key
that the facts so far do not already answer (pki/deployments: every certificate it serves) and the analysis of
each chain. Targets run side by side and each one's facts are final as soon as it is done, so results stream out
in completion order. A probe that fails leaves its part as an error, never a default; a target that fails never
stops the others.

Connections go through ``Slots`` (a cap for the run and one per host) and check a ``Stop`` (Ctrl-C, the time
budget, a target's own time limit). A target whose time is up is reported within ``_GRACE`` whatever its probes
are doing: with the facts they had reported, every other planned fact carrying the stop's reason (a target
stopped before its preflight answered is that error as a whole).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from scanner.facts import (
    Behaviours,
    CertificateDeployment,
    CertificateFacts,
    ErrorClass,
    Facts,
    Observed,
    ProbeError,
    ProtocolSupport,
    ProtocolVersion,
    TargetInfo,
)
from scanner.probe import sslyze_adapter
from scanner.probe.checks.ciphers import highest_accepted
from scanner.probe.connect.deadline import Deadline
from scanner.probe.connect.endpoint import Endpoint, SeenInClear
from scanner.probe.connect.limits import Cancelled, Slots, Stop
from scanner.probe.connect.preflight import Reachable, preflight, resolve_all
from scanner.probe.options import ConnectOptions, ProbeOptions
from scanner.probe.pki.certchain import analyse
from scanner.probe.pki.deployments import answered_offers, deployments, discover
from scanner.probe.pki.fetch import Fetcher
from scanner.probe.pki.wirechain import TOO_LARGE, fetch_chain
from scanner.probe.registry import OWN_PROBES, Extra, FactGroup, OwnProbe, ProbeKind, sslyze_extras
from scanner.probe.sslyze_adapter import ServedCertificates, SslyzeOutcome, SslyzeRequest
from scanner.targets import Target

_POLL = 0.2  # seconds between looks at the run's stop while waiting for results


@dataclass(frozen=True)
class ScanItem:
    """One (target, address) pair to probe: a name with all_addresses becomes several items."""

    target: Target
    options: ConnectOptions
    address: str | None = None
    label: str = ""
    source: int = 0  # index of the target this item came from

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
    deployments: list[CertificateDeployment] = field(default_factory=list)
    behaviours: dict[str, Any] = field(default_factory=dict)
    fact_groups: dict[ProbeKind, FactGroup] = field(default_factory=dict)  # by the kind of probe that fills each
    served: ServedCertificates | None = None
    sslyze_error: ProbeError | None = None
    failures: dict[ProbeKind, ProbeError] = field(default_factory=dict)
    # Held while the target's worker changes these facts, and while the run reads them: a target out of time is
    # reported with what it has, while its worker may still be winding down.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


def expand(
    targets: Sequence[tuple[Target, ConnectOptions]], timeout: float = 5.0, stop: Stop | None = None
) -> list[ScanItem]:
    """One item per target, or per address when all_addresses is set (a name that does not resolve, or not
    within the target's timeout, stays one item, so its DNS error is reported)."""
    items: list[ScanItem] = []
    for source, (target, options) in enumerate(targets):
        if options.all_addresses and options.connect_address is None and not target.is_ip:
            addresses = resolve_all(target, Deadline(options.timeout or timeout, stop))
            if isinstance(addresses, list) and len(addresses) > 1:
                items.extend(ScanItem(target, options, a, f"{target.input} @ {a}", source) for a in addresses)
                continue
            if isinstance(addresses, list):
                items.append(ScanItem(target, options, addresses[0], target.input, source))
                continue
        items.append(ScanItem(target, options, options.connect_address, target.input, source))
    return items


def _endpoint(item: ScanItem, address: str, options: ProbeOptions, stop: Stop) -> Endpoint:
    return Endpoint(
        target=item.target,
        address=address,
        server_name=item.server_name,
        timeout=item.options.timeout or options.timeout,
        credentials=item.options.credentials,
        starttls=item.options.starttls,
        stop=stop,
        check_name=item.options.check_name,
        seen=SeenInClear(),
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
    # tlsgate's own probes cover every protocol version (SSL 2.0 included) and suite; sslyze fetches the chain
    # as served and runs the behaviour and vulnerability plugins.
    return SslyzeRequest(endpoint=endpoint, extras=sslyze_extras(plan))


def _merge_sslyze(partial: _Partial, outcome: SslyzeOutcome) -> None:
    if outcome.error is not None:
        partial.sslyze_error = outcome.error
        return
    if isinstance(outcome.certificate, ServedCertificates):
        partial.served = outcome.certificate
    elif outcome.certificate is not None:
        partial.certificate = outcome.certificate
    partial.behaviours.update(sslyze_adapter.behaviours_from(outcome.behaviours))


Merge = Callable[[_Partial], None]


def _merge(probe: OwnProbe, value: Any) -> Merge:
    """How one own probe's result goes into the partial facts, by the field the registry says it fills."""
    head, _, key = probe.fills.partition(".")

    def merge(partial: _Partial) -> None:
        if key:
            getattr(partial, head)[key] = value
        elif head == "protocols":
            for protocol in value:
                partial.protocols[protocol.version] = protocol
        else:
            partial.fact_groups[probe.kind] = value

    return merge


def _own_probes(endpoint: Endpoint, options: ProbeOptions, partial: _Partial) -> None:
    """Each own probe of the plan, its facts kept as soon as it is done (a target stopped later keeps them)."""
    for probe in OWN_PROBES:
        if probe.kind in options.plan:
            merge = _guarded(probe, endpoint, options)
            with partial.lock:
                merge(partial)


def _guarded(probe: OwnProbe, endpoint: Endpoint, options: ProbeOptions) -> Merge:
    """A probe that raises is a bug on one target: record it as that probe's error and carry on."""
    try:
        return _merge(probe, probe.run(endpoint, options))
    except Cancelled:
        raise  # the target is stopped: its facts so far are reported, the rest with the stop's reason
    except Exception as exc:  # any failure of one probe must not lose the target
        error = ProbeError(error_class=ErrorClass.probe_failed, message=f"{probe.name} probe failed: {exc!r}")

        def record(partial: _Partial) -> None:
            partial.failures.setdefault(probe.kind, error)

        return record


def _finish(partial: _Partial, plan: frozenset[ProbeKind], stopped: ProbeError | None = None) -> Facts:
    """The facts as far as the probes got. ``stopped`` (the target ran out of time) is the error of every
    planned fact no probe reported; a target stopped before it was even reached is an error as a whole."""
    now = datetime.now(UTC)
    error = partial.error or (stopped if partial.address is None else None)
    if error is not None:
        return Facts(
            target=_target_info(partial), started_at=partial.started, finished_at=now, status="error", error=error
        )
    gap = partial.sslyze_error or stopped
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
        unseen = gap or ProbeError(error_class=ErrorClass.probe_failed, message="not observed")
        broken = {p.fills.partition(".")[2]: partial.failures.get(p.kind) for p in OWN_PROBES if "." in p.fills}
        missing = {name: Observed[Any](status="error", error=broken.get(name) or unseen) for name in _BEHAVIOUR_FIELDS}
        behaviours = Behaviours(status="ok", **(missing | partial.behaviours))
    groups = {p.fills: _group(plan, p.kind, p.group, partial, stopped) for p in OWN_PROBES if p.group is not None}
    return Facts(
        target=_target_info(partial),
        started_at=partial.started,
        finished_at=now,
        status="ok",
        protocols=protocols,
        certificate=certificate,
        certificate_deployments=partial.deployments if ProbeKind.certificate in plan else [],
        behaviours=behaviours,
        **groups,
    )


_BEHAVIOUR_FIELDS = tuple(name for name in Behaviours.model_fields if name not in ("status", "error"))


def _group(
    plan: frozenset[ProbeKind], kind: ProbeKind, model: type[FactGroup], partial: _Partial, stopped: ProbeError | None
) -> FactGroup:
    """A fact group as probed, not_probed when the plan skipped it, or an error when its probe broke or the
    target ran out of time first."""
    if kind not in plan:
        return model(status="not_probed")
    found = partial.fact_groups.get(kind)
    if found is not None:
        return found
    error = (
        partial.failures.get(kind)
        or stopped
        or ProbeError(error_class=ErrorClass.probe_failed, message=f"no {kind} probe ran")
    )
    return model(status="error", error=error)


def stopped_facts(item: ScanItem, error: ProbeError, started: datetime | None = None) -> Facts:
    """The facts of an item the run did not finish: only who it is and why it was not scanned."""
    now = datetime.now(UTC)
    partial = _Partial(item=item, started=started or now, address=item.address)
    return Facts(target=_target_info(partial), started_at=partial.started, finished_at=now, status="error", error=error)


@dataclass
class _Running:
    """A target being probed: its facts so far, its stop, and when the run first saw that stop."""

    partial: _Partial
    stop: Stop
    noticed: float | None = None


_GRACE = 1.5  # seconds a stopped target's worker has to hand in its facts (sslyze's jobs get 1 s) before the run
# reports the target with what it has so far and leaves the worker behind


class ProbeRun:
    """A probe run over many targets: ``results()`` yields each item's facts as soon as it is finished.

    ``concurrency`` targets run at once, each in its own worker thread; their connections share ``Slots``.
    ``stop`` ends the run early (the caller sets it on Ctrl-C); the time budget, when given, sets it by itself.
    A target's own time limit (``target_time``) is enforced the same way: when it passes, the target is
    reported with the facts its probes had reported (the rest carry the time limit's error) within ``_GRACE``,
    whether or not its worker has noticed. Items whose label is in ``known`` (facts from an earlier,
    interrupted run) are not probed again.
    """

    def __init__(
        self,
        targets: Sequence[tuple[Target, ConnectOptions]],
        options: ProbeOptions,
        stop: Stop | None = None,
        known: Mapping[str, Facts] | None = None,
        *,
        items: Sequence[ScanItem] | None = None,
        slots: Slots | None = None,
    ) -> None:
        self.options = options
        budget = options.time_budget
        self.stop = (
            Stop.after(budget, budget_error(budget, "the run's time budget"), parent=stop)
            if budget is not None
            else Stop(parent=stop)
        )
        # ``items`` already expanded (a Dask worker's share of a run); ``slots`` shared with other runs (a
        # worker process's tasks): see scanner/execute/dask.py.
        self.items = list(items) if items is not None else expand(targets, options.timeout, self.stop)
        self.known = dict(known or {})
        self.slots = slots or Slots(options.max_connections, options.per_host)
        # Trust and revocation fetch AIA issuers, OCSP and CRLs: one Fetcher (one cache) for the whole run.
        self.fetcher = Fetcher(options.timeout, offline=options.offline)

    def results(self) -> Iterator[tuple[int, Facts]]:
        """(item index, facts) for every item, in the order they finish. Once the run is stopped, items not
        yet started come out at once with the stop's reason as their error, items in progress within
        ``_GRACE`` with what they have. A worker's answer that comes later goes nowhere."""
        finished: queue.SimpleQueue[tuple[int, Facts]] = queue.SimpleQueue()
        todo: list[int] = []
        for index, item in enumerate(self.items):
            found = self.known.get(item.label)
            if found is not None:
                yield index, found
            else:
                todo.append(index)
        todo.reverse()  # popped from the end: first items first
        running: dict[int, _Running] = {}

        def fill() -> None:  # before a result is handed out: the next target need not wait for its consumer
            while todo and len(running) < max(1, self.options.concurrency) and self.stop.error is None:
                index = todo.pop()
                running[index] = self._start(index, finished)

        while todo or running:
            fill()
            try:
                index, facts = finished.get(timeout=_POLL)
            except queue.Empty:
                pass
            else:
                if running.pop(index, None) is not None:
                    fill()
                    yield index, facts
                continue
            if (error := self.stop.error) is not None:
                # The run is over: what has not started never will.
                for index in sorted(todo):
                    yield index, stopped_facts(self.items[index], error)
                todo.clear()
            yield from self._overdue(running)

    def _overdue(self, running: dict[int, _Running]) -> Iterator[tuple[int, Facts]]:
        """Targets stopped more than ``_GRACE`` ago, with what they have, taken out of ``running``."""
        now = time.monotonic()
        for index, one in sorted(running.items()):
            if one.stop.error is None:
                continue
            one.noticed = one.noticed if one.noticed is not None else now
            if now - one.noticed >= _GRACE:
                del running[index]
                with one.partial.lock:
                    yield index, _finish(one.partial, self.options.plan, one.stop.error)

    def _start(self, index: int, finished: queue.SimpleQueue[tuple[int, Facts]]) -> _Running:
        item = self.items[index]
        limit = self.options.target_time
        stop = (
            Stop.after(limit, budget_error(limit, "the target's time limit"), parent=self.stop)
            if limit is not None
            else Stop(parent=self.stop)
        )
        partial = _Partial(item=item, started=datetime.now(UTC))

        def work() -> None:
            finished.put((index, self._probe_guarded(partial, stop)))

        # Daemon threads: a worker left behind (out of time, Ctrl-C) must not hold up the exit on a read.
        threading.Thread(target=work, name=f"probe-{index}", daemon=True).start()
        return _Running(partial, stop)

    def _probe_guarded(self, partial: _Partial, stop: Stop) -> Facts:
        item = partial.item
        try:
            if stop.error is not None:
                return stopped_facts(item, stop.error, partial.started)
            self._probe(partial, stop)
        except Cancelled:
            pass  # stopped: reported below with what the probes had found
        except Exception as exc:  # a bug on one target must not lose the others
            error = ProbeError(error_class=ErrorClass.probe_failed, message=f"probing failed: {exc!r}")
            return stopped_facts(item, error, partial.started)
        with partial.lock:
            return _finish(partial, self.options.plan, stop.error)

    def _probe(self, partial: _Partial, stop: Stop) -> None:
        options = self.options
        item = partial.item
        with self.slots.hold(item.address or item.target.host, stop):
            check = preflight(
                item.target,
                item.options.timeout or options.timeout,
                address=item.address,
                server_name=item.server_name,
                starttls=item.options.starttls,
                stop=stop,
            )
        stop.check()
        if not isinstance(check, Reachable):
            with partial.lock:
                partial.error = check
            return
        with partial.lock:
            partial.address = check.ip_address
        endpoint = _endpoint(item, check.ip_address, options, stop)
        # tlsgate's own probes run one after another, and before sslyze: many TLS services (embedded stacks,
        # openssl s_server) serve one connection at a time, and a probe waiting behind another's long
        # connection would time out. So they hold one connection slot between them.
        with self.slots.hold(check.ip_address, stop):
            _own_probes(endpoint, options, partial)
        stop.check()

        def hold() -> AbstractContextManager[object]:  # one connection slot for each connection-making step
            return self.slots.hold(check.ip_address, stop)

        chain = _chain_alone(endpoint, options.plan, partial, hold)
        if chain is not None:
            with partial.lock:
                partial.served = chain
        else:
            request = _sslyze_request(endpoint, options.plan)
            parallel = min(options.per_server_connections, options.per_host)
            outcome = sslyze_adapter.scan_one(request, parallel, hold)
            if outcome is not None:
                with partial.lock:
                    _merge_sslyze(partial, outcome)
        stop.check()
        in_clear = False  # the chain read by tlsgate's own TLS 1.2 hello, not by OpenSSL
        if partial.served is None and ProbeKind.certificate in options.plan and _refetch(partial):
            with self.slots.hold(check.ip_address, stop):
                fetched = fetch_chain(endpoint)
            with partial.lock:
                if isinstance(fetched, ServedCertificates):
                    partial.served, in_clear = fetched, True
                elif fetched == TOO_LARGE:
                    partial.certificate = CertificateFacts(status="error", error=fetched)
            stop.check()
        if partial.served is not None:
            # Every certificate the server serves, not only the default one (pki/deployments).
            served = partial.served
            with partial.lock:
                # sslyze sends the address as SNI when the endpoint sends none; the offers and wirechain send none.
                same_name = endpoint.server_name is not None or in_clear
                known = answered_offers(served, partial.protocols, same_name=same_name, shown=endpoint.seen)
            with self.slots.hold(check.ip_address, stop):
                offered = discover(endpoint, in_clear=in_clear, known=known)
            stop.check()
            found = deployments(served, offered, lambda chain: _analyse(chain, endpoint, options, self.fetcher))
            with partial.lock:
                partial.certificate, partial.deployments = found[0].certificate, found


def _chain_alone(
    endpoint: Endpoint, plan: frozenset[ProbeKind], partial: _Partial, hold: sslyze_adapter.Hold
) -> ServedCertificates | None:
    """The default chain in one handshake, when sslyze would be run for nothing else: its connectivity test
    (two or three handshakes) only finds the highest version, which the enumeration already knows."""
    if sslyze_extras(plan) != {Extra.certificate}:
        return None
    with partial.lock:
        highest = highest_accepted(partial.protocols)
    return sslyze_adapter.chain_only(endpoint, highest, hold) if highest is not None else None


def _refetch(partial: _Partial) -> bool:
    """Whether to read the chain ourselves: sslyze (OpenSSL) could not fetch it, e.g. a Certificate message over
    OpenSSL's 100 KiB limit. A server that wants a client certificate would refuse us too."""
    error = partial.certificate.error if partial.certificate is not None else partial.sslyze_error
    return error is None or error.error_class != ErrorClass.client_cert_required


def budget_error(seconds: float, what: str) -> ProbeError:
    return ProbeError(error_class=ErrorClass.time_budget, message=f"not finished within {what} ({seconds:g} s)")


def probe_targets(targets: Sequence[tuple[Target, ConnectOptions]], options: ProbeOptions) -> list[Facts]:
    """Probe every target and return the facts in target order; a target that fails yields Facts with an error
    and never stops the others."""
    run = ProbeRun(targets, options)
    found: dict[int, Facts] = dict(run.results())
    return [found[index] for index in range(len(run.items))]


def _analyse(
    served: ServedCertificates, endpoint: Endpoint, options: ProbeOptions, fetcher: Fetcher
) -> CertificateFacts:
    name = endpoint.server_name or endpoint.target.host
    try:
        return analyse(
            served.chain, served.stapled, name, options.certificates, fetcher, check_name=endpoint.check_name
        )
    except Exception as exc:  # one odd certificate must not lose the target's other facts
        error = ProbeError(error_class=ErrorClass.probe_failed, message=f"certificate analysis failed: {exc!r}")
        return CertificateFacts(status="error", error=error)
