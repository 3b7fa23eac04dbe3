"""The gate: which failures fail a pipeline. Waivers, a baseline and ``--fail-on`` sit between findings and the
exit code; every finding stays in every report.

- A **waiver** (a YAML file, validated whole like a pack, every problem as ``file:line:column``) names a rule and a
  target pattern, with a reason, an owner and the last day it applies. A failing finding it matches becomes
  ``waived``, with the waiver in its evidence and its decision. From the day after ``expires`` the waiver applies
  to nothing and the report lists it as ``expired``.
- A **baseline** (``tlsgate baseline create REPORT.json``) lists the failing (target, pack, rule) of a run. A
  failure it lists stays ``fail`` in the reports, marked ``baseline: true``, and does not fail the run: only new
  failures do. The evidence is deliberately not part of the key — certificate rules carry days-remaining and
  dates that change every day, which would make every baselined failure "new" the next morning.
- ``--fail-on SEVERITY`` changes no finding's status; it decides which ones count.
- ``--min-grade GRADE`` compares each target's grade (``scanner.grade``, from its facts) with the minimum: a grade
  below it (T and M are below any) fails the target's gate verdict, with the reason on the target (``grade_gate``).

What the gate made of each finding is decided here, once, and written on it (``Finding.decision``), with each
target's verdict as the exit code counts it and the run's verdict and exit code on the report: every report format
and the command line read those fields and never decide again.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scanner.exitcodes import ExitCode, exit_code, gate_verdict
from scanner.facts import Facts, TargetInfo
from scanner.findings import SEVERITIES, Decision, Finding, GateState, Severity, Status, WaiverRecord
from scanner.grade import LETTERS, Grading, Letter, grade, meets
from scanner.report import (
    FindingRef,
    GateInfo,
    Report,
    RunExitCode,
    TargetReport,
    ToolInfo,
    Verdict,
    WaiverStatus,
    WaiverUse,
    target_verdict,
    validation_summary,
)
from scanner.saved import SavedFileError, read_json
from scanner.yamlfile import FileProblems, Key, Problem, YamlLoader, did_you_mean, read_yaml

# --- patterns ---------------------------------------------------------------------------------------------


@cache
def _glob(pattern: str) -> re.Pattern[str]:
    """``*`` any text, ``?`` one character, nothing else special: ``[::1]:8443`` is a target, not a class."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.IGNORECASE | re.DOTALL)


def matches(pattern: str, text: str) -> bool:
    return _glob(pattern).fullmatch(text) is not None


def target_names(target: TargetInfo) -> tuple[str, ...]:
    """The names a target pattern is tried on: the target as written (the report's label), then its host:port,
    or for a certificate file its file name."""
    if target.source == "file":
        other = target.host
    else:
        other = f"[{target.host}]:{target.port}" if ":" in target.host else f"{target.host}:{target.port}"
    return (target.input,) if other == target.input else (target.input, other)


# --- waivers ----------------------------------------------------------------------------------------------

_WAIVER_KEYS = ("rule", "target", "reason", "owner", "expires")
_FILE_KEYS = {"waivers"}
_RULE_PATTERN = re.compile(r"^(?:[a-z0-9*?][a-z0-9*?-]*/)?[a-z0-9*?][a-z0-9._*?-]*$", re.IGNORECASE)


@dataclass(frozen=True)
class Waiver:
    rule: str  # PACK/RULE-ID or RULE-ID, '*' and '?' allowed
    target: str
    reason: str
    owner: str
    expires: date  # the last day it applies
    source: str  # FILE:LINE

    def expired(self, today: date) -> bool:
        return today > self.expires

    def covers(self, names: Sequence[str], finding: Finding) -> bool:
        pack, _, rule = self.rule.rpartition("/")
        if pack and not matches(pack, finding.pack):
            return False
        return matches(rule, finding.rule) and any(matches(self.target, name) for name in names)

    def record(self) -> WaiverRecord:
        return WaiverRecord(**asdict(self))


@dataclass(frozen=True)
class WaiverFile:
    path: str
    waivers: tuple[Waiver, ...]


class GateFileError(FileProblems):
    """A waivers or baseline file that cannot be used; carries every problem found (``line`` 0: the whole file)."""


