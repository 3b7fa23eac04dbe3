"""A Markdown summary for a pull-request comment or ``$GITHUB_STEP_SUMMARY`` (GitHub-flavoured tables).

One table with a row per target (verdict and failed rules by severity), then, per target, each failed or
inconclusive rule on one line. Every string that came from a scanned server or a pack is escaped, so a
certificate name cannot break the table or inject links, images or HTML into the comment.

The headline follows the exit code, and the gate is spelt out: a line says what counted and what did not (as the
terminal does), expired waivers get a warning section, a failure the gate does not count says why ("in the
baseline, not counted"), and waived findings are listed with their reason, owner and expiry.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

from scanner.findings import SEVERITIES, SEVERITY_RANK, Finding, Status
from scanner.render.certificates import deployment_text, several
from scanner.render.gate_marks import (
    expired_waiver_text,
    expired_waivers,
    expired_waivers_of,
    gate_in_use,
    gate_line,
    gate_options,
    grade_summary,
    not_counted_reason,
    state,
    waived_text,
)
from scanner.report import Report, TargetReport, Verdict
from scanner.textsafe import printable

# GitHub refuses comments over 65,536 characters; the per-target details stop well before that.
MAX_DETAIL_CHARS = 50_000
MAX_LINE_CHARS = 300

VERDICT_LABELS: dict[Verdict, str] = {
    "pass": "\u2705 pass",
    "fail": "\u274c fail",
    "error": "\u26a0\ufe0f not checked",
}
_STATUS_WORDS: dict[Status, str] = {Status.failed: "fail", Status.error: "not checked"}
_GATE_VERDICT_WORDS: dict[Verdict, str] = {"pass": "pass", "fail": "fail", "error": "not checked"}

# CommonMark lets any ASCII punctuation be backslash-escaped; these are the ones that start inline markup
# (emphasis, code, links, images, HTML, table cells, entities, mentions). Escaped text never starts a line,
# so list and heading markers need no escaping.
_MARKUP = re.compile(r"([\\`*_{}\[\]()<>!|~&@#])")
# GitHub turns bare URLs into links ("extended autolinks"); an escaped slash or dot keeps them text.
_AUTOLINK = re.compile(r"(?i)(?<=:)//|(?<=\bwww)\.")


def escape(text: str, limit: int = MAX_LINE_CHARS) -> str:
    """``text`` as literal inline Markdown on one line, cut at ``limit`` characters, controls shown escaped."""
    flat = printable(" ".join(text.split()))
    if len(flat) > limit:
        flat = flat[: limit - 1].rstrip() + "\u2026"
    escaped = _MARKUP.sub(r"\\\1", flat)
    return _AUTOLINK.sub(lambda m: "".join(f"\\{c}" for c in m.group()), escaped)


def _utc(value: datetime) -> str:
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _severities(report: Report) -> list[str]:
    """The severity columns: the known ones, most severe first, then any other a saved report names."""
    extra = sorted({f.severity for t in report.targets for f in t.findings if f.severity not in SEVERITIES})
    return [*SEVERITIES, *extra]


def _headline(report: Report) -> str:
    """What the exit code says: a failure the gate does not count does not make the headline "violated"."""
    if report.verdict == "fail":
        return f"{VERDICT_LABELS['fail'].split()[0]} tlsgate: policy violated"
    if report.verdict == "error":
        return f"{VERDICT_LABELS['error'].split()[0]} tlsgate: could not check every target"
    if not report.targets:
        return "tlsgate: no targets"
    if any(state(f) is not None for t in report.targets for f in t.findings):
        return f"{VERDICT_LABELS['pass'].split()[0]} tlsgate: no failure counted"
    return f"{VERDICT_LABELS['pass'].split()[0]} tlsgate: every rule passed"


def _run_notes(report: Report) -> list[str]:
    """A run that was stopped or resumed says so before anything else is read into it."""
    notes = []
    if report.options.interrupted:
        stopped = sum(1 for t in report.targets if t.facts.error and t.facts.error.error_class == "interrupted")
        notes.append(f"**Interrupted:** the scan was stopped before every target finished ({stopped} not finished).")
    if report.options.resumed_from:
        notes.append(f"**Resumed:** targets finished earlier were kept from {escape(report.options.resumed_from)}.")
    return [*notes, ""] if notes else []


def _gate_summary(report: Report) -> list[str]:
    """The gate's line (only when the run had gate options): what counted, what did not and why."""
    if not gate_in_use(report.gate):
        return []
    options = gate_options(report, escape)
    return [f"**Gate:** {escape(gate_line(report))} ({', '.join(options)})", ""]


def _expired_section(report: Report) -> list[str]:
    """Expired waivers, where a reader cannot miss them: they waive nothing any more."""
    expired = expired_waivers(report)
    if not expired:
        return []
    lines = ["", "### \u26a0\ufe0f Expired waivers", ""]
    return lines + [f"- {escape(expired_waiver_text(use), 2 * MAX_LINE_CHARS)}" for use in expired]


def _summary_line(report: Report) -> str:
    s = report.summary
    counts = f"{s.targets} target{'s' * (s.targets != 1)}: {s.targets_passed} passed, {s.targets_failed} failed, "
    counts += f"{s.targets_error} not checked"
    packs = ", ".join(f"{escape(p.id)} {escape(p.version)}" for p in report.packs) or "none"
    when = _utc(report.started_at)
    return f"{counts} \u00b7 packs: {packs} \u00b7 {when} \u00b7 tlsgate {escape(report.tool.version)}"


