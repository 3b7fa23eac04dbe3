"""What changed between two reports of the same estate: a pure comparison, scanning and judging nothing again.

``diff_reports(before, after)`` pairs the targets of two reports (by identity: host, port, SNI and STARTTLS) and
says, per target, which findings are new, fixed or still failing (by pack and rule id, with the gate's decision on
each side) and how the facts drifted: protocol versions, cipher suites per version, groups, certificates (per
deployment), trust and host-name verdicts, client authentication and session lifetimes; and which targets were
added, removed, became unreachable or reachable again. The two reports may come from files or, later, from the
store's runs: this module only sees ``Report``.

**Regressions** (what ``tlsgate diff --fail-on-regression`` exits 1 on) are decided here, once, and recorded on the
diff; renderers read them. The second report is weaker than the first when, for a target compared in both:

- a finding fails and counts in the second (gate decision ``counted``) but was not a counted failure in the first
  (new, or it was passing, inconclusive, waived, in the baseline or below --fail-on), for a pack both ran;
- a protocol version is accepted that is older than every version the first accepted (the floor dropped, e.g.
  TLS 1.0 enabled on a TLS 1.2 server; adding TLS 1.3 is no regression);
- a cipher suite is accepted with a version whose strength class (``suite_strength``: weak < no forward secrecy <
  forward secrecy with CBC < forward secrecy with AEAD) is below every suite the first accepted with that version
  (or, for a version the first did not accept, with any version);
- a trust store that trusted the certificate no longer does, or the host name matched and no longer does;
- client authentication that was required is now optional or not requested.

A target that became unreachable is not a regression (nothing says it is weaker) but "could not check": exit 3
when nothing regressed. Targets added or removed, and findings of packs only one report ran, are reported but not
judged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from scanner.exitcodes import ExitCode
from scanner.facts import (
    Certificate,
    CipherSuite,
    ErrorClass,
    Facts,
    NamedGroup,
    Observed,
    ProtocolVersion,
)
from scanner.findings import Finding, GateState, Status
from scanner.report import Report, TargetReport, ToolInfo, Verdict

DIFF_SCHEMA_VERSION = "1"
T = TypeVar("T")

MatchMode = Literal["auto", "identity", "order"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TargetKey(_Frozen):
    """How a target is recognised in both reports."""

    host: str
    port: int
    server_name: str | None
    starttls: str | None


class RunInfo(_Frozen):
    source: str = Field(description="Where the report came from: its file (or, from a store, its run).")
    started_at: datetime
    finished_at: datetime
    verdict: Verdict
    targets: int
    packs: list[str] = Field(description="The packs the run judged with, as ID@VERSION.")


class PackChange(_Frozen):
    id: str
    before: str | None = Field(description="The pack's version in the first report; none when it did not run it.")
    after: str | None


class FindingState(_Frozen):
    status: Status
    decision: GateState | None = Field(default=None, description="The gate's decision, as that report recorded it.")


FindingChangeKind = Literal["new", "fixed", "still_failing", "inconclusive"]


class FindingChange(_Frozen):
    """A rule that fails in either report (waived failures included)."""

    pack: str
    rule: str
    title: str
    severity: str
    change: FindingChangeKind = Field(
        description="new: fails in the second only; fixed: fails in the first, passes or does not apply in the "
        "second; still_failing: fails in both; inconclusive: failed in the first, could not be judged in the second."
    )
    before: FindingState | None = Field(description="None when the first report has no result for the rule.")
    after: FindingState | None

    @property
    def moved(self) -> bool:
        """Whether it is news: anything but a failure still failing under the same gate decision."""
        return self.change != "still_failing" or self.before != self.after


class SuiteChange(_Frozen):
    version: ProtocolVersion
    added: list[str] = Field(default_factory=list, description="IANA names.")
    removed: list[str] = Field(default_factory=list)


class GroupChange(_Frozen):
    kind: Literal["tls13", "tls12"]
    added: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)


class CertificateSummary(_Frozen):
    sha256: str
    subject: str
    issuer: str
    key: str = Field(description="Key type and size or curve, e.g. 'RSA 2048', 'EC secp256r1'.")
    not_after: datetime


class CertificateChange(_Frozen):
    """A certificate deployment whose leaf changed: rotated, added or gone."""

    offers: list[str] = Field(description="The handshakes (default, ecdsa, rsa, other) that got this leaf.")
    before: CertificateSummary | None
    after: CertificateSummary | None


Scalar = bool | int | float | str | None


class FactChange(_Frozen):
    """One observed value that differs: a verdict, a requirement, a lifetime."""

    fact: str = Field(description="The fact's path, e.g. certificate.hostname_match, certificate.trust[mozilla].")
    before: Scalar
    after: Scalar
    note: str | None = Field(default=None, description="Why, when the facts say it (e.g. a trust failure's reason).")


RegressionKind = Literal["new_failure", "older_protocol", "weaker_suite", "trust_drop", "hostname_drop",
                         "client_auth_weaker"]  # fmt: skip


class Regression(_Frozen):
    kind: RegressionKind
    detail: str = Field(description="One line naming what weakened.")


TargetState = Literal["compared", "added", "removed", "newly_unreachable", "reachable_again", "unreachable"]


class TargetDiff(_Frozen):
    key: TargetKey
    before: str | None = Field(description="The target as the first report names it; none when added.")
    after: str | None
    state: TargetState = Field(
        description="compared: scanned in both; newly_unreachable: scanned in the first, not in the second; "
        "reachable_again: the reverse; unreachable: in neither; added / removed: in one report only."
    )
    before_error: ErrorClass | None = None
    after_error: ErrorClass | None = None
    findings: list[FindingChange] = Field(default_factory=list)
    protocols_added: list[ProtocolVersion] = Field(default_factory=list)
    protocols_removed: list[ProtocolVersion] = Field(default_factory=list)
    suites: list[SuiteChange] = Field(default_factory=list)
    groups: list[GroupChange] = Field(default_factory=list)
    certificates: list[CertificateChange] = Field(default_factory=list)
    facts: list[FactChange] = Field(default_factory=list)
    regressions: list[Regression] = Field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Anything but failures that stayed as they were."""
        return self.state != "compared" or any(
            (self.protocols_added, self.protocols_removed, self.suites, self.groups, self.certificates, self.facts,
             [f for f in self.findings if f.moved])
        )  # fmt: skip


