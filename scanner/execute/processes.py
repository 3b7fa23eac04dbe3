"""The process executor: a run's probes on every core of this machine, in worker processes forked from this one.

The local pool (``ProbeRun``) runs its targets in threads of one process, so a fleet scan is bound to one core by
Python's interpreter lock: tlsgate's own ClientHellos, parsing, certificate analysis and sslyze's bookkeeping are
Python code. This executor forks ``workers`` processes (default: the CPU count) once the trust stores are loaded,
so each starts at once with everything imported and loaded, and gives each a fixed share of the run: whole hosts
(the address it connects to, else the host name), balanced by the number of items, as the Dask executor groups
them. A host on one process is what keeps ``--per-host`` exact; ``--max-connections`` and ``--concurrency`` are
divided between the processes, so the run as a whole keeps within them. Each process runs the same ``ProbeRun`` as
the local pool over its share and sends each item's facts back as it finishes; they stream out of ``results()`` in
completion order, each item once.

Stops: Ctrl-C and SIGTERM reach the coordinator (the workers ignore SIGINT; the coordinator ends them), the
run's time budget and each target's time limit hold in the workers as in the local pool (the budget as the time
left when the run started). A worker that dies (killed, out of memory) loses nothing silently: its items not yet
reported come out with the error class ``probe_failed`` and the way it ended, the others' results are kept.

Nothing crosses a network: the workers are children of this process and read the same credential files.
Fork is used for its start-up cost (a spawned worker would import tlsgate and load the trust stores again: about
half a second each, the whole probing time of a 200-target run), so this executor is for POSIX systems.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from multiprocessing.process import BaseProcess
from typing import Any

from scanner.execute import ExecutorError, host_key
from scanner.facts import ErrorClass, Facts, ProbeError
from scanner.probe.connect.limits import Stop
from scanner.probe.options import ConnectOptions, ProbeOptions
from scanner.probe.run import ProbeRun, ScanItem, budget_error, expand, stopped_facts
from scanner.targets import Target

_POLL = 0.2  # seconds between looks at the run's stop and the workers' health while waiting for results
_FAILED = 70  # a worker's exit code after an unexpected error (EX_SOFTWARE)
_DRAIN = 1.0  # seconds a worker that exited has for its last results to arrive before its items are failed


@dataclass(frozen=True)
class ProcessExecutor:
    """Worker processes forked from this one: ``workers`` of them (default: the CPU count)."""

    workers: int | None = None

    def start(
        self,
        targets: Sequence[tuple[Target, ConnectOptions]],
        options: ProbeOptions,
        stop: Stop,
        known: Mapping[str, Facts],
    ) -> ProcessRun:
        if "fork" not in multiprocessing.get_all_start_methods():
            raise ExecutorError("--executor processes needs fork (POSIX); use --executor dask on this system")
        return ProcessRun(self.workers or os.cpu_count() or 1, targets, options, stop, known)


def shares(items: Sequence[ScanItem], indices: Sequence[int], count: int) -> list[list[int]]:
    """``indices`` of ``items`` in ``count`` shares, whole hosts each, balanced by item count (the largest hosts
    placed first, each on the share with the fewest items); empty shares are left out."""
    hosts: dict[str, list[int]] = {}
    for index in indices:
        hosts.setdefault(host_key(items[index]), []).append(index)
    placed: list[list[int]] = [[] for _ in range(max(1, count))]
    for group in sorted(hosts.values(), key=len, reverse=True):
        min(placed, key=len).extend(group)
    return [sorted(share) for share in placed if share]


def _worker_options(options: ProbeOptions, workers: int, deadline: float | None) -> ProbeOptions:
    """A worker's part of the run's limits (ceil for concurrency, floor for connections, at least 1 each)."""
    budget = max(0.01, deadline - time.monotonic()) if deadline is not None else None
    return replace(
        options,
        concurrency=max(1, -(-options.concurrency // workers)),
        max_connections=max(1, options.max_connections // workers),
        time_budget=budget,
    )


def _work(share: list[int], items: list[ScanItem], options: ProbeOptions, results: Any) -> None:
    """A worker process: the share's facts, each put on ``results`` as (index, facts) as it finishes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the coordinator's to handle: it ends the workers
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the coordinator's handler, inherited by the fork
    try:
        run = ProbeRun((), options, items=[items[index] for index in share])
        for position, facts in run.results():
            # As JSON: pydantic's generic models (Observed[bool] ...) do not pickle; the journal's form, which
            # reads back into the same facts (--resume relies on it).
            results.put((share[position], facts.model_dump_json()))
        results.close()
        results.join_thread()  # every result written to the pipe before the process exits
    except Exception:  # a bug: the coordinator reports this worker's unfinished items with the exit code
        os._exit(_FAILED)


