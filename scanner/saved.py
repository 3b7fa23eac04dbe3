"""Reading back what tlsgate saved: a JSON report, facts JSON, or a scan's JSON Lines journal.

One reader for every command that reads them (evaluate, scan --resume, report render, baseline create), and one
exception, ``SavedFileError``, whose message is one line naming the file, ready to print.

A report written before reports carried the gate's decisions (it has no ``exit_code``) is read as if it had them:
the decisions, each target's gate verdict and the run's verdict and exit code are derived here, once, from what
the report records (statuses, baseline marks, waivers in the evidence, its --fail-on), so every renderer reads the
same fields whatever the report's age.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from scanner.facts import Facts
from scanner.report import PackInfo, Report, ScanOptions, TargetReport, summarise, validation_summary
from scanner.yamlfile import Problem, decode_utf8, read_bytes

# A saved report holds every target's facts (tens of KB each): room for a fleet of thousands, not for a file that
# would take the machine's memory. Nesting past the JSON parser's recursion limit is refused with a message.
MAX_SAVED_BYTES = 256 * 1024 * 1024


class SavedFileError(ValueError):
    """A saved report, facts file or journal that cannot be used. ``str()`` is one line naming the file; ``problem``
    is set when the line is a position in the file (``line`` 0: the file as a whole)."""

    def __init__(self, message: str, problem: Problem | None = None) -> None:
        super().__init__(message)
        self.problem = problem


def _at(file: str, line: int, column: int, message: str) -> SavedFileError:
    problem = Problem(file, line, column, message)
    return SavedFileError(problem.as_line(), problem)


def _problem_error(problems: list[Problem]) -> SavedFileError:
    return SavedFileError(problems[0].as_line(), problems[0])


def _read_text(path: Path, what: str) -> str:
    """The file as UTF-8 text: unreadable, larger than ``MAX_SAVED_BYTES`` or not UTF-8 (at the bad byte's
    position) raises SavedFileError."""
    raw = read_bytes(path, what, _problem_error, MAX_SAVED_BYTES)
    return decode_utf8(str(path), raw, what, _problem_error)


def _loads(path: Path, text: str) -> Any:
    """``json.loads``, with a value too deep to parse or a number too long to convert as SavedFileError; an
    invalid document raises JSONDecodeError (the caller decides what it may still be)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise _at(str(path), 0, 0, "not usable JSON: nested too deeply") from None
    except ValueError as exc:  # an integer of more digits than Python converts
        raise _at(str(path), 0, 0, f"not usable JSON: {exc}") from None


def read_json(path: Path, what: str) -> Any:
    """The JSON value of a file; ``what`` names what it should be (``tlsgate baseline``) in the messages."""
    text = _read_text(path, what)
    try:
        return _loads(path, text)
    except json.JSONDecodeError as exc:
        raise _at(str(path), exc.lineno, exc.colno, f"not valid JSON: {exc.msg}") from None


# Stand-ins for what an older report did not record, so it validates; ``decide_report`` replaces every one.
_UNDECIDED_REPORT = {"verdict": "pass", "exit_code": 0}
_UNDECIDED_TARGET = {"gate_verdict": "pass"}


def _undecided(data: dict[str, Any]) -> dict[str, Any]:
    upgraded = {**_UNDECIDED_REPORT, **data}
    targets = data.get("targets")
    if isinstance(targets, list):
        upgraded["targets"] = [{**_UNDECIDED_TARGET, **t} if isinstance(t, dict) else t for t in targets]
    return upgraded


def _report(data: Any) -> Report:
    """The report of parsed JSON, with the gate's decisions derived when it predates them; raises
    ValidationError."""
    if not isinstance(data, dict) or "exit_code" in data:
        return Report.model_validate(data)
    from scanner.gate import decide_report  # noqa: PLC0415 - the gate reads baselines with read_json above

    return decide_report(Report.model_validate(_undecided(data)))


def _checked_report(path: Path, data: Any) -> Report:
    try:
        return _report(data)
    except ValidationError as exc:
        raise _at(str(path), 0, 0, f"not a tlsgate JSON report: {validation_summary(exc)}") from None


def read_report(path: Path) -> Report:
    """A JSON report written by scan, cert or evaluate (any version of report schema 1)."""
    return _checked_report(path, read_json(path, "tlsgate JSON report"))


@dataclass(frozen=True)
class SavedFacts:
    path: Path
    kind: Literal["report", "facts", "journal"]
    facts: tuple[Facts, ...]
    timeout: float | None  # the scan's timeout, when the file is a report that recorded it


_FACTS_LIST: TypeAdapter[list[Facts]] = TypeAdapter(list[Facts])