class DiffSummary(_Frozen):
    targets_compared: int
    targets_changed: int
    targets_added: int
    targets_removed: int
    newly_unreachable: int
    reachable_again: int
    new_failures: int
    fixed: int
    still_failing: int
    regressions: int


class ReportDiff(_Frozen):
    schema_version: Literal["1"] = "1"
    tool: ToolInfo = ToolInfo()
    before: RunInfo
    after: RunInfo
    match: MatchMode = Field(description="How targets were paired (see tlsgate diff --match).")
    packs: list[PackChange] = Field(default_factory=list, description="Packs only one run used, or at another version.")
    targets: list[TargetDiff]
    summary: DiffSummary
    regression: bool = Field(description="The second report is weaker than the first (see the regressions).")
    unchecked: bool = Field(description="A target compared in both could not be scanned in the second.")


# --- fixed orderings --------------------------------------------------------------------------------------

PROTOCOL_ORDER: tuple[ProtocolVersion, ...] = tuple(ProtocolVersion)  # oldest (weakest) first
_WEAK_MARKS = ("_NULL_", "_anon_", "EXPORT", "RC4", "_DES_", "DES40", "3DES", "RC2", "IDEA", "_MD5")
_FORWARD_SECRET = {"ECDHE", "DHE", "ECDHE_PSK", "DHE_PSK", "any"}
_AEAD_MARKS = ("GCM", "CCM", "POLY1305")
SUITE_STRENGTH_NAMES = ("weak", "no forward secrecy", "forward secrecy, CBC", "forward secrecy, AEAD")


def suite_strength(suite: CipherSuite) -> int:
    """0 weak (NULL, anonymous, export, RC4, DES, 3DES, RC2, IDEA, MD5, under 128 bits), 1 no forward secrecy, 2
    forward secret with a CBC (MAC-then-encrypt) cipher, 3 forward secret AEAD: TLS 1.3 suites are 3."""
    name = suite.name.upper()
    if (
        suite.anonymous
        or suite.export
        or any(mark.upper() in name for mark in _WEAK_MARKS)
        or (suite.key_bits is not None and suite.key_bits < 128)
    ):
        return 0
    exchange = suite.key_exchange or ("any" if name.startswith("TLS_") and "_WITH_" not in name else "")
    if exchange not in _FORWARD_SECRET and not (exchange == "" and name.startswith(("TLS_ECDHE_", "TLS_DHE_"))):
        return 1
    encryption = (suite.encryption or name).upper()
    return 3 if any(mark in encryption for mark in _AEAD_MARKS) else 2


