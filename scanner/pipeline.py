"""targets -> probe -> facts -> evaluate -> findings -> report, with no printing and no exiting.

Saved facts (a JSON report, or facts alone, read by ``scanner.saved``) re-enter the flow at ``judge``: re-judging
them needs no network.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from scanner.execute import Executor, LocalExecutor
from scanner.facts import ErrorClass, Facts, ProbeError
from scanner.findings import Finding
from scanner.gate import Gate, GateRun, apply_gate, decided_target, target_names, verdicts_outcome
from scanner.policy.engine import evaluate
from scanner.policy.pack import RulePack
from scanner.probe.options import ConnectOptions, ProbeOptions
from scanner.report import (
    GateInfo,
    PackInfo,
    Report,
    RunLimits,
    ScanOptions,
    Tally,
    TargetReport,
    Verdict,
)
from scanner.targets import Target
from scanner.targetspool import TargetSpool


def pack_info(pack: RulePack) -> PackInfo:
    return PackInfo(
        id=pack.id,
        title=pack.title,
        version=pack.version,
        sha256=pack.sha256,
        source=dict(pack.source),
        rules=len(pack.rules),
        params={name: param.value for name, param in pack.params.items()},
    )


class Judging:
    """A run's targets judged one at a time, as they finish, in any order (``index``: a target's place in the
    report): each passes through the gate once and is kept — in a ``TargetSpool`` (``spool``: a scan, whose
    targets must not all be in memory) or a list — while the gate's waiver uses, the summary and the run's
    verdict are counted; ``report`` assembles the report at the end."""

    def __init__(self, size: int, gate: Gate | None, started: datetime, *, spool: bool) -> None:
        self.gate = gate
        self.started = started
        self._run = GateRun(gate, started.astimezone(UTC).date()) if gate is not None else None
        self._spool = TargetSpool(size) if spool else None
        self._list: list[TargetReport | None] = [] if spool else [None] * size
        self._tally = Tally()
        self._verdicts: set[Verdict] = set()

    def add(self, index: int, facts: Facts, findings: list[Finding]) -> TargetReport:
        """One target's findings (evaluated, before the gate) through the gate: its report, kept."""
        gate = self.gate
        if self._run is not None:
            findings = self._run.judge(target_names(facts.target), findings, index)
        if gate is None:
            target = decided_target(facts, findings)
        else:
            target = decided_target(facts, findings, gate.fail_on, gate.min_grade)
        if self._spool is not None:
            self._spool.put(index, target)
        else:
            self._list[index] = target
        self._tally.add(target, index)
        self._verdicts.add(target.gate_verdict)
        return target

    def done(self, index: int) -> bool:
        return self._spool.filled(index) if self._spool is not None else self._list[index] is not None

    def report(self, options: ScanOptions, packs: Sequence[RulePack]) -> Report:
        verdict, exit_code = verdicts_outcome(self._verdicts)
        shell = Report(
            started_at=self.started,
            finished_at=datetime.now(UTC),
            options=options,
            packs=[pack_info(p) for p in packs],
            targets=[],
            summary=self._tally.summary(),
            gate=self._run.info() if self._run is not None else GateInfo(),
            verdict=verdict,
            exit_code=exit_code,
        )
        if self._spool is not None:  # validated above; a spool is not validated again (that would decode it)
            return shell.model_copy(update={"targets": self._spool})
        return shell.model_copy(update={"targets": [t for t in self._list if t is not None]})


def judge(
    facts: Sequence[Facts],
    packs: Sequence[RulePack],
    options: ScanOptions,
    started: datetime,
    gate: Gate | None = None,
    fact_packs: Sequence[Sequence[RulePack]] | None = None,
) -> Report:
    """Evaluate saved facts against packs, pass the findings through the gate, assemble the report.

    ``fact_packs``, when given, holds each facts item's own packs (an inventory's per-target packs); ``packs``
    then lists every pack of the run, as the report does.
    """
    if fact_packs is None:
        fact_packs = [packs] * len(facts)
    judging = Judging(len(facts), gate, started, spool=False)
    for index, (item, own) in enumerate(zip(facts, fact_packs, strict=True)):
        judging.add(index, item, evaluate(item, list(own)))
    return judging.report(options, packs)