class ProcessRun:
    """One run over worker processes (see the module's docstring); ``results()`` as ``ProbeRun.results()``."""

    def __init__(
        self,
        workers: int,
        targets: Sequence[tuple[Target, ConnectOptions]],
        options: ProbeOptions,
        stop: Stop,
        known: Mapping[str, Facts],
    ) -> None:
        budget = options.time_budget
        self.stop = Stop.after(budget, budget_error(budget, "the run's time budget"), stop) if budget else stop
        self.options = options
        self.workers = workers
        self.items = expand(targets, options.timeout, self.stop)
        self.known = dict(known)
        self._done = bytearray(len(self.items))
        self._left = 0  # items given to the workers and not yet reported

    def _once(self, index: int, facts: Facts) -> Iterator[tuple[int, Facts]]:
        if not self._done[index]:
            self._done[index] = 1
            self._left -= 1
            yield index, facts

    def results(self) -> Iterator[tuple[int, Facts]]:
        todo: list[int] = []
        for index, item in enumerate(self.items):
            found = self.known.get(item.label)
            if found is not None:
                yield from self._once(index, found)
            else:
                todo.append(index)
        if not todo:
            return
        parts = shares(self.items, todo, self.workers)
        self._left = len(todo)
        context = multiprocessing.get_context("fork")
        results = context.Queue()
        options = _worker_options(self.options, len(parts), self.stop.deadline)
        processes: list[tuple[BaseProcess, list[int]]] = []
        try:
            for share in parts:
                worker = context.Process(target=_work, args=(share, self.items, options, results), daemon=True)
                worker.start()
                processes.append((worker, share))
            yield from self._collect(results, processes)
        finally:
            for process, _ in processes:
                if process.is_alive():
                    process.kill()
            for process, _ in processes:
                process.join(timeout=5)
            results.close()

    def _collect(self, results: Any, processes: list[tuple[BaseProcess, list[int]]]) -> Iterator[tuple[int, Facts]]:
        ended: dict[int, float] = {}  # a process that exited -> when it was seen gone
        while self._left > 0:
            if (error := self.stop.error) is not None:
                # The run is over: every item not reported carries the stop's reason (the workers are ended).
                for _, share in processes:
                    for index in share:
                        yield from self._once(index, stopped_facts(self.items[index], error, datetime.now(UTC)))
                return
            try:
                index, document = results.get(timeout=_POLL)
            except queue.Empty:
                pass
            else:
                yield from self._once(index, Facts.model_validate_json(document))
                continue
            now = time.monotonic()
            for number, (process, share) in enumerate(processes):
                if process.is_alive():
                    continue
                if now - ended.setdefault(number, now) < _DRAIN:
                    continue
                error = _died(process.exitcode)
                for index in share:
                    yield from self._once(index, stopped_facts(self.items[index], error, datetime.now(UTC)))


def _died(code: int | None) -> ProbeError:
    how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
    return ProbeError(
        error_class=ErrorClass.probe_failed, message=f"the worker process probing this target {how} before it finished"
    )