_REQUIREMENT_RANK = {"not_requested": 0, "optional": 1, "required": 2}


# --- pairing targets ------------------------------------------------------------------------------------


def target_key(facts: Facts) -> TargetKey:
    info = facts.target
    return TargetKey(host=info.host.lower(), port=info.port, server_name=info.server_name, starttls=info.starttls)


def pair_targets(
    before: Sequence[TargetReport], after: Sequence[TargetReport], match: MatchMode = "auto"
) -> list[tuple[TargetReport | None, TargetReport | None]]:
    """The targets of two reports side by side: by identity, or by position (``order``); ``auto`` is identity,
    except that two reports of one target each compare those two (production against staging)."""
    if match == "order" or (match == "auto" and len(before) == 1 and len(after) == 1):
        width = max(len(before), len(after))
        return [(before[i] if i < len(before) else None, after[i] if i < len(after) else None) for i in range(width)]
    by_key = {target_key(t.facts): t for t in after}
    pairs: list[tuple[TargetReport | None, TargetReport | None]] = []
    for old in before:
        pairs.append((old, by_key.pop(target_key(old.facts), None)))
    pairs.extend((None, new) for new in by_key.values())
    return pairs


# --- findings -------------------------------------------------------------------------------------------

_FAILING = {Status.failed, Status.waived}
_JUDGED = {Status.passed, Status.not_applicable}


def _state(finding: Finding | None) -> FindingState | None:
    if finding is None:
        return None
    return FindingState(status=finding.status, decision=finding.decision.state if finding.decision else None)


def _counted_failure(finding: Finding | None) -> bool:
    return (
        finding is not None
        and finding.status == Status.failed
        and finding.decision is not None
        and finding.decision.state == "counted"
    )


def _finding_change(old: Finding | None, new: Finding | None) -> FindingChangeKind | None:
    was = old is not None and old.status in _FAILING
    now = new is not None and new.status in _FAILING
    if now:
        return "still_failing" if was else "new"
    if not was:
        return None
    return "fixed" if new is not None and new.status in _JUDGED else "inconclusive"


def diff_findings(
    old: Sequence[Finding], new: Sequence[Finding], packs: set[str]
) -> tuple[list[FindingChange], list[Regression]]:
    """Findings that fail on either side, for the packs both reports ran; regressions are counted failures that
    were not counted failures before."""
    before = {(f.pack, f.rule): f for f in old if f.pack in packs}
    after = {(f.pack, f.rule): f for f in new if f.pack in packs}
    changes: list[FindingChange] = []
    regressions: list[Regression] = []
    for key in sorted(before.keys() | after.keys()):
        was, now = before.get(key), after.get(key)
        change = _finding_change(was, now)
        if change is None:
            continue
        shown = now or was
        assert shown is not None  # noqa: S101 - one of the two exists for every key
        changes.append(
            FindingChange(pack=shown.pack, rule=shown.rule, title=shown.title, severity=shown.severity,
                          change=change, before=_state(was), after=_state(now))
        )  # fmt: skip
        if _counted_failure(now) and not _counted_failure(was):
            detail = f'{shown.pack}/{shown.rule} "{shown.title}" fails and counts'
            regressions.append(Regression(kind="new_failure", detail=detail))
    return changes, regressions


# --- facts ----------------------------------------------------------------------------------------------


def _value(fact: Observed[T]) -> T | None:
    return fact.value if fact.status == "ok" else None


def _both(old: Observed[T], new: Observed[T]) -> tuple[T, T] | None:
    """The two values when both were observed (a fact not observed on either side is not compared)."""
    if old.status != "ok" or new.status != "ok" or old.value is None or new.value is None:
        return None
    return old.value, new.value


def _versions(facts: Facts, status: str) -> set[ProtocolVersion]:
    return {p.version for p in facts.protocols if p.status == status}


