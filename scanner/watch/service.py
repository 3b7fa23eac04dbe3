"""The watch loop: each cycle scans the inventory's targets that are due (one run, recorded in the store as
targets finish), derives the events of each target against its previous run in the store, and sends them through
the routed channels; the store records what was delivered, so each event goes out once across restarts.

A store that cannot be opened or written keeps the cycle's report in the spool; it is written (and its events
derived and sent) once the store is back, tried again with a growing backoff. Nothing here prints, exits or
installs signal handlers: the command line does (scanner/cli/watch.py), through ``Control`` and ``log``.
"""

from __future__ import annotations

import importlib
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scanner.engine import InventoryRequest, RequestError, ScanRequest, TrustRequest
from scanner.engine import scan as engine_scan
from scanner.gate import Gate
from scanner.probe.options import ProbeOptions
from scanner.report import Report, ScanOptions, TargetReport
from scanner.targets.inventory import Inventory, InventoryError, InventoryTarget
from scanner.targets.reader import load_inventory
from scanner.watch.schedule import Schedule
from scanner.watch.spool import Spool, SpoolError

if TYPE_CHECKING:
    from scanner.notify.channels import Channel
    from scanner.notify.config import NotifyConfig
    from scanner.notify.events import Event
    from scanner.serve.metrics import LatestState
    from scanner.store import Store

Log = Callable[..., None]  # log(message, level="info", **fields): one line, formatted by the command line
BACKOFF_FIRST, BACKOFF_MAX = 2.0, 300.0  # seconds between tries of a store that is down
TICK = 0.2  # how often the idle loop looks at the signals' flags


@dataclass
class Control:
    """Set by the command line's signal handlers, read by the loop between targets and while idle."""

    stop: bool = False
    reload: bool = False
    scanning: bool = False  # a scan runs: a stop interrupts it (KeyboardInterrupt), finished targets kept


@dataclass(frozen=True)
class Notifier:
    config: NotifyConfig
    channels: Mapping[str, Channel]
    unreachable_after: int = 2


@dataclass(frozen=True)
class WatchSettings:
    inventory_path: Path
    store_url: str
    spool: Path
    packs: Sequence[str]  # for targets whose inventory names none
    probe: ProbeOptions
    trust: TrustRequest
    gate: Gate = field(default_factory=Gate)
    notifier: Notifier | None = None
    site: Path | None = None
    default_every: float = 24 * 3600.0


@dataclass
class CycleResult:
    run_id: int | None
    targets: int
    verdicts: dict[str, int]
    events_sent: int
    events_failed: int
    duration: float
    stored: str  # "store", "spool" or "none" (nothing scanned)
    interrupted: bool
    exit_code: int
    report: Report | None = None