def read_saved_facts(path: Path) -> SavedFacts:
    """Facts from a JSON report written by ``scan --json`` / ``cert --json``, from facts JSON (one object or a
    list), or from a scan's JSON Lines."""
    text = _read_text(path, "JSON report or facts file")
    try:
        data: Any = _loads(path, text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data" or path.suffix == ".jsonl":
            return _read_journal(path, text)
        raise SavedFileError(f"{path}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except SavedFileError:
        if path.suffix == ".jsonl":  # the journal reader names the line that is too deep
            return _read_journal(path, text)
        raise
    if isinstance(data, dict) and "facts" in data and "target" in data:
        return _read_journal(path, text)  # a JSON Lines file of one target
    try:
        if isinstance(data, dict) and "targets" in data:
            report = _report(data)
            facts = tuple(t.facts for t in report.targets)
            return SavedFacts(path, "report", facts, report.options.timeout)
        if isinstance(data, dict) and "target" in data:
            return SavedFacts(path, "facts", (Facts.model_validate(data),), None)
        if isinstance(data, list):
            facts = tuple(_FACTS_LIST.validate_python(data))
            if not facts:
                raise SavedFileError(f"{path}: the list of facts is empty")
            return SavedFacts(path, "facts", facts, None)
    except ValidationError as exc:
        what = "tlsgate report" if isinstance(data, dict) and "targets" in data else "tlsgate facts"
        raise SavedFileError(f"{path}: not a valid {what}: {validation_summary(exc)}") from None
    raise SavedFileError(
        f"{path}: neither a tlsgate report (JSON or JSON Lines) nor facts (an object with 'target', or a list)"
    )


def _journal_target(line: str) -> TargetReport:
    """One JSON Lines target; raises ValidationError (pydantic's own words for a line that is not JSON). A line
    written before targets carried a gate verdict is read too (its facts and findings are what callers use)."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):  # pydantic's parser says why, in its words (nested too deeply too)
        return TargetReport.model_validate_json(line)
    if isinstance(data, dict):
        data = {**_UNDECIDED_TARGET, **data}
    return TargetReport.model_validate(data)


def _journal_targets(path: Path, text: str) -> list[TargetReport]:
    """The targets of JSON Lines (``--format jsonl``): a target per line. A last line cut short — the writer was
    killed mid-line — is left out; any other bad line is an error naming its line."""
    targets: list[TargetReport] = []
    lines = text.split("\n")
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            targets.append(_journal_target(raw))
        except ValidationError as exc:
            if number == len(lines):  # no newline after it: the line was never finished
                break
            raise SavedFileError(
                f"{path}:{number}: not a tlsgate JSON Lines target: {validation_summary(exc)}"
            ) from None
    if not targets:
        raise SavedFileError(f"{path}: no finished target in this JSON Lines file")
    return targets


def _read_journal(path: Path, text: str) -> SavedFacts:
    return SavedFacts(path, "journal", tuple(t.facts for t in _journal_targets(path, text)), None)


def read_report_or_journal(path: Path) -> Report:
    """A JSON report, or a scan's JSON Lines journal read as a report of its finished targets: the packs are those
    its findings name, at a version the journal does not record (``""``), and the run spans its targets' times."""
    text = _read_text(path, "tlsgate JSON report or JSON Lines journal")
    try:
        data: Any = _loads(path, text)
    except json.JSONDecodeError as exc:
        if exc.msg != "Extra data" and path.suffix != ".jsonl":
            raise _at(str(path), exc.lineno, exc.colno, f"not valid JSON: {exc.msg}") from None
        return _journal_report(_journal_targets(path, text))
    except SavedFileError:
        if path.suffix != ".jsonl":
            raise
        return _journal_report(_journal_targets(path, text))  # it names the line that is too deep
    if isinstance(data, dict) and "facts" in data and "target" in data:
        return _journal_report(_journal_targets(path, text))  # a JSON Lines file of one target
    return _checked_report(path, data)


def _journal_report(targets: list[TargetReport]) -> Report:
    from scanner.gate import run_outcome  # noqa: PLC0415 - as in _report

    packs = sorted({f.pack for t in targets for f in t.findings})
    verdict, exit_code = run_outcome(targets)
    return Report(
        started_at=min(t.facts.started_at for t in targets),
        finished_at=max(t.facts.finished_at for t in targets),
        options=ScanOptions(timeout=0, packs=packs),
        packs=[PackInfo(id=p, title=p, version="", sha256="", rules=0) for p in packs],
        targets=targets,
        summary=summarise(targets),
        verdict=verdict,
        exit_code=exit_code,
    )