def diff_protocols(old: Facts, new: Facts) -> tuple[list[ProtocolVersion], list[ProtocolVersion], list[Regression]]:
    """Versions whose acceptance was determined on both sides and changed; the oldest accepted version dropping
    is a regression."""
    was_on, now_on = _versions(old, "accepted"), _versions(new, "accepted")
    was_off, now_off = _versions(old, "not_accepted"), _versions(new, "not_accepted")
    added = [v for v in PROTOCOL_ORDER if v in now_on and v in was_off]
    removed = [v for v in PROTOCOL_ORDER if v in was_on and v in now_off]
    regressions = []
    if was_on:
        floor = min(PROTOCOL_ORDER.index(v) for v in was_on)
        regressions = [
            Regression(kind="older_protocol", detail=f"{v} accepted, older than {PROTOCOL_ORDER[floor]}")
            for v in added
            if PROTOCOL_ORDER.index(v) < floor
        ]
    return added, removed, regressions


def _suites(facts: Facts) -> dict[ProtocolVersion, dict[str, CipherSuite]]:
    return {p.version: {s.name: s for s in p.cipher_suites} for p in facts.protocols if p.status == "accepted"}


def diff_suites(old: Facts, new: Facts) -> tuple[list[SuiteChange], list[Regression]]:
    """Suites added or removed per version accepted on both sides; a suite weaker than every suite the first
    accepted with its version (any version, for a version newly accepted) is a regression."""
    before, after = _suites(old), _suites(new)
    every = [s for suites in before.values() for s in suites.values()]
    changes: list[SuiteChange] = []
    regressions: list[Regression] = []
    for version in PROTOCOL_ORDER:
        if version not in after:
            continue
        now = after[version]
        was = before.get(version, {})
        floor_suites = list(was.values()) or every
        added = [name for name in now if name not in was]
        if version in before:
            removed = [name for name in was if name not in now]
            if added or removed:
                changes.append(SuiteChange(version=version, added=added, removed=removed))
        if not floor_suites:
            continue
        floor = min(suite_strength(s) for s in floor_suites)
        for name in added:
            strength = suite_strength(now[name])
            if strength < floor:
                regressions.append(
                    Regression(
                        kind="weaker_suite",
                        detail=f"{version} {name} accepted ({SUITE_STRENGTH_NAMES[strength]}), weaker than every "
                        f"suite accepted before ({SUITE_STRENGTH_NAMES[floor]})",
                    )
                )
    return changes, regressions


def _names(groups: list[NamedGroup]) -> list[str]:
    return [g.name for g in groups]


def diff_groups(old: Facts, new: Facts) -> list[GroupChange]:
    changes = []
    for kind in ("tls13", "tls12"):
        pair = _both(getattr(old.groups, kind), getattr(new.groups, kind))
        if pair is None:
            continue
        was, now = _names(pair[0]), _names(pair[1])
        added, removed = [g for g in now if g not in was], [g for g in was if g not in now]
        if added or removed:
            changes.append(GroupChange(kind=kind, added=added, removed=removed))
    return changes


def certificate_summary(cert: Certificate) -> CertificateSummary:
    key = cert.public_key
    size = key.curve or (str(key.size) if key.size else "")
    return CertificateSummary(
        sha256=cert.sha256, subject=cert.subject, issuer=cert.issuer, key=f"{key.type} {size}".strip(),
        not_after=cert.not_after,
    )  # fmt: skip


def _leaves(facts: Facts, offers: set[str] | None) -> dict[str, Certificate]:
    leaves: dict[str, Certificate] = {}
    for deployment in facts.deployments():
        leaf = deployment.certificate.leaf
        if leaf is None:
            continue
        for offer in deployment.offers:
            if offers is None or offer in offers:
                leaves[offer] = leaf
    return leaves