def _whole(file: str, message: str) -> GateFileError:
    return GateFileError([Problem(file, 0, 0, message)])


class _Checker:
    def __init__(self, loader: YamlLoader) -> None:
        self.loader = loader

    def at(self, key: Key, message: str, *, on_key: bool = False) -> None:
        self.loader.at(key, message, on_key=on_key)

    def reported(self, key: Key) -> bool:
        """Whether the YAML reading already found a problem with this value (e.g. the date 2026-02-30)."""
        where = self.loader.positions.values.get(key)
        return any((p.line, p.column) == where for p in self.loader.problems)

    def text(self, item: Mapping[str, Any], name: str, key: Key) -> str | None:
        value = item.get(name)
        if isinstance(value, bool) or not isinstance(value, str | int | float) or not str(value).strip():
            if not self.reported((*key, name)):
                self.at((*key, name), f"{name!r} must be non-empty text")
            return None
        return " ".join(str(value).split())

    def expires(self, item: Mapping[str, Any], key: Key) -> date | None:
        value = item.get("expires")
        if isinstance(value, str):
            with contextlib.suppress(ValueError):  # not a date: the message below says what is
                value = date.fromisoformat(value.strip())
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        if not self.reported((*key, "expires")):
            self.at((*key, "expires"), "'expires' must be a date, YYYY-MM-DD (the last day the waiver applies)")
        return None

    def waiver(self, item: Any, key: Key) -> Waiver | None:
        if not isinstance(item, Mapping):
            self.at(key, "a waiver is a mapping with rule, target, reason, owner and expires")
            return None
        self.loader.unknown_keys(item, _WAIVER_KEYS, key, "waiver")
        missing = [name for name in _WAIVER_KEYS if name not in item]
        if missing:
            self.at(key, f"waiver is missing {', '.join(repr(m) for m in missing)}")
            return None
        rule, target = self.text(item, "rule", key), self.text(item, "target", key)
        reason, owner = self.text(item, "reason", key), self.text(item, "owner", key)
        expires = self.expires(item, key)
        if rule is not None and not _RULE_PATTERN.match(rule):
            self.at(
                (*key, "rule"),
                f"'rule' {rule!r} is not PACK/RULE-ID or RULE-ID (e.g. tls13-only/TLS13ONLY-001; "
                "'*' matches any text, '?' one character)",
            )
            return None
        if rule is None or target is None or reason is None or owner is None or expires is None:
            return None
        line = self.loader.positions.values.get(key, (0, 0))[0]
        return Waiver(rule, target, reason, owner, expires, f"{self.loader.file}:{line}")


def load_waivers(path: Path) -> WaiverFile:
    """Read and check a waivers file whole; raises GateFileError listing every problem."""
    loader, data = read_yaml(path, "waivers file", GateFileError, " (write 'waivers: []' for none)")
    checker = _Checker(loader)
    waivers: list[Waiver] = []
    if not isinstance(data, Mapping) or "waivers" not in data:
        checker.at((), "a waivers file is a mapping with one key, 'waivers': a list of waivers")
    else:
        for name in data:
            if name not in _FILE_KEYS:
                checker.at((name,), f"unknown key {name!r}{did_you_mean(name, _FILE_KEYS)}", on_key=True)
        items = data["waivers"]
        if not isinstance(items, list):
            checker.at(("waivers",), "'waivers' must be a list of waivers")
            items = []
        for index, item in enumerate(items):
            waiver = checker.waiver(item, ("waivers", index))
            if waiver is not None:
                waivers.append(waiver)
    if loader.problems:
        raise GateFileError(sorted(loader.problems, key=lambda p: (p.line, p.column)))
    return WaiverFile(str(path), tuple(waivers))


# --- baseline ---------------------------------------------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BaselineEntry(_Frozen):
    target: str
    pack: str
    rule: str
    severity: str = ""
    title: str = ""
    message: str = Field(default="", description="What the run saw: for people reading the file, never compared.")

    @classmethod
    def of(cls, target: str, f: Finding) -> BaselineEntry:
        return cls(target=target, pack=f.pack, rule=f.rule, severity=f.severity, title=f.title, message=f.message)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.target, self.pack, self.rule)


class BaselineSource(_Frozen):
    report: str = Field(description="The report file the baseline was made from.")
    started_at: datetime


