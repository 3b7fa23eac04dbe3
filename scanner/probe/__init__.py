"""The probe stage: the only code that talks to the network. ``(targets, options) -> Facts``."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from scanner.facts import CertificateFacts, ErrorClass, Facts, ProbeError, TargetInfo
from scanner.probe import sslyze_adapter
from scanner.probe.preflight import Reachable, preflight
from scanner.targets import Target


@dataclass(frozen=True)
class ProbeOptions:
    timeout: float = 5.0
    concurrency: int = 10
    per_server_connections: int = 5


def _target_info(target: Target, address: str | None) -> TargetInfo:
    return TargetInfo(
        input=target.input,
        host=target.host,
        port=target.port,
        server_name=target.server_name,
        ip_address=address,
    )


def _failed(target: Target, started: datetime, error: ProbeError, address: str | None = None) -> Facts:
    return Facts(
        target=_target_info(target, address),
        started_at=started,
        finished_at=datetime.now(UTC),
        status="error",
        error=error,
        certificate=CertificateFacts(status="not_probed"),
    )


def probe_targets(targets: Sequence[Target], options: ProbeOptions) -> list[Facts]:
    """Probe every target; a target that fails yields Facts with an error and never stops the others."""
    started = datetime.now(UTC)
    with ThreadPoolExecutor(max_workers=max(1, min(options.concurrency, len(targets) or 1))) as pool:
        checks = list(pool.map(lambda t: preflight(t, options.timeout), targets))

    results: list[Facts | None] = [None] * len(targets)
    reachable: list[tuple[int, Target, str]] = []
    for index, (target, check) in enumerate(zip(targets, checks, strict=True)):
        if isinstance(check, Reachable):
            reachable.append((index, target, check.ip_address))
        else:
            results[index] = _failed(target, started, check)

    outcomes = sslyze_adapter.scan(
        [(target, address) for _, target, address in reachable],
        timeout=options.timeout,
        per_server_connections=options.per_server_connections,
        concurrent_servers=options.concurrency,
    )
    for position, outcome in outcomes:
        index, target, address = reachable[position]
        if outcome.error is not None:
            results[index] = _failed(target, started, outcome.error, address)
            continue
        results[index] = Facts(
            target=_target_info(target, address),
            started_at=started,
            finished_at=datetime.now(UTC),
            status="ok",
            protocols=outcome.protocols,
            certificate=outcome.certificate,
        )
    return [
        facts
        if facts is not None
        else _failed(
            targets[i],
            started,
            ProbeError(error_class=ErrorClass.probe_failed, message="no result from the scanner"),
        )
        for i, facts in enumerate(results)
    ]
