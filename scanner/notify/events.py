"""Events worth a notification, derived from two consecutive reports of the same estate: a pure function of the
reports and of the notification state, scanning nothing.

``events_between(before, after, state)`` reads ``scanner.diff.diff_reports`` for findings and drift, and the state
for what is sent once: an expiry threshold per certificate, an unreachable streak per target. It returns only
events not yet delivered (``state.seen``); delivering them marks them (see ``channels.deliver``). Every event has
a stable idempotency ``key``: deriving the same pair of reports again (after a restart) yields the same keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from scanner.diff import TargetDiff, TargetKey, diff_reports, target_key
from scanner.findings import SEVERITY_RANK, Severity, Status
from scanner.notify.state import NotifyState, Streak
from scanner.report import Report, TargetReport, ToolInfo

EVENT_SCHEMA_VERSION = "1"
DEFAULT_EXPIRY_THRESHOLDS: tuple[int, ...] = (30, 14, 7, 1)
DEFAULT_UNREACHABLE_AFTER = 2

EventKind = Literal[
    "new_failure", "fixed_failure", "certificate_rotated", "protocol_added", "protocol_removed", "suite_added",
    "suite_removed", "trust_changed", "grade_changed", "certificate_expiring", "target_unreachable",
    "target_reachable",
]  # fmt: skip
EVENT_KINDS: tuple[str, ...] = get_args(EventKind)


class Event(BaseModel):
    """One event, as the generic webhook sends it (``reports/schema/event.schema.json``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal["1"] = "1"
    tool: ToolInfo = ToolInfo()
    key: str = Field(description="Stable idempotency key: the same event always has the same key; a receiver may "
                     "drop a key it has seen.")  # fmt: skip
    kind: EventKind
    severity: Severity = Field(description="new_failure: the rule's; otherwise fixed per kind (see the docs).")
    target: str = Field(description="The target as the inventory or command line wrote it.")
    host: str
    port: int
    tags: list[str] = Field(default_factory=list, description="The target's inventory tags (its group included).")
    at: datetime = Field(description="When the scan that showed it finished.")
    summary: str = Field(description="One line, for people.")
    pack: str | None = None
    rule: str | None = None
    title: str | None = Field(default=None, description="The rule's title.")
    protocol: str | None = Field(default=None, description="The protocol version added or removed, or whose suites.")
    suites: list[str] = Field(default_factory=list, description="Suites added or removed (IANA names).")
    trust_store: str | None = None
    before: str | None = Field(default=None, description="The previous value (a certificate SHA-256, a verdict).")
    after: str | None = None
    not_after: datetime | None = Field(default=None, description="For certificate events: the leaf's not-after.")
    days_remaining: float | None = None
    threshold_days: int | None = Field(default=None, description="The expiry threshold crossed.")
    unreachable_runs: int | None = Field(default=None, description="Consecutive runs the target could not be scanned.")
    error: str | None = Field(default=None, description="Why the target could not be scanned (an error class).")


_SEVERITY: dict[str, Severity] = {
    "fixed_failure": "info", "certificate_rotated": "info", "protocol_added": "medium", "protocol_removed": "low",
    "suite_added": "low", "suite_removed": "info", "grade_changed": "medium", "target_unreachable": "high",
    "target_reachable": "info",
}  # fmt: skip


def expiry_severity(threshold: int) -> Severity:
    return "critical" if threshold <= 1 else "high" if threshold <= 7 else "medium" if threshold <= 14 else "low"


def severity_at_least(severity: str, minimum: str) -> bool:
    return SEVERITY_RANK.get(severity, len(SEVERITY_RANK)) <= SEVERITY_RANK[minimum]


def _ident(key: TargetKey) -> str:
    """A target's identity in keys and streaks: host, port, SNI and STARTTLS (its name may be written two ways)."""
    return f"{key.host}:{key.port}/{key.server_name or '-'}/{key.starttls or '-'}"


class _Builder:
    def __init__(self, after: Report, tags: Mapping[str, Iterable[str]]) -> None:
        self.run = after.started_at.isoformat()
        self.at = after.finished_at
        self.tags = tags
        self.events: list[Event] = []

    def add(self, target: TargetReport, kind: EventKind, key: str, summary: str, **fields: Any) -> None:
        info = target.facts.target
        fields.setdefault("severity", _SEVERITY.get(kind, "info"))
        self.events.append(
            Event(key=f"{kind}|{_ident(target_key(target.facts))}|{key}", kind=kind, target=target.target,
                  host=info.host, port=info.port, tags=sorted(self.tags.get(target.target, ())), at=self.at,
                  summary=f"{target.target}: {summary}", **fields)
        )  # fmt: skip


def _findings(build: _Builder, target: TargetReport, diff: TargetDiff | None) -> None:
    """New failures (failing in this run, not in the last; every failure on a first run) and fixed ones."""
    if diff is None or diff.state == "added":  # first seen: every failure is new
        changes = [(f.pack, f.rule, f.title, f.severity, "new") for f in target.findings if f.status == Status.failed]
    else:
        failing = {(f.pack, f.rule) for f in target.findings if f.status == Status.failed}
        changes = [(f.pack, f.rule, f.title, f.severity, f.change) for f in diff.findings
                   if f.change == "fixed" or (f.change == "new" and (f.pack, f.rule) in failing)]  # fmt: skip
    for pack, rule, title, severity, change in changes:
        ids = {"pack": pack, "rule": rule, "title": title}
        if change == "new":
            build.add(target, "new_failure", f"{pack}/{rule}|{build.run}", f'{pack}/{rule} "{title}" fails',
                      severity=severity, **ids)  # fmt: skip
        else:
            build.add(target, "fixed_failure", f"{pack}/{rule}|{build.run}", f'{pack}/{rule} "{title}" fixed', **ids)


def _drift(build: _Builder, target: TargetReport, diff: TargetDiff, before: TargetReport | None) -> None:
    for cert in diff.certificates:
        was, now = cert.before, cert.after
        offers = ", ".join(cert.offers)
        summary = f"certificate ({offers}) rotated: {was.sha256[:16] if was else 'none'} -> "
        summary += now.sha256[:16] if now else "none"
        build.add(target, "certificate_rotated", f"{offers}|{was.sha256 if was else '-'}|{now.sha256 if now else '-'}",
                  summary, before=was.sha256 if was else None, after=now.sha256 if now else None,
                  not_after=now.not_after if now else None)  # fmt: skip
    for version in diff.protocols_added:
        build.add(target, "protocol_added", f"{version}|{build.run}", f"{version} now accepted", protocol=version)
    for version in diff.protocols_removed:
        build.add(target, "protocol_removed", f"{version}|{build.run}", f"{version} no longer accepted",
                  protocol=version)  # fmt: skip
    for change in diff.suites:
        sides: tuple[tuple[EventKind, list[str], str], ...] = (
            ("suite_added", change.added, "added"), ("suite_removed", change.removed, "removed")
        )  # fmt: skip
        for kind, suites, verb in sides:
            if suites:
                build.add(target, kind, f"{change.version}|{','.join(suites)}|{build.run}",
                          f"{change.version} suites {verb}: {', '.join(suites)}", protocol=change.version,
                          suites=suites)  # fmt: skip
    for fact in diff.facts:
        if fact.fact.startswith("certificate.trust["):
            store = fact.fact.removeprefix("certificate.trust[").removesuffix("]")
            lost = fact.before is True and fact.after is False
            why = f" ({fact.note})" if fact.note else ""
            build.add(target, "trust_changed", f"{store}|{fact.after}|{build.run}",
                      f"{'no longer' if lost else 'now'} trusted by {store}{why}", trust_store=store,
                      before=str(fact.before).lower(), after=str(fact.after).lower(),
                      severity="high" if lost else "info")  # fmt: skip
    # targets are not graded yet: a report that carries a grade per target gets grade events without a change here
    was, now = getattr(before, "grade", None), getattr(target, "grade", None)
    if was is not None and now is not None and was != now:
        build.add(target, "grade_changed", f"{was}|{now}|{build.run}", f"grade {was} -> {now}", before=str(was),
                  after=str(now))  # fmt: skip


def _expiry(build: _Builder, target: TargetReport, state: NotifyState, thresholds: Sequence[int],
            sent: set[str]) -> None:  # fmt: skip
    """The smallest threshold each served leaf is within, once per certificate and threshold."""
    for deployment in target.facts.deployments():
        leaf = deployment.certificate.leaf
        if leaf is None or leaf.sha256 in sent:
            continue
        days = (leaf.not_after - build.at).total_seconds() / 86400
        crossed = [t for t in thresholds if days <= t]
        if not crossed:
            continue
        threshold = min(crossed)
        key = f"certificate_expiring|{leaf.sha256}|{threshold}"
        if state.seen(key):
            continue
        sent.add(leaf.sha256)
        when = "expired" if days < 0 else f"expires in {days:.1f} days"
        build.events.append(
            Event(key=key, kind="certificate_expiring", severity=expiry_severity(threshold), target=target.target,
                  host=target.facts.target.host, port=target.facts.target.port,
                  tags=sorted(build.tags.get(target.target, ())), at=build.at,
                  summary=f"{target.target}: certificate {leaf.subject} {when} ({leaf.not_after:%Y-%m-%d %H:%M} UTC, "
                  f"threshold {threshold} days)", after=leaf.sha256, not_after=leaf.not_after,
                  days_remaining=round(days, 2), threshold_days=threshold)
        )  # fmt: skip


def _runs(count: int) -> str:
    return "1 run" if count == 1 else f"{count} consecutive runs"


def _reachability(build: _Builder, target: TargetReport, state: NotifyState, after_runs: int) -> None:
    """Counts the target's unreachable runs (once per run, however often this run is derived) and raises the
    event at ``after_runs``; the first reachable run after an alert raised says it is back."""
    ident = _ident(target_key(target.facts))
    streak = state.streak(ident)
    down = target.facts.status != "ok"
    if streak.last_run != build.run:
        if down:
            streak = Streak(count=streak.count + 1, since=streak.since or build.run, last_run=build.run)
        else:
            ended = streak.since if streak.count >= after_runs else None
            streak = Streak(last_run=build.run, ended=ended)
        state.set_streak(ident, streak)
    error = target.facts.error.error_class.value if target.facts.error else None
    if down and streak.count >= after_runs:
        build.add(target, "target_unreachable", f"{streak.since}",
                  f"unreachable for {_runs(streak.count)} ({error or 'probe failed'})",
                  unreachable_runs=streak.count, error=error)  # fmt: skip
    elif not down and streak.ended is not None:
        build.add(target, "target_reachable", f"{streak.ended}", "reachable again")


def events_between(
    before: Report | None,
    after: Report,
    state: NotifyState,
    *,
    tags: Mapping[str, Iterable[str]] | None = None,
    expiry_thresholds: Sequence[int] = DEFAULT_EXPIRY_THRESHOLDS,
    unreachable_after: int = DEFAULT_UNREACHABLE_AFTER,
) -> list[Event]:
    """The events ``after`` shows against ``before`` (none: the first run, where every failure is new), not yet
    delivered. ``tags`` maps a target as written to its inventory tags; the streak counters are updated in
    ``state`` (idempotent per run)."""
    build = _Builder(after, tags or {})
    diffs: dict[str, tuple[TargetDiff | None, TargetReport | None]] = {}
    if before is not None:
        previous = {_ident(target_key(t.facts)): t for t in before.targets}
        for compared in diff_reports(before, after, match="identity").targets:
            diffs[_ident(compared.key)] = (compared, previous.get(_ident(compared.key)))
    sent: set[str] = set()
    for target in after.targets:
        diff, old = diffs.get(_ident(target_key(target.facts)), (None, None))
        _reachability(build, target, state, unreachable_after)
        if target.facts.status != "ok":
            continue
        _findings(build, target, diff)
        if diff is not None and diff.state == "compared":
            _drift(build, target, diff, old)
        _expiry(build, target, state, expiry_thresholds, sent)
    return [event for event in build.events if not state.seen(event.key)]


def event_schema() -> dict[str, Any]:
    schema = Event.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://tlsgate.dev/schema/event-{EVENT_SCHEMA_VERSION}.json"
    return schema
