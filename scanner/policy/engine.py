"""Evaluate rule packs against facts. The engine knows operators and the facts model, never a pack."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from scanner.facts import ErrorClass, Facts, Observed
from scanner.findings import Finding, Status
from scanner.policy.operators import LIST_OPERATORS, FieldMatcher, Matcher, label, plain
from scanner.policy.pack import Rule, RulePack

_UNOBSERVED = ("error", "not_probed")
FILE_FACT_GROUPS = frozenset({"certificate", "target"})


@dataclass(frozen=True)
class Unobserved:
    reason: str
    not_applicable: bool = False  # the probe says the fact does not apply here (e.g. no client cert asked)


def _reason(obj: Any) -> str:
    error = getattr(obj, "error", None)
    return str(error.message) if error is not None else "not probed by this scan"


def _unobserved(obj: Any, where: str) -> Unobserved | None:
    if getattr(obj, "status", None) in _UNOBSERVED:
        error = getattr(obj, "error", None)
        if error is not None and error.error_class == ErrorClass.not_applicable:
            return Unobserved(f"{where} does not apply: {error.message}", not_applicable=True)
        return Unobserved(f"{where} could not be observed: {_reason(obj)}")
    return None


def resolve(facts: Facts, path: str) -> Any:
    """The value at a dotted path, or Unobserved when any step of it was not observed."""
    current: Any = facts
    walked: list[str] = []
    for part in path.split("."):
        walked.append(part)
        current = getattr(current, part)
        if current is None:
            return None
        if isinstance(current, BaseModel) and (gap := _unobserved(current, ".".join(walked))):
            return gap
        if isinstance(current, Observed):
            current = current.value
            if current is None:
                return None
    if isinstance(current, list):
        gaps = [
            f"{label(plain(e))}: {_reason(e)}"
            for e in current
            if isinstance(e, BaseModel) and getattr(e, "status", None) in _UNOBSERVED
        ]
        if gaps:
            return Unobserved(f"{path} not fully observed ({'; '.join(gaps)})")
    return current


def _finding(rule: Rule, pack: RulePack, status: Status, message: str, evidence: dict[str, Any]) -> Finding:
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
    )


def evaluate_rule(facts: Facts, rule: Rule, pack: RulePack) -> Finding:
    evidence: dict[str, Any] = {"fact": rule.fact, "expected": {rule.operator: rule.expected}}
    if rule.where_spec is not None:
        evidence["where"] = rule.where_spec
    if facts.status != "ok":
        reason = facts.error.message if facts.error else "target not scanned"
        evidence["unobserved"] = reason
        return _finding(rule, pack, Status.error, f"not scanned: {reason}", evidence)
    if facts.target.source == "file" and rule.fact.split(".", 1)[0] not in FILE_FACT_GROUPS:
        # A certificate file has certificates and nothing else: protocol or session rules do not apply to it.
        message = f"{rule.fact} is not a certificate fact; a certificate file has none"
        return _finding(rule, pack, Status.not_applicable, message, evidence)
    value = resolve(facts, rule.fact)
    if isinstance(value, Unobserved):
        evidence["unobserved"] = value.reason
        status = Status.not_applicable if value.not_applicable else Status.error
        return _finding(rule, pack, status, value.reason, evidence)
    observed = plain(value)
    if observed is None and rule.operator in LIST_OPERATORS:
        # an absent optional list (a certificate without an EKU extension) has no elements; judging it
        # as a single value would fail `none` rules and crash on `only`/`forbid`/`require_*`
        observed = []
    if isinstance(observed, list):
        items = observed
        if rule.where is not None:
            items = [e for e in items if rule.where.test(e)]
        outcome = LIST_OPERATORS[rule.operator].run(items, rule.argument)
        evidence["observed"] = [label(e) for e in items]
        if not outcome.passed:
            evidence["offending"] = outcome.offending
        status = Status.passed if outcome.passed else Status.failed
        return _finding(rule, pack, status, f"{rule.fact}: {outcome.summary}", evidence)
    matcher = rule.argument
    if not isinstance(matcher, Matcher | FieldMatcher):
        raise TypeError(f"rule {rule.id}: a single value needs a value constraint")
    evidence["observed"] = observed
    if matcher.test(observed):
        return _finding(rule, pack, Status.passed, f"{rule.fact} = {observed}", evidence)
    return _finding(rule, pack, Status.failed, f"{rule.fact} = {observed}, must {matcher.describe()}", evidence)


def evaluate(facts: Facts, packs: list[RulePack]) -> list[Finding]:
    return [evaluate_rule(facts, rule, pack) for pack in packs for rule in pack.rules]
