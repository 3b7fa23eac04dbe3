"""targets -> probe -> facts -> evaluate -> findings -> report, with no printing and no exiting."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from scanner.facts import Facts
from scanner.policy.engine import evaluate
from scanner.policy.pack import RulePack
from scanner.probe.options import ConnectOptions, ProbeOptions
from scanner.probe.run import probe_targets
from scanner.report import PackInfo, Report, ScanOptions, TargetReport, summarise, target_verdict
from scanner.targets import Target


def pack_info(pack: RulePack) -> PackInfo:
    return PackInfo(
        id=pack.id,
        title=pack.title,
        version=pack.version,
        sha256=pack.sha256,
        source=dict(pack.source),
        rules=len(pack.rules),
    )


def judge(facts: Sequence[Facts], packs: Sequence[RulePack], options: ScanOptions, started: datetime) -> Report:
    """Evaluate saved or fresh facts against packs and assemble the report."""
    targets = []
    for item in facts:
        findings = evaluate(item, list(packs))
        targets.append(
            TargetReport(
                target=item.target.input,
                verdict=target_verdict(item, findings),
                facts=item,
                findings=findings,
            )
        )
    return Report(
        started_at=started,
        finished_at=datetime.now(UTC),
        options=options,
        packs=[pack_info(p) for p in packs],
        targets=targets,
        summary=summarise(targets),
    )


def run_scan(
    targets: Sequence[tuple[Target, ConnectOptions]], packs: Sequence[RulePack], probe: ProbeOptions
) -> Report:
    started = datetime.now(UTC)
    facts = probe_targets(targets, probe)
    return judge(facts, packs, ScanOptions(timeout=probe.timeout, packs=[p.id for p in packs]), started)