class BaselineFile(_Frozen):
    """``tlsgate baseline create``'s output: sorted and free of timestamps of its own, so it diffs well in a repo."""

    kind: Literal["tlsgate-baseline"] = "tlsgate-baseline"
    schema_version: Literal["1"] = "1"
    tool: ToolInfo = ToolInfo()
    sources: list[BaselineSource]
    findings: list[BaselineEntry]


@dataclass(frozen=True)
class Baseline:
    path: str
    keys: frozenset[tuple[str, str, str]]


def make_baseline(reports: Sequence[tuple[str, Report]]) -> BaselineFile:
    """The failing findings of saved reports (a waived finding is not failing: when its waiver expires, it is new)."""
    entries: dict[tuple[str, str, str], BaselineEntry] = {}
    for _, report in reports:
        for target in report.targets:
            for f in target.findings:
                if f.status == Status.failed:
                    entry = BaselineEntry.of(target.target, f)
                    entries.setdefault(entry.key, entry)
    return BaselineFile(
        sources=[BaselineSource(report=name, started_at=report.started_at) for name, report in reports],
        findings=[entries[key] for key in sorted(entries)],
    )


def baseline_text(baseline: BaselineFile) -> str:
    return baseline.model_dump_json(indent=2) + "\n"


def load_baseline(path: Path) -> Baseline:
    try:
        data = read_json(path, "tlsgate baseline")
    except SavedFileError as exc:
        raise GateFileError([exc.problem or Problem(str(path), 0, 0, str(exc))]) from None
    if isinstance(data, Mapping) and "targets" in data and "kind" not in data:
        raise _whole(
            str(path),
            f"this is a tlsgate report, not a baseline; make one with: tlsgate baseline create {path} -o BASELINE",
        )
    try:
        baseline = BaselineFile.model_validate(data)
    except ValidationError as exc:
        raise _whole(str(path), f"not a tlsgate baseline: {validation_summary(exc)}") from None
    return Baseline(str(path), frozenset(entry.key for entry in baseline.findings))


# --- applying the gate ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gate:
    """The run's gate options, loaded and checked before anything is scanned."""

    fail_on: Severity = "info"
    waivers: WaiverFile | None = None
    baseline: Baseline | None = None
    min_grade: Letter | None = None  # --min-grade: a target graded below it fails the run

    def __post_init__(self) -> None:
        if self.fail_on not in SEVERITIES:
            raise ValueError(f"unknown severity {self.fail_on!r}")
        if self.min_grade is not None and self.min_grade not in LETTERS:
            raise ValueError(f"unknown grade {self.min_grade!r}")


def parse_severity(text: str) -> Severity | None:
    """``HIGH``, `` high `` -> ``high``; None for a word that is not a severity."""
    name = text.strip().lower()
    return cast("Severity", name) if name in SEVERITIES else None


@dataclass
class _Use:
    waiver: Waiver
    findings: dict[int, list[FindingRef]] = field(default_factory=dict)  # by the target's place in the report

    def add(self, index: int, ref: FindingRef) -> None:
        self.findings.setdefault(index, []).append(ref)

    def refs(self) -> list[FindingRef]:
        return [ref for index in sorted(self.findings) for ref in self.findings[index]]


class GateRun:
    """The gate applied to a run one target at a time, as targets finish (in any order): ``judge`` waives and
    marks one target's findings, ``info`` says at the end what each waiver did, listing its findings in the
    report's order (each target's ``index``) — the same as ``apply_gate`` of every target at once."""

    def __init__(self, gate: Gate, today: date) -> None:
        self.gate = gate
        self.today = today
        self._uses = [_Use(w) for w in (gate.waivers.waivers if gate.waivers else ())]
        self._keys = gate.baseline.keys if gate.baseline else frozenset()
        self._count = 0

    def judge(self, names: Sequence[str], findings: Sequence[Finding], index: int | None = None) -> list[Finding]:
        """One target's findings (its names, the report label first), waived and marked; ``index`` is its place
        in the report (by default after the last judged)."""
        place = self._count if index is None else index
        self._count += 1
        return [_judge(finding, names, place, self._uses, self._keys, self.today) for finding in findings]

    def info(self) -> GateInfo:
        gate = self.gate
        return GateInfo(
            fail_on=gate.fail_on,
            baseline=gate.baseline.path if gate.baseline else None,
            waivers_file=gate.waivers.path if gate.waivers else None,
            waivers=[_waiver_use(use, self.today) for use in self._uses],
            min_grade=gate.min_grade,
        )


