"""Execute: run ``probe(target, plan) -> Facts`` for many targets, results streaming out as targets finish.

An ``Executor`` starts an ``Execution`` over the run's targets; both executors satisfy it: the local pool
(``LocalExecutor``, threads in this process: scanner/probe/run.py) and a Dask.distributed cluster
(``scanner.execute.dask.DaskExecutor``, imported only when asked for). Whatever runs the probes, an execution's
``items`` are the same (one per target, or per address with all_addresses) and so are their facts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from scanner.facts import Facts

if TYPE_CHECKING:
    from scanner.probe.connect.limits import Stop
    from scanner.probe.options import ConnectOptions, ProbeOptions
    from scanner.probe.run import ScanItem
    from scanner.targets import Target


class ExecutorError(Exception):
    """The executor cannot run this scan (no scheduler at that address, credentials that would cross the network
    in clear ...): one line for the user, raised before any target is probed."""


class Execution(Protocol):
    """One run's probes: ``items`` to probe and ``results()``, (item index, facts) in completion order, each item
    exactly once, however the run ends (a stopped run's unfinished items carry the stop's reason)."""

    @property
    def items(self) -> Sequence[ScanItem]: ...

    def results(self) -> Iterator[tuple[int, Facts]]: ...


class Executor(Protocol):
    """Starts executions; ``stop`` ends one early (Ctrl-C), ``known`` holds facts of items not to probe again."""

    def start(
        self,
        targets: Sequence[tuple[Target, ConnectOptions]],
        options: ProbeOptions,
        stop: Stop,
        known: Mapping[str, Facts],
    ) -> Execution: ...


@dataclass(frozen=True)
class LocalExecutor:
    """The local pool: worker threads in this process (``ProbeRun``), the default."""

    def start(
        self,
        targets: Sequence[tuple[Target, ConnectOptions]],
        options: ProbeOptions,
        stop: Stop,
        known: Mapping[str, Facts],
    ) -> Execution:
        from scanner.probe.run import ProbeRun  # noqa: PLC0415 - sslyze loads only when probing

        return ProbeRun(targets, options, stop, known)


def host_key(item: ScanItem) -> str:
    """The host an item connects to (its address, else its host name): the unit both the process and the Dask
    executors keep on one worker, so that ``--per-host`` holds exactly."""
    return (item.address or item.target.host).lower()