def _table(report: Report, severities: list[str]) -> Iterator[str]:
    graded = any(target.grade is not None for target in report.targets)  # no Grade column when none has one
    head = ["Target", "Verdict", *(["Grade"] if graded else []), *(s.capitalize() for s in severities), "Not checked"]
    yield "| " + " | ".join(head) + " |"
    yield "|" + "|".join([":--", ":--", *([":-:"] if graded else []), *("--:" for _ in severities), "--:"]) + "|"
    for target in report.targets:
        failed = [f.severity for f in target.findings if f.status == Status.failed]
        unchecked = sum(1 for f in target.findings if f.status == Status.error)
        verdict = VERDICT_LABELS.get(target.verdict, escape(target.verdict))
        counted = target.gate_verdict
        if counted != target.verdict:  # what failed or went unchecked does not all count: say what the gate saw
            verdict += f" (gate: {_GATE_VERDICT_WORDS[counted]})"
        cells = [escape(target.target), verdict, *([escape(target.grade or "\u2013")] if graded else [])]
        cells += [str(failed.count(s)) for s in severities]
        cells.append(str(unchecked))
        yield "| " + " | ".join(cells) + " |"


def _finding_line(report: Report, target: TargetReport, finding: Finding) -> str:
    status = _STATUS_WORDS.get(finding.status, finding.status.value)
    gate_state = state(finding)
    reason = not_counted_reason(gate_state, report.gate.fail_on)
    if reason is not None:
        status += f" ({escape(reason)}, not counted)"
    elif finding.status == Status.failed:
        expired = expired_waivers_of(report, target, finding)
        if expired:
            status += f" (waiver expired {expired[0].expires.isoformat()})"
    head = f"**{escape(finding.severity)}** {status} \u00b7 {escape(finding.pack)}/{escape(finding.rule)}"
    return f"- {head} \u00b7 {escape(finding.title)}: {escape(finding.message)}"


def _target_details(report: Report, target: TargetReport) -> list[str]:
    """Nothing for a passing target that serves one certificate; otherwise a heading, the certificates when it
    serves several, and one line per failed or inconclusive rule, those the gate counts first."""
    deployments = several(target.facts)
    if target.verdict == "pass" and not deployments and target.grade_gate is None:
        return []
    lines = ["", f"### {VERDICT_LABELS.get(target.verdict, escape(target.verdict))} {escape(target.target)}", ""]
    error = target.facts.error
    if target.facts.status != "ok":
        reason = f"{error.error_class.value}: {error.message}" if error else "no reason recorded"
        # every rule of an unscanned target is inconclusive for the same reason: one line says it
        return [*lines, f"Not scanned: {escape(reason)}"]
    if (graded := grade_summary(target)) is not None:
        lines += [f"Grade: {escape(graded)}", ""]
    if target.grade_gate is not None:
        lines += [f"Gate: {escape(target.grade_gate)}", ""]
    if deployments:
        lines += [f"Certificates served: {len(deployments)}", ""]
        lines += [f"- certificate {escape(deployment_text(d), 2 * MAX_LINE_CHARS)}" for d in deployments]
        lines.append("")
    listed = [f for f in target.findings if f.status == Status.failed]
    listed += [f for f in target.findings if f.status == Status.error]
    listed.sort(
        key=lambda f: (
            f.status != Status.failed,
            state(f) != "counted",
            SEVERITY_RANK.get(f.severity, len(SEVERITIES)),
        )
    )
    return lines + [_finding_line(report, target, f) for f in listed]


def _waived_details(report: Report) -> list[str]:
    """Every waived finding, whichever its target: the accepted risks, each with its reason, owner and expiry."""
    waived = [(t.target, f) for t in report.targets for f in t.findings if f.status == Status.waived]
    if not waived:
        return []
    lines = ["", "### Waived", ""]
    for label, f in waived:
        where = f"{escape(label)} \u00b7 {escape(f.pack)}/{escape(f.rule)}"
        lines.append(f"- **{escape(f.severity)}** {where} \u00b7 {escape(f.title)}: {escape(waived_text(f))}")
    return lines


def _details(report: Report) -> Iterator[list[str]]:
    for target in report.targets:
        yield _target_details(report, target)
    yield _waived_details(report)


def _lines(report: Report) -> Iterator[str]:
    """The comment's lines: the headline and table a target at a time, then the details that fit."""
    yield from [f"## {_headline(report)}", "", _summary_line(report), "", *_run_notes(report), *_gate_summary(report)]
    if report.targets:
        yield from _table(report, _severities(report))
    yield from _expired_section(report)
    used = 0
    omitted = 0
    for details in _details(report):
        size = sum(len(line) + 1 for line in details)
        if used + size > MAX_DETAIL_CHARS:
            omitted += sum(1 for line in details if line.startswith("- ")) or (1 if details else 0)
            continue
        used += size
        yield from details
    if omitted:
        yield from ["", f"\u2026 {omitted} more not shown here: see the full report."]


def chunks(report: Report) -> Iterator[str]:
    for line in _lines(report):
        yield line + "\n"


def render(report: Report) -> str:
    return "".join(chunks(report))