class Watcher:
    def __init__(self, settings: WatchSettings, inventory: Inventory, log: Log, control: Control,
                 metrics: LatestState | None = None) -> None:  # fmt: skip
        self.settings = settings
        self.inventory = inventory
        self.log = log
        self.control = control
        self.metrics = metrics
        self.schedule = Schedule(settings.default_every)
        self.spool = Spool(settings.spool)
        self.next_flush = 0.0
        self.backoff = BACKOFF_FIRST

    # --- the loop -----------------------------------------------------------------------------------------

    def run_forever(self) -> None:
        """Cycles until ``control.stop``; a run stopped mid-way is kept as interrupted."""
        self._seed()
        while not self.control.stop:
            if self.control.reload:
                self.control.reload = False
                self.reload()
            now = time.time()
            if self.spool.runs() and now >= self.next_flush:
                self.flush()
            due = self.schedule.due(self.inventory.targets, now)
            if due:
                try:
                    self.cycle(due)
                except Exception as exc:  # a service outlives one bad cycle (a spool it cannot write, ...)
                    self.schedule.scanned(due, time.time())  # not retried at once: no busy loop on a lasting fault
                    self.log(f"cycle failed: {type(exc).__name__}: {_line(exc)}", level="error")
                continue
            wake = self.schedule.wake(self.inventory.targets, now)
            if self.spool.runs():
                wake = min(wake, self.next_flush)
            while not self.control.stop and not self.control.reload and time.time() < wake:
                time.sleep(min(TICK, max(0.0, wake - time.time())))

    def _seed(self) -> None:
        """Targets the store saw scanned are due one interval after that scan (a restart does not rescan all)."""
        store = self._open()
        if store is None:
            return
        names = {t.name for t in self.inventory.targets}
        try:
            latest = [entry for entry in store.latest_states() if entry.target in names]
            if self.metrics is not None:  # /metrics tells the last known state from the start, not after a cycle
                by_run: dict[int, list[str]] = {}
                for entry in latest:
                    by_run.setdefault(entry.run_id, []).append(entry.target)
                for run_id, labels in by_run.items():
                    self.metrics.update(store.report(run_id, only=labels).targets)
        except Exception as exc:  # any store failure here only means every target is due now
            self.log(f"cannot read the latest scans from the store: {_line(exc)}", level="warning")
            return
        finally:
            store.close()
        self.schedule.seed(self.inventory.targets, {entry.target: entry.at.timestamp() for entry in latest})

    def reload(self) -> bool:
        """The inventory read again; a bad one keeps the current one, its problems logged one a line."""
        try:
            loaded = load_inventory(self.settings.inventory_path)
        except InventoryError as exc:
            for problem in exc.problems:
                self.log(f"inventory not reloaded: {problem.as_line()}", level="error")
            self.log(f"inventory not reloaded: keeping the current one ({len(self.inventory.targets)} targets)",
                     level="error")  # fmt: skip
            return False
        gone = {t.name for t in self.inventory.targets} - {t.name for t in loaded.targets}
        self.inventory = loaded
        self.schedule.keep(t.name for t in loaded.targets)
        if self.metrics is not None and gone:
            self.metrics.forget(gone)
        self.log(f"inventory reloaded: {len(loaded.targets)} targets", targets=len(loaded.targets))
        return True

    # --- one cycle ----------------------------------------------------------------------------------------

    def cycle(self, targets: Sequence[InventoryTarget] | None = None) -> CycleResult:
        """Scan ``targets`` (all of the inventory's when None) as one run; store, notify, log one line."""
        chosen = list(self.inventory.targets if targets is None else targets)
        started = time.monotonic()
        self.flush()
        store = self._open()
        recorder = None
        if store is not None:
            try:
                recorder = store.recorder(
                    "watch", ScanOptions(timeout=self.settings.probe.timeout, packs=list(self.settings.packs)), []
                )
            except Exception as exc:  # the store failing is an outage: the run goes to the spool
                self.log(f"cannot begin the run in store {store.name}: {_line(exc)}", level="error")
        report, interrupted = self._scan(chosen, recorder)
        self.schedule.scanned(chosen, time.time())
        if report is None:
            if store is not None:
                store.close()
            return CycleResult(None, 0, {}, 0, 0, time.monotonic() - started, "none", interrupted, 130)
        run_id: int | None = None
        if recorder is not None and recorder.failure is None:
            run_id = recorder.run_id
        else:
            if recorder is not None:
                self.log(f"cannot record the run in store {recorder.name}: {recorder.failure}", level="error")
            path = self.spool.put(report, recorder.run_id if recorder is not None else None)
            self.log(f"run kept in the spool ({path}) until the store is back", level="warning", spool=str(path))
            self.next_flush = time.time() + self.backoff
        sent = failed = 0
        if store is not None and run_id is not None:
            sent, failed = self._notify(store, run_id, report)
            self._site(store)
        if store is not None:
            store.close()
        verdicts: dict[str, int] = dict(Counter(str(t.verdict) for t in report.targets))
        result = CycleResult(run_id, len(report.targets), verdicts, sent, failed, time.monotonic() - started,
                             "store" if run_id is not None else "spool", interrupted,
                             130 if interrupted else report.exit_code, report)  # fmt: skip
        self.log(
            f"run {run_id if run_id is not None else '(spooled)'}: {result.targets} targets "
            f"({', '.join(f'{k} {v}' for k, v in sorted(verdicts.items())) or 'none'}), {sent} events sent"
            + (f", {failed} not delivered" if failed else "")
            + (", interrupted" if interrupted else "")
            + f", {result.duration:.1f} s",
            kind="run", run_id=run_id, targets=result.targets, verdicts=verdicts, events_sent=sent,
            events_undelivered=failed, duration_s=round(result.duration, 3), stored=result.stored,
            interrupted=interrupted, exit_code=result.exit_code,
        )  # fmt: skip
        return result

    def _scan(self, chosen: Sequence[InventoryTarget], recorder: Any) -> tuple[Report | None, bool]:
        listener = _Metrics(self.metrics) if self.metrics is not None else None
        with tempfile.TemporaryDirectory(prefix="tlsgate-credentials-") as workdir:
            planning = InventoryRequest(self.inventory, chosen, self.settings.packs, [], Path(workdir))
            request = ScanRequest(targets=[], packs=[], probe=self.settings.probe, gate=self.settings.gate,
                                  inventory=planning, trust=self.settings.trust, recorder=recorder)  # fmt: skip
            try:
                self.control.scanning = True
                if self.control.stop:
                    raise KeyboardInterrupt
                outcome = engine_scan(request, listener)
            except RequestError as exc:
                for line in exc.lines:
                    self.log(f"cannot scan: {line}", level="error")
                return None, False
            except KeyboardInterrupt:
                return None, True
            finally:
                self.control.scanning = False
        return outcome.report, outcome.interrupted

    # --- the store, the spool -----------------------------------------------------------------------------

    def _open(self) -> Store | None:
        from scanner.store import StoreError, open_store  # noqa: PLC0415 - SQLAlchemy loads with the store

        try:
            store = open_store(self.settings.store_url)
        except StoreError as exc:
            self.log(f"store unavailable: {exc}", level="error")
            return None
        self.backoff = BACKOFF_FIRST
        return store

    def flush(self) -> int:
        """Spooled runs written to the store (oldest first), their events derived and sent; how many were."""
        paths = self.spool.runs()
        if not paths:
            return 0
        store = self._open()
        if store is None:
            self.next_flush = time.time() + self.backoff
            self.backoff = min(self.backoff * 2, BACKOFF_MAX)
            return 0
        written = 0
        try:
            for path in paths:
                try:
                    spooled = self.spool.read(path)
                except SpoolError as exc:
                    self.log(str(exc), level="error")
                    continue
                run_id = store.record_report("watch", spooled.report)
                if spooled.abandoned_run is not None:
                    store.finish_run(spooled.abandoned_run, "interrupted")
                path.unlink()
                written += 1
                self.log(f"spooled run written to the store as run {run_id}", run_id=run_id, kind="spool")
                self._notify(store, run_id, spooled.report)
        except Exception as exc:  # the store failing again: the rest stays spooled
            self.log(f"store unavailable while writing the spool: {_line(exc)}", level="error")
            self.next_flush = time.time() + self.backoff
            self.backoff = min(self.backoff * 2, BACKOFF_MAX)
        finally:
            store.close()
        return written

    # --- events -------------------------------------------------------------------------------------------

    def _notify(self, store: Store, run_id: int, report: Report) -> tuple[int, int]:
        """Events of ``report`` against each target's previous run, with those left undelivered before; sent and
        recorded. (sent, not delivered)."""
        notifier = self.settings.notifier
        if notifier is None:
            return 0, 0
        from scanner.notify.channels import deliver  # noqa: PLC0415
        from scanner.notify.events import events_between  # noqa: PLC0415
        from scanner.store.notifystate import StoreNotifyState  # noqa: PLC0415

        # An interrupted run's unfinished targets were not scanned: neither unreachable nor changed.
        finished = [
            t for t in report.targets if t.facts.error is None or t.facts.error.error_class.value != "interrupted"
        ]
        report = report.model_copy(update={"targets": finished})
        state = StoreNotifyState(store)
        tags = {t.name: sorted(t.tags) for t in self.inventory.targets}
        pending = self.spool.pending()
        try:
            before = previous_report(store, run_id, [t.target for t in report.targets])
            events = events_between(before, report, state, tags=tags,
                                    unreachable_after=notifier.unreachable_after)  # fmt: skip
            queue = _unique([*pending, *events])
            delivery = deliver(queue, notifier.config, notifier.channels, state)
            left = [e for e in queue if not state.seen(e.key)]
        except Exception as exc:  # the store failing mid-way: what is not marked is sent again
            self.log(f"events of run {run_id} not derived or not all recorded: {_line(exc)}", level="error")
            return 0, len(pending)
        self.spool.set_pending(left)
        return len({key for key, _ in delivery.sent}), len(left)

    def _site(self, store: Store) -> None:
        if self.settings.site is None:
            return
        try:
            # the status site is built separately (scanner/site.py); the command line checks it is there
            write_site = importlib.import_module("scanner.site").write_site
        except (ImportError, AttributeError):
            self.log("--site needs scanner.site", level="error")
            return
        try:
            write_site(store, self.settings.site)
        except Exception as exc:  # a site that cannot be written does not stop the watch
            self.log(f"status site not written to {self.settings.site}: {_line(exc)}", level="error")


class _Metrics:
    """The scan's listener that updates /metrics as each target finishes."""

    def __init__(self, state: LatestState) -> None:
        self.state = state

    def planned(self, total: int, kept: int = 0) -> None:
        pass

    def finished(self, result: TargetReport) -> None:
        self.state.update([result])


def previous_report(store: Store, run_id: int, labels: Sequence[str]) -> Report | None:
    """Each target's newest run before ``run_id`` in the store, as one report (None: no target was seen)."""
    from scanner.store.notifystate import previous_runs  # noqa: PLC0415 - SQLAlchemy loads with the store

    by_run: dict[int, list[str]] = {}
    for label, found in previous_runs(store, run_id, labels).items():
        by_run.setdefault(found, []).append(label)
    if not by_run:
        return None
    reports = [store.report(found, only=names) for found, names in sorted(by_run.items())]
    return reports[-1].model_copy(update={"targets": [t for r in reports for t in r.targets]})


def _unique(events: Sequence[Event]) -> list[Event]:
    return list({e.key: e for e in events}.values())


def _line(exc: BaseException) -> str:
    text = " ".join(str(exc).split("\n", maxsplit=1)[0].split())
    return text or type(exc).__name__
