"""A Markdown summary for a pull-request comment or ``$GITHUB_STEP_SUMMARY`` (GitHub-flavoured tables).

One table with a row per target (verdict and failed rules by severity), then, per target, each failed or
inconclusive rule on one line. Every string that came from a scanned server or a pack is escaped, so a
certificate name cannot break the table or inject links, images or HTML into the comment.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from scanner.findings import Finding, Status
from scanner.policy.pack import SEVERITIES
from scanner.report import Report, TargetReport, Verdict

# GitHub refuses comments over 65,536 characters; the per-target details stop well before that.
MAX_DETAIL_CHARS = 50_000
MAX_LINE_CHARS = 300

VERDICT_LABELS: dict[Verdict, str] = {
    "pass": "\u2705 pass",
    "fail": "\u274c fail",
    "error": "\u26a0\ufe0f not checked",
}
_STATUS_WORDS: dict[Status, str] = {Status.failed: "fail", Status.error: "not checked"}

# CommonMark lets any ASCII punctuation be backslash-escaped; these are the ones that start inline markup
# (emphasis, code, links, images, HTML, table cells, entities, mentions). Escaped text never starts a line,
# so list and heading markers need no escaping.
_MARKUP = re.compile(r"([\\`*_{}\[\]()<>!|~&@#])")
# GitHub turns bare URLs into links ("extended autolinks"); an escaped slash or dot keeps them text.
_AUTOLINK = re.compile(r"(?i)(?<=:)//|(?<=\bwww)\.")


def escape(text: str, limit: int = MAX_LINE_CHARS) -> str:
    """``text`` as literal inline Markdown on one line, cut at ``limit`` characters."""
    flat = " ".join(text.split())
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
    verdicts = {t.verdict for t in report.targets}
    if "fail" in verdicts:
        return f"{VERDICT_LABELS['fail'].split()[0]} tlsgate: policy violated"
    if "error" in verdicts:
        return f"{VERDICT_LABELS['error'].split()[0]} tlsgate: could not check every target"
    if not report.targets:
        return "tlsgate: no targets"
    return f"{VERDICT_LABELS['pass'].split()[0]} tlsgate: every rule passed"


def _summary_line(report: Report) -> str:
    s = report.summary
    counts = f"{s.targets} target{'s' * (s.targets != 1)}: {s.targets_passed} passed, {s.targets_failed} failed, "
    counts += f"{s.targets_error} not checked"
    packs = ", ".join(f"{escape(p.id)} {escape(p.version)}" for p in report.packs) or "none"
    when = _utc(report.started_at)
    return f"{counts} \u00b7 packs: {packs} \u00b7 {when} \u00b7 tlsgate {escape(report.tool.version)}"


def _table(report: Report, severities: list[str]) -> list[str]:
    head = ["Target", "Verdict", *(s.capitalize() for s in severities), "Not checked"]
    rows = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join([":--", ":--", *("--:" for _ in severities), "--:"]) + "|",
    ]
    for target in report.targets:
        failed = [f.severity for f in target.findings if f.status == Status.failed]
        unchecked = sum(1 for f in target.findings if f.status == Status.error)
        cells = [escape(target.target), VERDICT_LABELS.get(target.verdict, escape(target.verdict))]
        cells += [str(failed.count(s)) for s in severities]
        cells.append(str(unchecked))
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def _finding_line(finding: Finding) -> str:
    status = _STATUS_WORDS.get(finding.status, finding.status.value)
    head = f"**{escape(finding.severity)}** {status} \u00b7 {escape(finding.pack)}/{escape(finding.rule)}"
    return f"- {head} \u00b7 {escape(finding.title)}: {escape(finding.message)}"


def _target_details(target: TargetReport) -> list[str]:
    """Nothing for a passing target; otherwise a heading and one line per failed or inconclusive rule."""
    if target.verdict == "pass":
        return []
    lines = ["", f"### {VERDICT_LABELS.get(target.verdict, escape(target.verdict))} {escape(target.target)}", ""]
    error = target.facts.error
    if target.facts.status != "ok":
        reason = f"{error.error_class.value}: {error.message}" if error else "no reason recorded"
        # every rule of an unscanned target is inconclusive for the same reason: one line says it
        return [*lines, f"Not scanned: {escape(reason)}"]
    listed = [f for f in target.findings if f.status == Status.failed]
    listed += [f for f in target.findings if f.status == Status.error]
    severity_order = {s: i for i, s in enumerate(SEVERITIES)}
    listed.sort(key=lambda f: (f.status != Status.failed, severity_order.get(f.severity, len(SEVERITIES))))
    return lines + [_finding_line(f) for f in listed]


def render(report: Report) -> str:
    lines = [f"## {_headline(report)}", "", _summary_line(report), ""]
    if report.targets:
        lines += _table(report, _severities(report))
    used = 0
    omitted = 0
    for target in report.targets:
        details = _target_details(target)
        size = sum(len(line) + 1 for line in details)
        if used + size > MAX_DETAIL_CHARS:
            omitted += sum(1 for line in details if line.startswith("- ")) or (1 if details else 0)
            continue
        used += size
        lines += details
    if omitted:
        lines += ["", f"\u2026 {omitted} more not shown here: see the full report."]
    return "\n".join(lines) + "\n"
