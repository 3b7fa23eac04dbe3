"""The Dask executor: a run's probes on a Dask.distributed cluster, results streaming back as tasks finish.

The coordinator (this process) expands the targets into items exactly as the local pool does, then groups them
by host — the address it connects to, else the host name — and by network zone: one task per group. A whole
host on one worker is what keeps ``--per-host`` exact across the cluster: the worker's tasks share one
``Slots`` per process (so ``--max-connections`` bounds each worker process), and no other worker connects to that
host. A task is a plain function of picklable values (the items, the probe options without their loaded trust
anchors, which the worker loads itself once) returning the items' facts, computed by the same ``ProbeRun``.

Tasks in flight are bounded (twice the cluster's threads): the next group is submitted when one comes back, so
the coordinator holds a group's facts only until the caller has them. A group whose zone has no worker in the
cluster is not submitted: its items come back at once with the error class ``no_worker``; a zone whose last
worker leaves mid-run gets the same after ``_ZONE_GRACE``. A worker that dies mid-task is Dask's to handle: the
scheduler runs its tasks again on another worker (up to ``distributed.scheduler.allowed-failures`` times), and
whatever happens each item is yielded once (a result for an item already yielded is dropped).

Client credentials: on a local cluster the workers read the credential files where the coordinator wrote them
(same machine, nothing secret is sent). On a remote cluster the PEM chain and key ride inside the task only over
a ``tls://`` scheduler, and the worker writes them to a private directory removed when the task ends; over plain
``tcp://`` a scan with credentials is refused.

``distributed`` is imported only here, and this module only with ``--executor dask``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import urlsplit

from scanner.execute import ExecutorError, host_key
from scanner.facts import ErrorClass, Facts, ProbeError
from scanner.probe.connect.endpoint import ClientCredentials
from scanner.probe.connect.limits import Slots, Stop
from scanner.probe.options import ConnectOptions, ProbeOptions
from scanner.probe.pki.certchain import CertificateOptions
from scanner.probe.run import ProbeRun, ScanItem, budget_error, expand, stopped_facts
from scanner.targets import Target

if TYPE_CHECKING:
    from distributed import Client, Future
    from distributed.security import Security

_Task: TypeAlias = "Future[list[tuple[int, Facts]]]"  # a submitted share
_POLL = 0.2  # seconds between looks at the run's stop while waiting for tasks
_ZONE_GRACE = 5.0  # seconds a zone may be without workers mid-run (a nanny restarting one) before no_worker
_WAIT_FOR_WORKERS = 10.0  # seconds a cluster with no worker at all gets to see one join, at the start
_CONNECT_TIMEOUT = 15.0  # seconds to reach the scheduler
ZONE_RESOURCE = "zone-"  # a worker of zone dmz declares the resource zone-dmz (dask worker --resources zone-dmz=N)


def zone_resource(zone: str) -> str:
    return ZONE_RESOURCE + zone


# --- the worker's side ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SecretFiles:
    """A client certificate chain and key (PEM) for a remote worker; sent only over TLS, never shown."""

    chain: bytes = field(repr=False)
    key: bytes = field(repr=False)


@dataclass(frozen=True)
class Share:
    """One task: the items of one host in one zone, with their indices in the run."""

    indices: tuple[int, ...]
    items: tuple[ScanItem, ...]
    zone: str | None = None
    secrets: tuple[SecretFiles | None, ...] = ()  # aligned with items, only for a remote cluster over TLS
    deadline: float | None = None  # the run's time budget as a wall-clock time (time.time())


_WORKER_LOCK = threading.Lock()
_WORKER_SLOTS: dict[tuple[int, int], Slots] = {}
_WORKER_ANCHORS: dict[tuple[object, ...], CertificateOptions] = {}


def _shared_slots(options: ProbeOptions) -> Slots:
    """One Slots per worker process (and per limits): its tasks together keep within them."""
    key = (options.max_connections, options.per_host)
    with _WORKER_LOCK:
        found = _WORKER_SLOTS.get(key)
        if found is None:
            found = _WORKER_SLOTS[key] = Slots(*key)
        return found


def _anchored(options: CertificateOptions) -> CertificateOptions:
    """The trust stores loaded on this worker, once per process (loaded certificates do not pickle)."""
    from scanner.probe.pki.certchain import with_anchors  # noqa: PLC0415

    key: tuple[object, ...] = (options.stores, options.pins, options.revocation)
    with _WORKER_LOCK:
        found = _WORKER_ANCHORS.get(key)
        if found is None:
            found = _WORKER_ANCHORS[key] = with_anchors(options)
        return found


def _with_secret(item: ScanItem, secret: SecretFiles | None, directory: Path) -> ScanItem:
    """The item with its credentials written here (private to this worker, removed after the task)."""
    credentials = item.options.credentials
    if secret is None or credentials is None:
        return item
    directory.mkdir(mode=0o700)
    chain, key = directory / "chain.pem", directory / "key.pem"
    for path, data in ((chain, secret.chain), (key, secret.key)):
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
    local = ClientCredentials(cert_chain=chain, key=key, description=credentials.description)
    return replace(item, options=replace(item.options, credentials=local))


def probe_share(share: Share, options: ProbeOptions) -> list[tuple[int, Facts]]:
    """Run on a worker: the facts of every item of the share, by the same ProbeRun as the local pool."""
    options = replace(options, certificates=_anchored(options.certificates))
    if share.deadline is not None:
        options = replace(options, time_budget=max(0.01, share.deadline - time.time()))
    with tempfile.TemporaryDirectory(prefix="tlsgate-credentials-") as workdir:
        items = list(share.items)
        for number, secret in enumerate(share.secrets):
            items[number] = _with_secret(items[number], secret, Path(workdir) / f"item-{number}")
        run = ProbeRun((), options, items=items, slots=_shared_slots(options))
        return [(share.indices[position], facts) for position, facts in run.results()]


# --- the coordinator's side ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DaskExecutor:
    """A Dask.distributed cluster: the scheduler at ``scheduler`` (``tcp://`` or ``tls://``), or, without one, a
    local cluster of ``workers`` processes (default: the CPU count). ``security`` (TLS) defaults to Dask's own
    configuration (``distributed.comm.tls.*``, e.g. from DASK_DISTRIBUTED__COMM__TLS__CA_FILE)."""

    scheduler: str | None = None
    workers: int | None = None
    security: Security | None = None

    def start(
        self,
        targets: Sequence[tuple[Target, ConnectOptions]],
        options: ProbeOptions,
        stop: Stop,
        known: Mapping[str, Facts],
    ) -> DaskRun:
        return DaskRun(self, targets, options, stop, known)

    def connect(self, threads: int) -> tuple[Client, Any]:
        """A client of the cluster (and the local cluster it started, to close), or ExecutorError."""
        try:
            from distributed import Client, LocalCluster  # noqa: PLC0415 - only with --executor dask
        except ImportError:
            raise ExecutorError("--executor dask needs Dask: pip install 'tlsgate[dask]'") from None
        if self.scheduler is None:
            workers = self.workers or os.cpu_count() or 1
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=max(1, -(-threads // workers)),
                processes=True,
                dashboard_address=None,
                worker_dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            return Client(cluster), cluster
        _reachable(self.scheduler)
        try:
            client = Client(self.scheduler, security=self.security, timeout=_CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ExecutorError(f"cannot reach the Dask scheduler at {self.scheduler}: {exc}") from None
        return client, None


def _reachable(address: str) -> None:
    """A scheduler that refuses the connection is an error at once (Dask's client would retry until its timeout)."""
    location = urlsplit(address)
    try:
        host, port = location.hostname, location.port
    except ValueError:
        port = None
    if not host or port is None:
        raise ExecutorError(f"--scheduler {address!r}: give tcp://HOST:PORT or tls://HOST:PORT")
    try:
        socket.create_connection((host, port), timeout=_CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise ExecutorError(f"cannot reach the Dask scheduler at {address}: {exc.strerror or exc}") from None


def _no_worker(zone: str | None) -> ProbeError:
    if zone is None:
        return ProbeError(error_class=ErrorClass.no_worker, message="the Dask cluster has no worker")
    return ProbeError(
        error_class=ErrorClass.no_worker,
        message=f"no worker of zone {zone!r} in the Dask cluster (a worker declares it with "
        f"--resources {zone_resource(zone)}=N)",
    )


class DaskRun:
    """One run on the cluster (see the module's docstring); ``results()`` as ``ProbeRun.results()``."""

    def __init__(
        self,
        executor: DaskExecutor,
        targets: Sequence[tuple[Target, ConnectOptions]],
        options: ProbeOptions,
        stop: Stop,
        known: Mapping[str, Facts],
    ) -> None:
        budget = options.time_budget
        self.stop = Stop.after(budget, budget_error(budget, "the run's time budget"), stop) if budget else stop
        self.deadline = time.time() + budget if budget is not None else None
        self.options = options
        self.items = expand(targets, options.timeout, self.stop)
        self.known = dict(known)
        self.remote = executor.scheduler is not None
        secure = bool(executor.scheduler and executor.scheduler.startswith("tls://"))
        if self.remote and not secure and any(i.options.credentials for i in self.items):
            raise ExecutorError(
                "client credentials would cross the network in clear: give a tls:// --scheduler (docs/cluster.md)"
            )
        self.client, self.cluster = executor.connect(options.concurrency)
        # Loaded certificates do not pickle: each worker loads the trust stores itself.
        self.wire_options = replace(options, certificates=replace(options.certificates, anchors=()))
        self._done = bytearray(len(self.items))
        self._missing: dict[str | None, float] = {}  # zone -> since when it has had no worker
        self._seen: tuple[float, set[str | None]] | None = None  # when the zones were last asked, and them

    def results(self) -> Iterator[tuple[int, Facts]]:
        try:
            yield from self._results()
        finally:
            self.close()

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def _once(self, index: int, facts: Facts) -> Iterator[tuple[int, Facts]]:
        if not self._done[index]:
            self._done[index] = 1
            yield index, facts

    def _results(self) -> Iterator[tuple[int, Facts]]:
        groups: dict[tuple[str | None, str], list[int]] = {}
        for index, item in enumerate(self.items):
            found = self.known.get(item.label)
            if found is not None:
                yield from self._once(index, found)
            else:
                groups.setdefault((item.options.zone, host_key(item)), []).append(index)
        # A share (with any credentials read for it) is made only as it is sent: memory for what is in flight.
        todo = deque((zone, indices) for (zone, _), indices in groups.items())
        del groups
        if todo and not self._workers():
            self._wait_for_workers()
        inflight: dict[_Task, Share] = {}
        limit = max(4, 2 * sum(self._workers().values()))
        checked = time.monotonic()
        while todo or inflight:
            if (error := self.stop.error) is not None:
                yield from self._stopped(error, todo, inflight)
                return
            zones = self._zones()
            while todo and len(inflight) < limit:
                zone, indices = todo.popleft()
                if zone not in zones:
                    yield from self._unsent(indices, _no_worker(zone))
                    continue
                share = self._share(zone, indices)
                inflight[self._submit(share)] = share
            yield from self._collect(inflight)
            if time.monotonic() - checked >= 1.0:
                checked = time.monotonic()
                yield from self._orphans(inflight)

    def _share(self, zone: str | None, indices: list[int]) -> Share:
        items = tuple(self.items[i] for i in indices)
        secrets: tuple[SecretFiles | None, ...] = ()
        if self.remote:
            secrets = tuple(_secret(item.options.credentials) for item in items)
        return Share(tuple(indices), items, zone, secrets, self.deadline)

    def _submit(self, share: Share) -> _Task:
        resources = {zone_resource(share.zone): 1} if share.zone is not None else None
        return self.client.submit(probe_share, share, self.wire_options, resources=resources, pure=False)

    def _collect(self, inflight: dict[_Task, Share]) -> Iterator[tuple[int, Facts]]:
        from distributed import wait  # noqa: PLC0415

        if not inflight:
            time.sleep(_POLL)
            return
        try:
            done = wait(list(inflight), timeout=_POLL, return_when="FIRST_COMPLETED").done
        except TimeoutError:
            return
        for future in done:
            share = inflight.pop(future)
            try:
                results = future.result()
            except Exception as exc:  # a task that failed for good (KilledWorker after its retries, a bug)
                error = ProbeError(error_class=ErrorClass.probe_failed, message=f"the Dask task failed: {exc!r}")
                results = []
                yield from self._share_error(share, error)
            for index, facts in results:
                yield from self._once(index, facts)
            yield from self._share_error(
                share, ProbeError(error_class=ErrorClass.probe_failed, message="the Dask task returned no facts")
            )

    def _share_error(self, share: Share, error: ProbeError) -> Iterator[tuple[int, Facts]]:
        """Every item of the share not yet yielded, with ``error``."""
        for index, item in zip(share.indices, share.items, strict=True):
            yield from self._once(index, stopped_facts(item, error, datetime.now(UTC)))

    def _stopped(
        self, error: ProbeError, todo: deque[tuple[str | None, list[int]]], inflight: dict[_Task, Share]
    ) -> Iterator[tuple[int, Facts]]:
        """The run is over: tasks in flight are cancelled, and every item not finished has the stop's reason."""
        self.client.cancel(list(inflight))
        for share in inflight.values():
            yield from self._share_error(share, error)
        for _, indices in todo:
            yield from self._unsent(indices, error)

    def _unsent(self, indices: list[int], error: ProbeError) -> Iterator[tuple[int, Facts]]:
        for index in indices:
            yield from self._once(index, stopped_facts(self.items[index], error, datetime.now(UTC)))

    def _orphans(self, inflight: dict[_Task, Share]) -> Iterator[tuple[int, Facts]]:
        """Tasks whose zone has had no worker for ``_ZONE_GRACE``: cancelled, reported as no_worker."""
        zones = self._zones()
        now = time.monotonic()
        for future, share in list(inflight.items()):
            if share.zone in zones:
                self._missing.pop(share.zone, None)
                continue
            since = self._missing.setdefault(share.zone, now)
            if now - since >= _ZONE_GRACE:
                del inflight[future]
                self.client.cancel([future])
                yield from self._share_error(share, _no_worker(share.zone))

    def _workers(self) -> dict[str, int]:
        """Each worker's address and threads."""
        workers = self.client.scheduler_info(n_workers=-1).get("workers", {})
        return {address: int(info.get("nthreads", 1)) for address, info in workers.items()}

    def _zones(self) -> set[str | None]:
        """The zones that have a worker (None: any worker at all), asked of the scheduler at most once a second."""
        now = time.monotonic()
        if self._seen is not None and now - self._seen[0] < 1.0:
            return self._seen[1]
        workers = self.client.scheduler_info(n_workers=-1).get("workers", {})
        zones: set[str | None] = {None} if workers else set()
        for info in workers.values():
            for name in info.get("resources", {}):
                if str(name).startswith(ZONE_RESOURCE):
                    zones.add(str(name)[len(ZONE_RESOURCE) :])
        self._seen = (now, zones)
        return zones

    def _wait_for_workers(self) -> None:
        with contextlib.suppress(TimeoutError):  # none by then: reported per target as no_worker
            self.client.wait_for_workers(1, timeout=_WAIT_FOR_WORKERS)


def _secret(credentials: ClientCredentials | None) -> SecretFiles | None:
    if credentials is None:
        return None
    return SecretFiles(chain=credentials.cert_chain.read_bytes(), key=credentials.key.read_bytes())
