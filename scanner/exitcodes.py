"""Exit codes: small pure functions from findings and the gate's options to a code, so a pipeline can tell
"policy violated" from "could not check"."""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum

from scanner.findings import SEVERITY_RANK, Finding, Severity, Status
from scanner.report import Report, Verdict


class ExitCode(IntEnum):
    OK = 0  # every rule passed on every target (or its failures are waived, in the baseline, or below --fail-on)
    POLICY_FAILED = 1  # at least one rule failed that counts: not waived, new since the baseline, at or above --fail-on
    USAGE = 2  # bad option, target, rule pack, waivers or baseline file: nothing was scanned
    NOT_CHECKED = 3  # nothing counted failed, but a target could not be scanned or a counted rule was inconclusive
    OUTPUT_FAILED = 4  # a report could not be written, or the run not recorded in the --store
    INTERNAL = 5  # a bug in tlsgate; the message says what broke
    INTERRUPTED = 130  # stopped by Ctrl-C or SIGTERM; the reports hold the targets that had finished


EXIT_CODE_HELP = """Exit codes:
    0  every rule passed on every target, or every failure is waived,
       in the --baseline, or below --fail-on
    1  at least one rule failed (policy violated): not waived, new since
       the --baseline, and at or above --fail-on; or a target's grade is
       below --min-grade
    2  usage error: bad option or target, unknown or invalid rule pack,
       inventory, waivers, baseline or saved report, a file that cannot
       be read, a report path that cannot be written, a --store that
       cannot be opened; nothing was scanned
    3  could not check: a target could not be scanned, or a rule at or
       above --fail-on was inconclusive, and no counted rule failed
    4  a report could not be written, or the run could not be
       recorded in the --store (the reports were written)
    5  internal error in tlsgate
  130  interrupted (Ctrl-C, SIGTERM): reports written for what finished"""


def exit_code(verdicts: Iterable[Verdict]) -> ExitCode:
    """A violation outranks "could not check": retrying cannot clear it, so it is the actionable result."""
    seen = set(verdicts)
    if "fail" in seen:
        return ExitCode.POLICY_FAILED
    if "error" in seen:
        return ExitCode.NOT_CHECKED
    return ExitCode.OK


def at_or_above(finding: Finding, fail_on: Severity) -> bool:
    """Whether a finding's severity is at or above ``fail_on``; a severity tlsgate does not know always counts."""
    return SEVERITY_RANK.get(finding.severity, -1) <= SEVERITY_RANK[fail_on]


def gate_verdict(scanned: bool, findings: Iterable[Finding], fail_on: Severity = "info") -> Verdict:
    """One target's verdict for the exit code: only failures that are new (not ``baseline``) and at or above
    ``fail_on`` fail it, and only inconclusive rules at or above ``fail_on`` make it "could not check" (a rule
    below it could not have failed the run either way). A target not scanned at all is always "could not check".
    Waived findings are not failures."""
    counted = [f for f in findings if at_or_above(f, fail_on)]
    if any(f.status == Status.failed and not f.baseline for f in counted):
        return "fail"
    if not scanned or any(f.status == Status.error for f in counted):
        return "error"
    return "pass"


def gate_exit_code(targets: Iterable[tuple[bool, Iterable[Finding]]], fail_on: Severity = "info") -> ExitCode:
    """The exit code of a run from each target's (scanned, findings)."""
    return exit_code(gate_verdict(scanned, findings, fail_on) for scanned, findings in targets)


def report_exit_code(report: Report) -> ExitCode:
    """The exit code of a finished run, as the gate recorded it on the report."""
    return ExitCode(report.exit_code)