def apply_gate(
    gate: Gate, targets: Sequence[tuple[Sequence[str], list[Finding]]], today: date
) -> tuple[list[list[Finding]], GateInfo]:
    """Waive and mark the findings of each target (its names, the report label first) and say what each waiver did.

    A failing finding is waived by the first waiver in force that covers it; every covering waiver lists it, an
    expired one too (its findings are the ones that fail again). A failure that no waiver took and that the
    baseline lists is marked ``baseline``. Only failures are touched: an inconclusive rule stays ``error``.
    """
    run = GateRun(gate, today)
    judged = [run.judge(names, findings) for names, findings in targets]
    return judged, run.info()


def _judge(
    finding: Finding,
    names: Sequence[str],
    index: int,
    uses: list[_Use],
    keys: frozenset[tuple[str, str, str]],
    today: date,
) -> Finding:
    if finding.status != Status.failed:
        return finding
    ref = FindingRef(target=names[0], pack=finding.pack, rule=finding.rule)
    applied: Waiver | None = None
    for use in uses:
        if use.waiver.covers(names, finding):
            use.add(index, ref)
            if applied is None and not use.waiver.expired(today):
                applied = use.waiver
    if applied is not None:
        evidence = finding.evidence.model_copy(update={"waiver": applied.record()})
        return finding.model_copy(update={"status": Status.waived, "evidence": evidence})
    if (ref.target, ref.pack, ref.rule) in keys:
        return finding.model_copy(update={"baseline": True})
    return finding


def _waiver_use(use: _Use, today: date) -> WaiverUse:
    w = use.waiver
    status: WaiverStatus = "expired" if w.expired(today) else "applied" if use.findings else "unused"
    return WaiverUse(**asdict(w), status=status, findings=use.refs())


# --- deciding: what each finding, each target and the run come to ------------------------------------------


def finding_gate_state(finding: Finding, fail_on: Severity = "info", scanned: bool = True) -> GateState | None:
    """What the gate made of one finding, for the renderers to mark it; None for a pass or not-applicable rule.

    ``counted``: a failure (or an inconclusive rule) that decides the exit code — 1 for a failure, 3 for an
    inconclusive rule; ``baseline``: a failure the baseline lists; ``waived``; ``below_fail_on``: a failure or an
    inconclusive rule below ``--fail-on``. The rule is ``gate_verdict``'s, asked of the finding alone; ``scanned``
    is whether its target was scanned (every rule of a target that was not is inconclusive, and counts whatever
    its severity, as the target does).
    """
    if finding.status == Status.waived:
        return "waived"
    if finding.status == Status.failed:
        if finding.baseline:
            return "baseline"
        return "counted" if gate_verdict(True, [finding], fail_on) == "fail" else "below_fail_on"
    if finding.status == Status.error:
        return "counted" if gate_verdict(scanned, [finding], fail_on) == "error" else "below_fail_on"
    return None


def finding_waiver(finding: Finding) -> WaiverRecord | None:
    """The waiver a waived finding carries in its evidence (as ``apply_gate`` put it there); None when there is
    none (a hand-edited saved report)."""
    return finding.evidence.waiver if finding.status == Status.waived else None


def decide(finding: Finding, fail_on: Severity = "info", scanned: bool = True) -> Finding:
    """The finding with the gate's decision written on it (none for a pass or a rule that does not apply)."""
    state = finding_gate_state(finding, fail_on, scanned)
    decision = None if state is None else Decision(state=state, waiver=finding_waiver(finding))
    return finding.model_copy(update={"decision": decision})


def _decided(facts: Facts, findings: Sequence[Finding], fail_on: Severity) -> tuple[list[Finding], Verdict]:
    """Each finding with its decision, and the target's verdict as the exit code counts it."""
    scanned = facts.status == "ok"
    decided = [decide(f, fail_on, scanned) for f in findings]
    return decided, gate_verdict(scanned, decided, fail_on)


