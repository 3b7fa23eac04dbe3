"""A diff in words: per target, one line per change, tagged with what kind of change it is. The terminal, Markdown
and HTML renderers all show these lines (each escaping them its own way), so the three say the same thing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from scanner.diff import CertificateChange, CertificateSummary, FindingChange, FindingState, ReportDiff, TargetDiff

ARROW = " \u2192 "
LineKind = Literal["regression", "worse", "better", "change", "note"]


@dataclass(frozen=True)
class Line:
    kind: LineKind  # regression: makes --fail-on-regression exit 1; worse / better: a failure or reachability
    text: str


_STATE_TEXT: dict[str, tuple[str, LineKind]] = {
    "added": ("target added (not in the first report)", "note"),
    "removed": ("target removed (not in the second report)", "note"),
    "newly_unreachable": ("newly unreachable", "worse"),
    "reachable_again": ("reachable again", "better"),
    "unreachable": ("unreachable in both", "note"),
}
_FINDING_KIND: dict[str, LineKind] = {"new": "worse", "fixed": "better", "still_failing": "note",
                                      "inconclusive": "worse"}  # fmt: skip
_FINDING_WORDS = {"new": "new failure", "fixed": "fixed", "still_failing": "still failing",
                  "inconclusive": "now inconclusive"}  # fmt: skip


def target_name(target: TargetDiff) -> str:
    """The target as the second report names it, with the first's name when they differ (paired by order)."""
    if target.before and target.after and target.before != target.after:
        return f"{target.before} \u2192 {target.after}"
    return target.after or target.before or ""


def _decision(state: FindingState | None) -> str:
    if state is None:
        return "none"
    return state.status.value + (f", {state.decision}" if state.decision and state.decision != "counted" else "")


def finding_text(change: FindingChange) -> str:
    head = f"{_FINDING_WORDS[change.change]}: {change.pack}/{change.rule} [{change.severity}] {change.title}"
    return f"{head} ({_decision(change.before)} \u2192 {_decision(change.after)})"


def certificate_text(cert: CertificateSummary | None) -> str:
    if cert is None:
        return "none"
    return f"{cert.sha256[:16]} ({cert.subject}; issuer {cert.issuer}; {cert.key}; until {cert.not_after:%Y-%m-%d})"


def certificate_change_text(change: CertificateChange) -> str:
    what = "rotated" if change.before and change.after else "added" if change.after else "gone"
    offers = ", ".join(change.offers)
    return f"certificate ({offers}) {what}: {certificate_text(change.before)} \u2192 {certificate_text(change.after)}"


def _listed(label: str, added: list[str], removed: list[str]) -> str:
    parts = ([f"added {', '.join(added)}"] if added else []) + ([f"removed {', '.join(removed)}"] if removed else [])
    return f"{label}: {'; '.join(parts)}"


def target_lines(target: TargetDiff) -> list[Line]:
    """Every change of one target (failures still failing as they were are counted in the headline, not
    listed); empty when nothing changed."""
    lines = [Line("regression", f"REGRESSION: {r.detail}") for r in target.regressions]
    if target.state in _STATE_TEXT:
        text, kind = _STATE_TEXT[target.state]
        errors = [e.value for e in (target.before_error, target.after_error) if e is not None]
        lines.append(Line(kind, text + (f" ({ARROW.join(errors)})" if errors else "")))
    if target.protocols_added or target.protocols_removed:
        added, removed = [v.value for v in target.protocols_added], [v.value for v in target.protocols_removed]
        lines.append(Line("change", _listed("protocols", added, removed)))
    lines.extend(Line("change", _listed(f"{s.version.value} suites", s.added, s.removed)) for s in target.suites)
    lines.extend(Line("change", _listed(f"{g.kind} groups", g.added, g.removed)) for g in target.groups)
    lines.extend(Line("change", certificate_change_text(c)) for c in target.certificates)
    for fact in target.facts:
        note = f" ({fact.note})" if fact.note else ""
        lines.append(Line("change", f"{fact.fact}: {fact.before} \u2192 {fact.after}{note}"))
    lines.extend(Line(_FINDING_KIND[f.change], finding_text(f)) for f in target.findings if f.moved)
    return lines


def _count(number: int, noun: str, plural: str | None = None) -> str:
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def headline(diff: ReportDiff) -> str:
    s = diff.summary
    counts = [
        f"{s.targets_changed} of {_count(len(diff.targets), 'target')} changed",
        _count(s.new_failures, "new failure"),
        f"{s.fixed} fixed",
        f"{s.still_failing} still failing",
    ]
    counts += [f"{n} {what}" for n, what in ((s.targets_added, "added"), (s.targets_removed, "removed"),
               (s.newly_unreachable, "newly unreachable"), (s.reachable_again, "reachable again")) if n]  # fmt: skip
    verdict = _count(s.regressions, "regression") if diff.regression else "no regression"
    return f"{', '.join(counts)}; {verdict}"


def pack_lines(diff: ReportDiff) -> list[str]:
    """Packs only one report ran (their findings are not compared), or at another version."""
    return [f"pack {p.id}: {p.before or 'not run'} \u2192 {p.after or 'not run'}" for p in diff.packs]
