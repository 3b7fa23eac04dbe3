"""The summary a person reads after a scan: per target a verdict and its failed rules, one line each.

Rendered with rich: colour on a terminal, plain text when output is piped or NO_COLOR is set (rich honours both),
so CI logs stay clean. Every string from a report (server and certificate names, messages quoting them) goes
through ``printable``, on a terminal and in a pipe alike, and into rich as ``Text``, never as markup.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection

from rich.console import Console
from rich.text import Text

from scanner.facts import Facts
from scanner.findings import Finding, Status
from scanner.render.certificates import deployment_text, lint_text, several
from scanner.render.gate_marks import grade_summary
from scanner.report import Report, TargetReport
from scanner.textsafe import printable

_VERDICT_STYLE = {"pass": "bold green", "fail": "bold red", "error": "bold yellow"}
_STATUS_STYLE = {
    Status.failed: "red",
    Status.error: "yellow",
    Status.passed: "green",
    Status.not_applicable: "dim",
    Status.waived: "cyan",
}
_GRADE_STYLE = {"A": "bold green", "B": "bold yellow", "T": "bold red", "M": "bold red"}
_SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "blue", "info": "dim"}


def _counts(target: TargetReport) -> str:
    order = (Status.failed, Status.error, Status.waived, Status.passed, Status.not_applicable)
    counts = {s: sum(1 for f in target.findings if f.status == s) for s in order}
    return ", ".join(f"{counts[s]} {s.value}" for s in order if counts[s]) or "no rules"


def _finding_line(finding: Finding) -> Text:
    label = finding.status.value
    if getattr(finding, "baseline", False):
        label = f"{label} (baseline)"
    line = Text("      ")
    line.append(label, style=_STATUS_STYLE.get(finding.status, ""))
    line.append(" [")
    line.append(printable(finding.severity), style=_SEVERITY_STYLE.get(finding.severity, ""))
    line.append(f"] {printable(finding.rule)} ")
    line.append(printable(finding.title), style="bold")
    line.append(f": {printable(finding.message)}")
    return line


def _names(names: list[str], shown: int = 8) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(printable(n) for n in names[:shown]) + more


def _certificate_lines(facts: Facts) -> list[Text]:
    """Verbose: each certificate the target serves (several when it picks one by the client's offer), its lints;
    what the certificates say (subjects, names, lint subjects) shown ``printable``."""
    lines: list[Text] = []
    deployments = several(facts)
    if deployments:
        lines.append(Text(f"      certificates served: {len(deployments)}", style="dim"))
        lines.extend(Text(f"        {printable(deployment_text(d))}", style="dim") for d in deployments)
    elif facts.certificate.leaf is not None:
        leaf = facts.certificate.leaf
        subject = printable(leaf.subject)
        lines.append(Text(f"      certificate: {subject}, expires {leaf.not_after:%Y-%m-%d}", style="dim"))
        if leaf.subject_alt_names:
            lines.append(Text(f"      names: {_names(leaf.subject_alt_names)}", style="dim"))
    for deployment in deployments or facts.deployments():
        owner = f" ({printable(deployment.label)})" if deployments else ""
        lines.extend(
            Text(f"      lint{owner}: {printable(lint_text(lint))}", style="dim")
            for lint in deployment.certificate.lints
        )
    return lines


def summary_lines(report: Report, *, verbose: bool = False) -> list[Text]:
    """Per target a verdict line, then its failed and inconclusive rules (every rule when ``verbose``)."""
    return [line for target in report.targets for line in target_lines(target, verbose=verbose)]


def _head(target: TargetReport) -> Text:
    """``FAIL  host:443  grade B  (2 failed, 5 passed)``: the verdict line (no grade before one is computed)."""
    head = Text()
    head.append(f"{target.verdict.upper():5}", style=_VERDICT_STYLE.get(target.verdict, ""))
    head.append(f" {printable(target.target)}  ")
    error = target.facts.error
    if error is not None:
        head.append(f"not scanned ({error.error_class.value})", style="yellow")
        return head
    if target.grade is not None:
        head.append(f"grade {printable(target.grade)}  ", style=_GRADE_STYLE.get(target.grade[0], "bold"))
    head.append(f"({_counts(target)})")
    return head


def target_lines(target: TargetReport, *, verbose: bool = False) -> list[Text]:
    """One target's verdict line, then its failed and inconclusive rules (every rule when ``verbose``): what
    the summary shows for it, and what a scan prints the moment the target finishes."""
    facts = target.facts
    lines = [_head(target)]
    if facts.error is not None:
        return lines
    if target.grade_gate is not None:
        lines.append(Text(f"      gate: {printable(target.grade_gate)}", style="red"))
    if verbose:
        accepted = ", ".join(p.version.value for p in facts.protocols if p.status == "accepted") or "none"
        lines.append(Text(f"      protocols accepted: {accepted}", style="dim"))
        if (graded := grade_summary(target)) is not None:
            lines.append(Text(f"      grade: {printable(graded)}", style="dim"))
        lines.extend(_certificate_lines(facts))
    elif deployments := several(facts):
        labels = ", ".join(printable(d.label) for d in deployments)
        lines.append(Text(f"      certificates: {labels}", style="dim"))
    shown = (Status.failed, Status.error) if not verbose else tuple(Status)
    lines.extend(_finding_line(f) for f in target.findings if f.status in shown)
    return lines


ShownKey = tuple[str, str]  # a target as the summary knows it: its label and where it was reached


def print_summary(
    report: Report, *, verbose: bool = False, err: bool = False, shown: Collection[ShownKey] = ()
) -> None:
    """The summary on standard output (standard error with ``err``), leaving out the targets in ``shown``
    (printed already, as they finished: their ``shown_key``; a key, not the target, so that a scan does not keep
    every target it printed)."""
    console = Console(stderr=err, highlight=False, soft_wrap=True)
    left = Counter(shown)
    for target in report.targets:
        if left[shown_key(target)] > 0:
            left[shown_key(target)] -= 1
            continue
        for line in target_lines(target, verbose=verbose):
            console.print(line)


def shown_key(target: TargetReport) -> ShownKey:
    """A target as the summary knows it: its label and where it was reached (one name, several addresses)."""
    return (target.target, target.facts.target.ip_address or "")