def diff_certificates(old: Facts, new: Facts) -> list[CertificateChange]:
    """Per offer (default, ecdsa, rsa, other), the leaf each side was served, grouped by (old, new) leaf; only the
    default offer when either side did not look for other deployments."""
    if old.certificate.status != "ok" or new.certificate.status != "ok":
        return []
    offers = None if old.certificate_deployments and new.certificate_deployments else {"default"}
    before, after = _leaves(old, offers), _leaves(new, offers)
    grouped: dict[tuple[str | None, str | None], list[str]] = {}
    leaves: dict[str, Certificate] = {}
    for offer in ("default", "ecdsa", "rsa", "other"):
        was, now = before.get(offer), after.get(offer)
        if (was.sha256 if was else None) == (now.sha256 if now else None):
            continue
        for cert in (was, now):
            if cert is not None:
                leaves[cert.sha256] = cert
        grouped.setdefault((was.sha256 if was else None, now.sha256 if now else None), []).append(offer)
    return [
        CertificateChange(
            offers=offers_of,
            before=certificate_summary(leaves[old_sha]) if old_sha else None,
            after=certificate_summary(leaves[new_sha]) if new_sha else None,
        )
        for (old_sha, new_sha), offers_of in grouped.items()
    ]


def _scalar_changes(old: Facts, new: Facts) -> list[FactChange]:
    """Observed values compared one to one: the host-name verdict, client authentication, session lifetimes and
    the groups a server prefers."""
    facts: list[tuple[str, Callable[[Facts], Observed[Any]]]] = [
        ("certificate.hostname_match", lambda f: f.certificate.hostname_match),
        ("client_auth.requirement", lambda f: f.client_auth.requirement),
        ("client_auth.enforcement", lambda f: f.client_auth.enforcement),
        ("client_auth.untrusted_enforcement", lambda f: f.client_auth.untrusted_enforcement),
        ("sessions.tls12_ticket_lifetime", lambda f: f.sessions.tls12_ticket_lifetime),
        ("sessions.tls13_ticket_lifetime", lambda f: f.sessions.tls13_ticket_lifetime),
        ("sessions.legacy_ticket_lifetime", lambda f: f.sessions.legacy_ticket_lifetime),
        ("groups.preferred", lambda f: f.groups.preferred),
        ("groups.dh_parameter_bits", lambda f: f.groups.dh_parameter_bits),
    ]
    changes = []
    for name, get in facts:
        pair = _both(get(old), get(new))
        if pair is None:
            continue
        was, now = (getattr(v, "at", v) for v in pair)  # an enforcement is compared by where it refuses
        if was != now:
            note = new.certificate.hostname_mismatch if name == "certificate.hostname_match" else None
            changes.append(FactChange(fact=name, before=was, after=now, note=note))
    return changes


def _trust_changes(old: Facts, new: Facts) -> list[FactChange]:
    before = {t.store: t for t in old.certificate.trust}
    changes = []
    for result in new.certificate.trust:
        was = before.get(result.store)
        if was is not None and was.trusted != result.trusted:
            note = result.reason if not result.trusted else None
            changes.append(FactChange(fact=f"certificate.trust[{result.store}]", before=was.trusted,
                                      after=result.trusted, note=note))  # fmt: skip
    return changes


def _fact_regressions(changes: Iterable[FactChange]) -> list[Regression]:
    regressions = []
    for change in changes:
        if change.fact.startswith("certificate.trust[") and change.before is True and change.after is False:
            store = change.fact.removeprefix("certificate.trust[").removesuffix("]")
            why = f" ({change.note})" if change.note else ""
            regressions.append(Regression(kind="trust_drop", detail=f"no longer trusted by {store}{why}"))
        elif change.fact == "certificate.hostname_match" and change.before is True and change.after is False:
            why = f" ({change.note})" if change.note else ""
            regressions.append(Regression(kind="hostname_drop", detail=f"the host name no longer matches{why}"))
        elif change.fact == "client_auth.requirement" and _REQUIREMENT_RANK.get(
            str(change.after), 0
        ) < _REQUIREMENT_RANK.get(str(change.before), 0):
            regressions.append(
                Regression(kind="client_auth_weaker", detail=f"client certificate {change.after}, was {change.before}")
            )
    return regressions


# --- targets and reports --------------------------------------------------------------------------------


def _error(target: TargetReport | None) -> ErrorClass | None:
    if target is None or target.facts.status == "ok":
        return None
    return target.facts.error.error_class if target.facts.error else ErrorClass.probe_failed


def _target_state(old: TargetReport | None, new: TargetReport | None) -> TargetState:
    if old is None:
        return "added"
    if new is None:
        return "removed"
    was_up, now_up = old.facts.status == "ok", new.facts.status == "ok"
    if was_up and now_up:
        return "compared"
    if was_up:
        return "newly_unreachable"
    return "reachable_again" if now_up else "unreachable"


