"""Evaluate rule packs against facts. The engine knows operators and the facts model, never a pack."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from scanner.facts import ErrorClass, Facts, Observed
from scanner.findings import Evidence, Finding, Status
from scanner.policy.operators import (
    LIST_OPERATORS,
    FieldMatcher,
    Matcher,
    PatternTimeout,
    at_scan_time,
    label,
    plain,
)
from scanner.policy.pack import Condition, Rule, RulePack

_UNOBSERVED = ("error", "not_probed")
FILE_FACT_GROUPS = frozenset({"certificate", "target"})


@dataclass(frozen=True)
class Unobserved:
    reason: str
    not_applicable: bool = False  # the probe says the fact does not apply here (e.g. no client cert asked)


def _reason(obj: Any) -> str:
    error = getattr(obj, "error", None)
    return str(error.message) if error is not None else "not probed by this scan"


def _is_observation(obj: Any) -> bool:
    """An observation container (a fact group, an Observed value, a protocol entry) carries a ProbeError field;
    a result *value* with a status of its own (a revocation check that errored) does not, and is judged as data."""
    return isinstance(obj, BaseModel) and "error" in type(obj).model_fields


def _unobserved(obj: Any, where: str) -> Unobserved | None:
    if _is_observation(obj) and getattr(obj, "status", None) in _UNOBSERVED:
        error = getattr(obj, "error", None)
        if error is not None and error.error_class == ErrorClass.not_applicable:
            return Unobserved(f"{where} does not apply: {error.message}", not_applicable=True)
        return Unobserved(f"{where} could not be observed: {_reason(obj)}")
    return None


def _step(value: Any, part: str, walked: str) -> Any:
    """One attribute of one value: Unobserved, None, or the (Observed-unwrapped) value."""
    current = getattr(value, part)
    if isinstance(current, BaseModel) and (gap := _unobserved(current, walked)):
        return gap
    if isinstance(current, Observed):
        return current.value
    return current


def _gaps(items: list[Any], path: str) -> Unobserved | None:
    gaps = [
        f"{label(plain(e))}: {_reason(e)}"
        for e in items
        if _is_observation(e) and getattr(e, "status", None) in _UNOBSERVED
    ]
    return Unobserved(f"{path} not fully observed ({'; '.join(gaps)})") if gaps else None


def resolve(facts: Facts, path: str) -> Any:
    """The value at a dotted path, or Unobserved when any step of it was not observed.

    Through a list of objects the path continues into every element and the result is the flattened list.
    """
    current: Any = facts
    many = False
    walked: list[str] = []
    for part in path.split("."):
        walked.append(part)
        where = ".".join(walked)
        if isinstance(current, list):
            if gap := _gaps(current, ".".join(walked[:-1])):
                return gap
            many = True
            values: list[Any] = []
            for element in current:
                value = _step(element, part, where)
                if isinstance(value, Unobserved):
                    return value
                if isinstance(value, list):
                    values.extend(value)
                elif value is not None:
                    values.append(value)
            current = values
            continue
        current = _step(current, part, where)
        if current is None or isinstance(current, Unobserved):
            return current
    if isinstance(current, list) and (gap := _gaps(current, path)):
        return gap
    return current if not many or isinstance(current, list) else [current]


class _Lookups:
    """One target's facts as rules read them: the value at a path, resolved and made plain once.

    The rules of a pack judge the same facts again and again (five rules of essentials read
    ``protocols.cipher_suites``, three ``certificate.chain``), and dumping the fact models to plain values was
    most of the cost of judging a target. A value is shared by the rules that read it; none changes it.
    """

    def __init__(self, facts: Facts) -> None:
        self.facts = facts
        self._values: dict[str, Any] = {}

    def value(self, path: str) -> Any:
        """``plain(resolve(facts, path))``, or the Unobserved it resolved to."""
        if path not in self._values:
            value = resolve(self.facts, path)
            self._values[path] = value if isinstance(value, Unobserved) else plain(value)
        return self._values[path]


def _finding(rule: Rule, pack: RulePack, status: Status, message: str, evidence: Evidence) -> Finding:
    return Finding(
        pack=pack.id,
        rule=rule.id,
        title=rule.title,
        severity=rule.severity,
        status=status,
        message=message,
        evidence=evidence,
        rationale=rule.rationale,
        remediation=rule.remediation,
        references=list(rule.references),
        section=rule.section,
    )


def _add(evidence: Evidence, **recorded: Any) -> Evidence:
    """The evidence with more keys recorded (a copy: the engine's values are plain already, nothing to check)."""
    return evidence.model_copy(update=recorded)


def _at(rule: Rule, scan_time: datetime) -> Rule:
    """The rule with its ``scan_time`` dates fixed to the moment these facts were observed; the rule itself when
    it names no ``scan_time`` (most rules: nothing to copy for each target)."""
    if not rule.names_scan_time:
        return rule
    when = tuple(
        replace(c, argument=at_scan_time(c.argument, scan_time), where=at_scan_time(c.where, scan_time))
        for c in rule.when
    )
    return replace(
        rule,
        argument=at_scan_time(rule.argument, scan_time),
        where=at_scan_time(rule.where, scan_time),
        when=when,
    )


# For each way a rule judges deployments, the status that decides it, first found first: with "every" one failing
# deployment fails the rule (and one not observed leaves it inconclusive), with "any" one passing passes it.
_DECIDING: dict[str, tuple[Status, ...]] = {
    "every": (Status.failed, Status.error, Status.passed, Status.not_applicable),
    "any": (Status.passed, Status.error, Status.failed, Status.not_applicable),
}


def evaluate_rule(lookups: _Lookups, rule: Rule, pack: RulePack) -> Finding:
    """The rule's finding; a certificate rule on a server that serves several certificates judges each one and
    the rule's ``deployments`` ("every" or "any") decides, naming the deployments that did."""
    facts = lookups.facts
    deployments = facts.deployments()
    if facts.status != "ok" or not rule.on_certificate or len(deployments) < 2:
        return _evaluate(lookups, rule, pack)
    judged = [
        (d, _evaluate(_Lookups(facts.model_copy(update={"certificate": d.certificate})), rule, pack))
        for d in deployments
    ]
    status = next(s for s in _DECIDING[rule.deployments] if any(f.status == s for _, f in judged))
    deciding = [(d, f) for d, f in judged if f.status == status]
    first = deciding[0][1]
    message = "; ".join(f"{d.label}: {f.message}" for d, f in deciding)
    evidence = _add(first.evidence, deployment=", ".join(d.label for d, _ in deciding))
    return first.model_copy(update={"message": message, "evidence": evidence})


def _evaluate(lookups: _Lookups, rule: Rule, pack: RulePack) -> Finding:
    try:
        return _judge(lookups, rule, pack)
    except PatternTimeout as exc:  # a pack's pattern that backtracks without end on this target's text
        evidence = Evidence(fact=rule.fact, expected={rule.operator: rule.expected})
        return _finding(rule, pack, Status.error, str(exc), evidence)


def _judge(lookups: _Lookups, rule: Rule, pack: RulePack) -> Finding:
    facts = lookups.facts
    rule = _at(rule, facts.started_at)
    evidence = Evidence(fact=rule.fact, expected={rule.operator: rule.expected})
    if rule.where_spec is not None:
        evidence = _add(evidence, where=rule.where_spec)
    if facts.status != "ok":
        reason = facts.error.message if facts.error else "target not scanned"
        return _finding(rule, pack, Status.error, f"not scanned: {reason}", _add(evidence, unobserved=reason))
    if facts.target.source == "file" and rule.fact.split(".", 1)[0] not in FILE_FACT_GROUPS:
        # A certificate file has certificates and nothing else: protocol or session rules do not apply to it.
        message = f"{rule.fact} is not a certificate fact; a certificate file has none"
        return _finding(rule, pack, Status.not_applicable, message, evidence)
    for condition in rule.when:
        holds = _holds(lookups, condition)
        subject = condition.fact or f"parameter {condition.param}"
        if isinstance(holds, Unobserved):
            status = Status.not_applicable if holds.not_applicable else Status.error
            message = f"cannot tell whether the rule applies: {holds.reason}"
            return _finding(rule, pack, status, message, _add(evidence, unobserved=holds.reason))
        if not holds:
            when = {subject: {condition.operator: condition.expected}}
            message = f"applies only when {subject} {condition.operator} {condition.expected}"
            return _finding(rule, pack, Status.not_applicable, message, _add(evidence, when=when))
    observed = lookups.value(rule.fact)
    if isinstance(observed, Unobserved):
        status = Status.not_applicable if observed.not_applicable else Status.error
        return _finding(rule, pack, status, observed.reason, _add(evidence, unobserved=observed.reason))
    if observed is None and rule.operator in LIST_OPERATORS:
        # an absent optional list (a certificate without an EKU extension) has no elements; judging it
        # as a single value would fail `none` rules and crash on `only`/`forbid`/`require_*`
        observed = []
    if isinstance(observed, list):
        return _judge_list(rule, pack, observed, evidence)
    matcher = rule.argument
    if not isinstance(matcher, Matcher | FieldMatcher):
        raise TypeError(f"rule {rule.id}: a single value needs a value constraint")
    evidence = _add(evidence, observed=observed)
    if matcher.test(observed):
        return _finding(rule, pack, Status.passed, f"{rule.fact} = {observed}", evidence)
    return _finding(rule, pack, Status.failed, f"{rule.fact} = {observed}, must {matcher.describe()}", evidence)


def _judge_list(rule: Rule, pack: RulePack, observed: list[Any], evidence: Evidence) -> Finding:
    items = observed
    if rule.where is not None:
        items = [e for e in items if rule.where.test(e)]
    outcome = LIST_OPERATORS[rule.operator].run(items, rule.argument)
    evidence = _add(evidence, observed=[label(e) for e in items])
    if not outcome.passed:
        evidence = _add(evidence, offending=outcome.offending)
    status = Status.passed if outcome.passed else Status.failed
    return _finding(rule, pack, status, f"{rule.fact}: {outcome.summary}", evidence)


def _holds(lookups: _Lookups, condition: Condition) -> bool | Unobserved:
    if condition.fact is None:
        observed = plain(condition.value)
    else:
        observed = lookups.value(condition.fact)
        if isinstance(observed, Unobserved):
            return observed
    if condition.operator in LIST_OPERATORS:
        items = observed if isinstance(observed, list) else [] if observed is None else [observed]
        if condition.where is not None:
            items = [e for e in items if condition.where.test(e)]
        return LIST_OPERATORS[condition.operator].run(items, condition.argument).passed
    matcher = condition.argument
    return bool(isinstance(matcher, Matcher | FieldMatcher) and matcher.test(observed))


def evaluate(facts: Facts, packs: list[RulePack]) -> list[Finding]:
    lookups = _Lookups(facts)
    return [evaluate_rule(lookups, rule, pack) for pack in packs for rule in pack.rules]