def grade_gate(grading: Grading | None, scanned: bool, min_grade: str | None) -> tuple[Verdict, str | None]:
    """What --min-grade makes of a target's grade: ``fail`` with the reason when the grade is below it (T and M
    are below any), ``error`` when a scanned target has no grade to compare, else ``pass``. A target not scanned
    is left to its findings (it is "could not check" already)."""
    if min_grade is None or not scanned:
        return "pass", None
    if grading is None:
        return "error", f"no grade (its protocols were not observed): --min-grade {min_grade} not checked"
    if meets(grading.grade, min_grade):
        return "pass", None
    return "fail", f"grade {grading.grade} is below --min-grade {min_grade}"


def _worst(verdicts: Iterable[Verdict]) -> Verdict:
    seen = set(verdicts)
    return "fail" if "fail" in seen else "error" if "error" in seen else "pass"


def decided_target(
    facts: Facts, findings: Sequence[Finding], fail_on: Severity = "info", min_grade: str | None = None
) -> TargetReport:
    """One target's report: its findings (already waived and marked by ``apply_gate``) with their decisions, its
    grade from its facts, its verdict, and its verdict as the exit code counts it (``min_grade`` included)."""
    decided, counted = _decided(facts, findings, fail_on)
    grading = grade(facts)
    # a certificate file (tlsgate cert) has no handshake to grade: --min-grade does not apply to it
    graded, why = grade_gate(grading, facts.status == "ok", min_grade if facts.target.source != "file" else None)
    return TargetReport(
        target=facts.target.input,
        verdict=target_verdict(facts, decided),
        gate_verdict=_worst((counted, graded)),
        facts=facts,
        findings=decided,
        grade=grading.grade if grading is not None else None,
        grading=grading,
        grade_gate=why,
    )


_RUN_OUTCOMES: dict[ExitCode, tuple[Verdict, RunExitCode]] = {
    ExitCode.OK: ("pass", 0),
    ExitCode.POLICY_FAILED: ("fail", 1),
    ExitCode.NOT_CHECKED: ("error", 3),
}


def run_outcome(targets: Iterable[TargetReport]) -> tuple[Verdict, RunExitCode]:
    """The run's verdict and exit code from its targets' gate verdicts."""
    return verdicts_outcome(t.gate_verdict for t in targets)


def verdicts_outcome(gate_verdicts: Iterable[Verdict]) -> tuple[Verdict, RunExitCode]:
    """The run's verdict and exit code from the gate verdicts of its targets (in any order)."""
    return _RUN_OUTCOMES[exit_code(gate_verdicts)]


def decide_report(report: Report) -> Report:
    """A saved report with the decisions written as the gate would have written them when it was judged, from what
    it records: statuses, baseline marks, waivers in the evidence, its --fail-on and --min-grade, and the grade of
    each target from its facts. For a report written before reports carried the decisions or the grade; its
    verdicts and summary stay as saved."""
    targets = [
        decided_target(target.facts, target.findings, report.gate.fail_on, report.gate.min_grade).model_copy(
            update={"target": target.target, "verdict": target.verdict}
        )
        for target in report.targets
    ]
    verdict, code = run_outcome(targets)
    return report.model_copy(update={"targets": targets, "verdict": verdict, "exit_code": code})


def regrade_report(report: Report, min_grade: Letter | None) -> Report:
    """A saved report graded from its facts (a report written before grades has none) and, with ``min_grade``,
    gated on the grade too: ``report render --min-grade``. Findings and their decisions stay as saved."""
    if min_grade is None and all(t.grade is not None or t.facts.status != "ok" for t in report.targets):
        return report
    gate_info = report.gate.model_copy(update={"min_grade": min_grade}) if min_grade else report.gate
    targets = []
    for target in report.targets:
        grading = grade(target.facts)
        applies = min_grade if target.facts.target.source != "file" else None
        graded, why = grade_gate(grading, target.facts.status == "ok", applies)
        update = {"grade": grading.grade if grading else None, "grading": grading, "grade_gate": why}
        if min_grade is not None:
            update["gate_verdict"] = _worst((target.gate_verdict, graded))
        targets.append(target.model_copy(update=update))
    verdict, code = run_outcome(targets)
    return report.model_copy(update={"targets": targets, "gate": gate_info, "verdict": verdict, "exit_code": code})
