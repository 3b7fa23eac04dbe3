"""The report model: one scan's complete record, from which every output format is rendered."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer

from scanner import __version__
from scanner.facts import Facts
from scanner.findings import Finding, Severity, Status, WaiverRecord
from scanner.grade import Grading

REPORT_SCHEMA_VERSION = "1"

Verdict = Literal["pass", "fail", "error"]
RunExitCode = Literal[0, 1, 3]  # the exit codes a judged run can have; the command line adds 2, 4, 5 and 130


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ToolInfo(_Frozen):
    name: str = "tlsgate"
    version: str = __version__


class PackInfo(_Frozen):
    id: str
    title: str
    version: str
    sha256: str = Field(description="SHA-256 of the pack file as loaded.")
    source: dict[str, str] = Field(default_factory=dict)
    rules: int
    params: dict[str, Any] = Field(default_factory=dict, description="Parameter values this run used.")


class RunLimits(_Frozen):
    """How a scan was bounded: what it may do at once and how long it may take (seconds)."""

    concurrency: int = Field(description="Targets probed at once.")
    max_connections: int = Field(description="Connections in flight across the run.")
    per_host: int = Field(description="Connections in flight to one host (IP address).")
    time_budget: float | None = Field(default=None, description="Seconds the whole run could take; none if unset.")
    target_time: float | None = Field(default=None, description="Seconds one target could take; none if unset.")


class ScanOptions(_Frozen):
    timeout: float
    packs: list[str]
    limits: RunLimits | None = Field(default=None, description="Set for scans; none for evaluate and cert.")
    interrupted: bool = Field(default=False, description="Stopped by Ctrl-C or SIGTERM before every target finished.")
    resumed_from: str | None = Field(
        default=None, description="The file (--resume) whose finished targets were kept instead of scanned again."
    )


class TargetReport(_Frozen):
    target: str
    verdict: Verdict = Field(description="fail if any rule failed; error if not scanned or any rule inconclusive.")
    gate_verdict: Verdict = Field(
        description="The verdict as the exit code counts it: only counted findings fail it or leave it unchecked "
        "(failures in the baseline, waived or below --fail-on do not); error if not scanned."
    )
    facts: Facts
    findings: list[Finding]
    grade: str | None = Field(
        default=None,
        description="The letter grade from the facts (A+, A, A-, B, C, D, E, F; T for trust, M for name mismatch), "
        "after the Qualys SSL Labs SSL Server Rating Guide (docs/grade.md); none when not scanned.",
    )
    grading: Grading | None = Field(
        default=None,
        description="How the grade was worked out: the three category scores, the number, the caps that applied "
        "(each naming the guide's section) and what the facts could not tell; none when there is no grade.",
    )
    grade_gate: str | None = Field(
        default=None,
        description="The gate's decision on the grade when --min-grade was given and the grade does not meet it "
        "(e.g. 'grade B is below --min-grade A'): it fails the target's gate verdict. None when it meets it.",
    )


class Summary(_Frozen):
    targets: int
    targets_passed: int
    targets_failed: int
    targets_error: int
    findings: dict[str, int] = Field(description="Count of findings per status.")
    failed_by_severity: dict[str, int]


class FindingRef(_Frozen):
    target: str
    pack: str
    rule: str


WaiverStatus = Literal["applied", "expired", "unused"]


class WaiverUse(WaiverRecord):
    """One waiver of the --waivers file and what it did in this run."""

    status: WaiverStatus = Field(
        description="applied: it waived the findings listed; expired: past its date, it waived nothing (the findings "
        "listed still fail); unused: in force, but no failing finding matched it."
    )
    findings: list[FindingRef] = Field(default_factory=list, description="The failing findings it matched.")


class GateInfo(_Frozen):
    """What decided the exit code beyond the findings: --fail-on, --baseline and --waivers as this run used them."""

    fail_on: Severity = Field(default="info", description="Failures below this severity do not fail the run.")
    baseline: str | None = Field(default=None, description="The baseline file: failures it lists do not count.")
    waivers_file: str | None = None
    waivers: list[WaiverUse] = Field(default_factory=list)
    min_grade: str | None = Field(
        default=None,
        description="--min-grade: a target graded below it (A+ > A > A- > B > C > D > E > F; T and M below any) "
        "fails the run.",
    )


class Report(_Frozen):
    schema_version: Literal["1"] = "1"
    tool: ToolInfo = ToolInfo()
    started_at: datetime
    finished_at: datetime
    options: ScanOptions
    packs: list[PackInfo]
    # A Sequence, not a list: a scan's report holds its targets in a spool (scanner/targetspool.py), decoded one
    # at a time as they are read, so that no process holds every target; a report read from a file holds a list.
    targets: Sequence[TargetReport]
    summary: Summary
    gate: GateInfo = GateInfo()
    verdict: Verdict = Field(
        description="The run's verdict as the gate decided it: fail if any target's gate verdict is fail, else error "
        "if any is error, else pass."
    )
    exit_code: RunExitCode = Field(
        description="The exit code the verdict gives: 0 pass, 1 fail, 3 error (an interrupted scan still exits 130)."
    )

    @field_serializer("targets", return_type=list[TargetReport])
    def _targets(self, targets: Sequence[TargetReport]) -> list[TargetReport]:
        # a spool is serialised as the list it stands for (the renderers stream it instead: scanner/render)
        return targets if isinstance(targets, list) else list(targets)


def target_verdict(facts: Facts, findings: list[Finding]) -> Verdict:
    if any(f.status == Status.failed for f in findings):
        return "fail"
    if facts.status != "ok" or any(f.status == Status.error for f in findings):
        return "error"
    return "pass"


class Tally:
    """A run's ``Summary`` counted one target at a time, targets finishing in any order: each is added with its
    place in the report (``index``; by default after the last), and the summary counts them in that order (the
    order ``failed_by_severity`` lists severities in) — the same summary as one counted from the whole list."""

    def __init__(self) -> None:
        self._verdicts = {"pass": 0, "fail": 0, "error": 0}
        self._by_status = {s.value: 0 for s in Status}
        self._severities: dict[int, dict[str, int]] = {}  # by index: the failures' severities, first seen first
        self._count = 0

    def add(self, target: TargetReport, index: int | None = None) -> None:
        self._verdicts[target.verdict] += 1
        severities: dict[str, int] = {}
        for f in target.findings:
            self._by_status[f.status.value] += 1
            if f.status == Status.failed:
                severities[f.severity] = severities.get(f.severity, 0) + 1
        place = self._count if index is None else index
        if severities:
            self._severities[place] = severities
        self._count += 1

    def summary(self) -> Summary:
        severities: dict[str, int] = {}
        for place in sorted(self._severities):
            for severity, count in self._severities[place].items():
                severities[severity] = severities.get(severity, 0) + count
        return Summary(
            targets=self._count,
            targets_passed=self._verdicts["pass"],
            targets_failed=self._verdicts["fail"],
            targets_error=self._verdicts["error"],
            findings=dict(self._by_status),
            failed_by_severity=severities,
        )


def summarise(targets: Iterable[TargetReport]) -> Summary:
    tally = Tally()
    for target in targets:
        tally.add(target)
    return tally.summary()


def report_schema() -> dict[str, Any]:
    schema = Report.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://tlsgate.dev/schema/report-{REPORT_SCHEMA_VERSION}.json"
    return schema


# --- reading saved files: one line for what pydantic found wrong ---------------------------------------


def _location(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def validation_summary(exc: ValidationError) -> str:
    """The first problem with where it is, and how many more: a whole pydantic dump is no one-liner."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    message = " ".join(str(first["msg"]).split())
    more = len(errors) - 1
    return f"{_location(first['loc'])}: {message}" + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")