def union_packs(per_target: Sequence[Sequence[RulePack]]) -> list[RulePack]:
    """Every distinct pack of a run in first-seen order (one pack with other parameter values counts again)."""
    seen: dict[tuple[str, str], RulePack] = {}
    for packs in per_target:
        for pack in packs:
            params = json.dumps({n: p.value for n, p in pack.params.items()}, sort_keys=True, default=str)
            seen.setdefault((pack.sha256, params), pack)
    return list(seen.values())


def gated(facts: Facts, findings: list[Finding], gate: Gate | None, started: datetime) -> TargetReport:
    """One target's verdict and findings, through the gate, as soon as its facts are final (for streaming)."""
    if gate is not None:
        (findings,), _ = apply_gate(gate, [(target_names(facts.target), findings)], started.astimezone(UTC).date())
    if gate is None:
        return decided_target(facts, findings)
    return decided_target(facts, findings, gate.fail_on, gate.min_grade)


class Listener(Protocol):
    """What a caller hears while a scan runs: how many results to expect (``kept`` of them from an earlier run,
    heard first, not probed again), then each target as it finishes."""

    def planned(self, total: int, kept: int = 0) -> None: ...

    def finished(self, result: TargetReport) -> None: ...


@dataclass(frozen=True)
class ScanOutcome:
    report: Report
    interrupted: bool  # stopped by Ctrl-C/SIGTERM: targets not finished carry the error class "interrupted"


INTERRUPTED = ProbeError(
    error_class=ErrorClass.interrupted, message="the run was interrupted before this target finished"
)


def run_scan(
    targets: Sequence[tuple[Target, ConnectOptions]],
    packs: Sequence[RulePack],
    probe: ProbeOptions,
    gate: Gate | None = None,
    target_packs: Sequence[Sequence[RulePack]] | None = None,
    listener: Listener | None = None,
    known: Mapping[str, Facts] | None = None,
    resumed_from: str | None = None,
    executor: Executor | None = None,
) -> ScanOutcome:
    """Probe and judge; ``target_packs`` (aligned with ``targets``) gives each target its own packs, ``packs``
    then being ignored in favour of their union. ``listener`` hears each target as it finishes; ``known`` holds
    facts of an earlier run (by target label) that are judged again instead of probed. ``executor`` runs the
    probes (scanner/execute: the local pool by default, or a Dask cluster).

    Ctrl-C (KeyboardInterrupt) during probing stops the run: the report then holds every finished target, the
    others with the error class ``interrupted``.
    """
    # Imported here: the probe stage (sslyze, sockets) is what `evaluate` and `cert` must never load.
    from scanner.probe.connect.limits import Stop  # noqa: PLC0415
    from scanner.probe.run import stopped_facts  # noqa: PLC0415

    started = datetime.now(UTC)
    per_target = list(target_packs) if target_packs is not None else [packs] * len(targets)
    if target_packs is not None:
        packs = union_packs(target_packs)
    stop = Stop()
    run = (executor or LocalExecutor()).start(targets, probe, stop, known or {})
    fact_packs = [per_target[item.source] for item in run.items]
    judging = Judging(len(run.items), gate, started, spool=True)
    interrupted = False
    if listener is not None:
        listener.planned(len(run.items), sum(1 for item in run.items if item.label in (known or {})))
    try:
        for index, facts in run.results():
            result = judging.add(index, facts, evaluate(facts, list(fact_packs[index])))
            if listener is not None:
                listener.finished(result)
    except KeyboardInterrupt:
        stop.set(INTERRUPTED)
        interrupted = True
    for index, item in enumerate(run.items):
        if not judging.done(index):
            facts = stopped_facts(item, INTERRUPTED)
            judging.add(index, facts, evaluate(facts, list(fact_packs[index])))
    ids = list(dict.fromkeys(p.id for p in packs))
    limits = RunLimits(
        concurrency=probe.concurrency,
        max_connections=probe.max_connections,
        per_host=probe.per_host,
        time_budget=probe.time_budget,
        target_time=probe.target_time,
    )
    options = ScanOptions(
        timeout=probe.timeout, packs=ids, limits=limits, interrupted=interrupted, resumed_from=resumed_from
    )
    return ScanOutcome(judging.report(options, packs), interrupted)
