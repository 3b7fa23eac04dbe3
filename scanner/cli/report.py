"""``tlsgate report render`` and ``tlsgate baseline create``: work with saved reports, scanning nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scanner.cli.deliver import deliver, plural, show_grade_gate
from scanner.cli.errors import fatal
from scanner.cli.options import (
    FORMAT_HELP,
    STDOUT,
    MinGradeOption,
    check_output,
    load_min_grade,
    parse_outputs,
    saved_files_argument,
)
from scanner.exitcodes import ExitCode
from scanner.textsafe import printable

RENDER_EXIT_HELP = """Exit codes:
  0  every report was written
  1  with --min-grade: a target's grade is below it (the reports were written)
  2  usage error: bad --format or --min-grade, or SAVED is not a readable
     tlsgate JSON report
  4  a report could not be written"""


def report_render(
    saved: Annotated[
        Path, saved_files_argument("A JSON report written by scan, cert or evaluate (--format json).", "SAVED.json")
    ],
    format_: Annotated[
        list[str],
        typer.Option("--format", metavar="FORMAT[=PATH]", help=FORMAT_HELP, show_default=False),
    ],
    min_grade: MinGradeOption = None,
) -> None:
    """Render a saved JSON report in other formats: nothing is scanned or judged again.

    The report keeps its findings and verdicts as saved (to judge saved facts against other packs, use
    evaluate), so the exit code says whether the reports were written, not whether the policy was met. Each
    target is graded from its saved facts (docs/grade.md); with --min-grade a grade below it exits 1.
    """
    from scanner.gate import regrade_report  # noqa: PLC0415
    from scanner.grade import meets  # noqa: PLC0415
    from scanner.saved import SavedFileError, read_report  # noqa: PLC0415

    outputs = parse_outputs(format_)
    letter = load_min_grade(min_grade)
    try:
        report = regrade_report(read_report(saved), letter)
    except SavedFileError as exc:
        fatal(str(exc), ExitCode.USAGE)
    deliver(report, outputs, summary=False)
    show_grade_gate(report, err=True)
    if letter is not None and any(t.grade is not None and not meets(t.grade, letter) for t in report.targets):
        raise typer.Exit(ExitCode.POLICY_FAILED)


BASELINE_EXIT_HELP = """Exit codes:
  0  the baseline was written
  2  usage error: a REPORT is not a readable tlsgate JSON report, or
     the output path cannot be written
  4  the baseline could not be written"""


def baseline_create(
    reports: Annotated[
        list[Path],
        saved_files_argument("JSON reports written by scan, cert or evaluate (--format json).", "REPORT.json..."),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", metavar="FILE", help="Write the baseline here (- for standard output).")
    ],
) -> None:
    """Make a baseline from saved reports: every failing (target, pack, rule) in them.

    Scan, cert and evaluate with --baseline FILE then report those failures as before, marked as in the
    baseline, but only failures that are not in it fail the run. Waived findings are left out: when their
    waiver expires, they fail again.
    """
    from scanner.gate import baseline_text, make_baseline  # noqa: PLC0415
    from scanner.render import write_atomic  # noqa: PLC0415
    from scanner.saved import SavedFileError, read_report  # noqa: PLC0415

    to_stdout = str(output) == STDOUT
    if not to_stdout:
        check_output(output)
    loaded = []
    for path in reports:
        try:
            loaded.append((str(path), read_report(path)))
        except SavedFileError as exc:
            fatal(str(exc), ExitCode.USAGE)
    for name, report in loaded:
        for target in report.targets:
            if target.facts.status != "ok":
                line = f"tlsgate: warning: {name}: {target.target} was not scanned; any failure it has later is new"
                typer.echo(printable(line), err=True)
    baseline = make_baseline(loaded)
    text = baseline_text(baseline)
    targets = len({entry.target for entry in baseline.findings})
    if to_stdout:
        typer.echo(text.encode("utf-8"), nl=False)
    else:
        try:
            write_atomic(output, text)
        except OSError as exc:
            fatal(f"cannot write {output}: {exc.strerror or exc}", ExitCode.OUTPUT_FAILED)
    where = "standard output" if to_stdout else str(output)
    typer.echo(
        f"baseline: {where} ({plural(len(baseline.findings), 'failing finding')} on {plural(targets, 'target')})",
        err=to_stdout,
    )
