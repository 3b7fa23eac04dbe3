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
from scanner.gate import Gate, apply_gate, decided_target, run_outcome, target_names
from scanner.policy.engine import evaluate
from scanner.policy.pack import RulePack
from scanner.probe.options import ConnectOptions, ProbeOptions
from scanner.report import (
    GateInfo,
    PackInfo,
    Report,
    RunLimits,
    ScanOptions,
    TargetReport,
    summarise,
)
from scanner.targets import Target


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


def judge(
    facts: Sequence[Facts],
    packs: Sequence[RulePack],
    options: ScanOptions,
    started: datetime,
    gate: Gate | None = None,
    fact_packs: Sequence[Sequence[RulePack]] | None = None,
    evaluated: Sequence[list[Finding] | None] | None = None,
) -> Report:
    """Evaluate saved or fresh facts against packs, pass the findings through the gate, assemble the report.

    ``fact_packs``, when given, holds each facts item's own packs (an inventory's per-target packs); ``packs``
    then lists every pack of the run, as the report does. ``evaluated`` holds findings already evaluated (before
    the gate) as targets finished; an item without them is evaluated here.
    """
    if fact_packs is None:
        fact_packs = [packs] * len(facts)
    if evaluated is None:
        evaluated = [None] * len(facts)
    findings = [
        given if given is not None else evaluate(item, list(own))
        for item, own, given in zip(facts, fact_packs, evaluated, strict=True)
    ]
    info = GateInfo()
    if gate is not None:
        names = [target_names(item.target) for item in facts]
        findings, info = apply_gate(gate, list(zip(names, findings, strict=True)), started.astimezone(UTC).date())
    min_grade = gate.min_grade if gate is not None else None
    targets = [
        decided_target(item, judged, info.fail_on, min_grade) for item, judged in zip(facts, findings, strict=True)
    ]
    verdict, exit_code = run_outcome(targets)
    return Report(
        started_at=started,
        finished_at=datetime.now(UTC),
        options=options,
        packs=[pack_info(p) for p in packs],
        targets=targets,
        summary=summarise(targets),
        gate=info,
        verdict=verdict,
        exit_code=exit_code,
    )


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
    found: list[Facts | None] = [None] * len(run.items)
    evaluated: list[list[Finding] | None] = [None] * len(run.items)
    interrupted = False
    if listener is not None:
        listener.planned(len(run.items), sum(1 for item in run.items if item.label in (known or {})))
    try:
        for index, facts in run.results():
            found[index] = facts
            evaluated[index] = findings = evaluate(facts, list(fact_packs[index]))
            if listener is not None:
                listener.finished(gated(facts, findings, gate, started))
    except KeyboardInterrupt:
        stop.set(INTERRUPTED)
        interrupted = True
    facts_list = [
        facts if facts is not None else stopped_facts(item, INTERRUPTED)
        for item, facts in zip(run.items, found, strict=True)
    ]
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
    report = judge(facts_list, packs, options, started, gate, fact_packs, evaluated)
    return ScanOutcome(report, interrupted)