def diff_target(old: TargetReport | None, new: TargetReport | None, packs: set[str]) -> TargetDiff:
    shown = new or old
    assert shown is not None  # noqa: S101 - a pair has at least one side
    state = _target_state(old, new)
    fields: dict[str, Any] = {}
    regressions: list[Regression] = []
    if old is not None and new is not None:
        findings, regressions = diff_findings(old.findings, new.findings, packs)
        fields["findings"] = findings
    if state == "compared" and old is not None and new is not None:
        added, removed, protocol_regressions = diff_protocols(old.facts, new.facts)
        suites, suite_regressions = diff_suites(old.facts, new.facts)
        facts = _trust_changes(old.facts, new.facts) + _scalar_changes(old.facts, new.facts)
        regressions += protocol_regressions + suite_regressions + _fact_regressions(facts)
        fields |= {
            "protocols_added": added,
            "protocols_removed": removed,
            "suites": suites,
            "groups": diff_groups(old.facts, new.facts),
            "certificates": diff_certificates(old.facts, new.facts),
            "facts": facts,
        }
    return TargetDiff(
        key=target_key(shown.facts),
        before=old.target if old else None,
        after=new.target if new else None,
        state=state,
        before_error=_error(old),
        after_error=_error(new),
        regressions=regressions,
        **fields,
    )


def run_info(report: Report, source: str) -> RunInfo:
    return RunInfo(
        source=source, started_at=report.started_at, finished_at=report.finished_at, verdict=report.verdict,
        targets=len(report.targets), packs=[f"{p.id}@{p.version}" for p in report.packs],
    )  # fmt: skip


def diff_packs(before: Report, after: Report) -> list[PackChange]:
    was = {p.id: p.version for p in before.packs}
    now = {p.id: p.version for p in after.packs}
    return [
        PackChange(id=pack, before=was.get(pack), after=now.get(pack))
        for pack in sorted(was.keys() | now.keys())
        if was.get(pack) != now.get(pack) and "" not in (was.get(pack), now.get(pack))  # "": a journal's, unknown
    ]


def _summary(targets: list[TargetDiff]) -> DiffSummary:
    def count(state: TargetState) -> int:
        return sum(1 for t in targets if t.state == state)

    changes = [f.change for t in targets for f in t.findings]
    return DiffSummary(
        targets_compared=sum(1 for t in targets if t.before is not None and t.after is not None),
        targets_changed=sum(1 for t in targets if t.changed),
        targets_added=count("added"),
        targets_removed=count("removed"),
        newly_unreachable=count("newly_unreachable"),
        reachable_again=count("reachable_again"),
        new_failures=changes.count("new"),
        fixed=changes.count("fixed"),
        still_failing=changes.count("still_failing"),
        regressions=sum(len(t.regressions) for t in targets),
    )


def diff_reports(
    before: Report,
    after: Report,
    *,
    before_source: str = "before",
    after_source: str = "after",
    match: MatchMode = "auto",
) -> ReportDiff:
    """What changed from ``before`` to ``after``, and whether ``after`` is weaker (see the module's docstring)."""
    packs = {p.id for p in before.packs} & {p.id for p in after.packs}
    targets = [diff_target(old, new, packs) for old, new in pair_targets(before.targets, after.targets, match)]
    return ReportDiff(
        before=run_info(before, before_source),
        after=run_info(after, after_source),
        match=match,
        packs=diff_packs(before, after),
        targets=targets,
        summary=_summary(targets),
        regression=any(t.regressions for t in targets),
        unchecked=any(t.state == "newly_unreachable" for t in targets),
    )


def diff_exit_code(diff: ReportDiff, fail_on_regression: bool) -> ExitCode:
    """0 unless asked to gate: then 1 when the second is weaker, else 3 when a target could not be checked in it."""
    if not fail_on_regression:
        return ExitCode.OK
    if diff.regression:
        return ExitCode.POLICY_FAILED
    return ExitCode.NOT_CHECKED if diff.unchecked else ExitCode.OK


def diff_schema() -> dict[str, Any]:
    schema = ReportDiff.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://tlsgate.dev/schema/diff-{DIFF_SCHEMA_VERSION}.json"
    return schema
