"""The end of a command: write the reports, then tell a person what they say (summary, gate, where they went)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

from scanner import engine
from scanner.cli.errors import fatal, fatal_lines
from scanner.cli.options import Output, names_stdout, verbosity
from scanner.cli.signals import Stops, guard
from scanner.exitcodes import ExitCode
from scanner.facts import ErrorClass
from scanner.live import ProgressBar, TimeLeft
from scanner.render import OutputFormat, chunks, write_atomic_all
from scanner.render.files import Kind, destination
from scanner.render.gate_marks import (
    expired_waiver_text,
    expired_waivers,
    gate_in_use,
    gate_line,
    unused_waiver_text,
    unused_waivers,
)
from scanner.report import Report, TargetReport
from scanner.textsafe import printable

if TYPE_CHECKING:
    from scanner.render.terminal import ShownKey


def write_reports(report: Report, outputs: Sequence[Output], stops: Stops, journal: Output | None = None) -> None:
    """Write every report or none (a render that breaks writes nothing), each rendered in pieces straight into
    its temp file (scanner/render/files.py): a report of thousands of targets is never whole in memory. A signal
    that quits (see Stops) ends the command here, saying whether the reports were written."""
    try:
        pieces = [(output.path, chunks(report, output.format)) for output in outputs]
        write_atomic_all(pieces, commit=stops.committing())
    except OSError as exc:
        fatal(f"cannot write {exc.filename or 'a report'}: {exc.strerror or exc}", ExitCode.OUTPUT_FAILED)
    except KeyboardInterrupt:
        quit_interrupted(stops, outputs, journal)


def quit_interrupted(stops: Stops, outputs: Sequence[Output], journal: Output | None = None) -> NoReturn:
    """Exit 130 with one line saying whether the reports are in place (and which stream may hold part of one)."""
    if stops.committed:
        said = "reports written"
    else:
        said = "no report was written"
        cut = [o for o in outputs if o.path is None or _kind(o) is not Kind.file]
        if journal is not None:
            said += f"; the JSON Lines journal ({journal.path or 'standard output'}) holds the finished targets"
        if cut:
            said += f"; {', '.join(str(o.path or 'standard output') for o in cut)} may hold part of a report"
    typer.echo(f"tlsgate: interrupted: {said}", err=True)
    raise typer.Exit(int(ExitCode.INTERRUPTED))


def _kind(output: Output) -> Kind | None:
    try:
        return destination(output.path).kind
    except OSError:
        return None


def show_summary(report: Report, err: bool = False, shown: Sequence[ShownKey] = ()) -> None:
    """The verdicts for a person (rich: colour on a terminal, plain when piped or NO_COLOR); on stderr (``err``)
    when standard output carries a report; the targets in ``shown`` were printed as they finished and are not
    repeated. The one-line reason a target could not be scanned always goes to stderr, where CI logs keep
    errors."""
    from scanner.render.terminal import print_summary  # noqa: PLC0415 - rich loads only when printing

    for target in report.targets:
        error = target.facts.error
        if error is not None and error.error_class != ErrorClass.interrupted:  # one line says it for them all
            line = f"tlsgate: {target.target}: {error.error_class.value}: {error.message}"
            typer.echo(printable(line), err=True)  # the message may quote the server
    if verbosity() > 0:
        print_summary(report, verbose=verbosity() > 1, err=err, shown=shown)


def deliver(
    report: Report,
    outputs: Sequence[Output],
    summary: bool = True,
    stdout_taken: bool = False,
    stops: Stops | None = None,
    journal: Output | None = None,
    shown: Sequence[ShownKey] = (),
) -> None:
    """Write the reports, then the summary: on stderr when a report (or the streamed journal: ``stdout_taken``)
    is on standard output. ``stops`` is the scan's signal guard (without one a guard covers the writing alone),
    ``journal`` the scan's JSON Lines journal, already written; ``shown`` the targets whose lines the scan
    printed as they finished."""
    if stops is None:
        with guard(Stops(finishing=True)) as own:
            deliver(report, outputs, summary, stdout_taken, own, shown=shown)
        return
    write_reports(report, outputs, stops, journal)
    to_stdout = stdout_taken or any(output.path is None or names_stdout(output.path) for output in outputs)
    if summary:
        show_summary(report, err=to_stdout, shown=shown)
        show_gate(report, err=to_stdout)
    for output in outputs:
        if output.path is not None and verbosity() > 0:
            typer.echo(f"report: {output.path}", err=to_stdout)


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' * (count != 1)}"


def show_gate(report: Report, err: bool = False) -> None:
    """Expired waivers as warnings on stderr (unused ones too, unless --quiet), and one line saying which
    failures did not count and why."""
    for use in expired_waivers(report):
        typer.echo(f"tlsgate: warning: {printable(expired_waiver_text(use))}", err=True)
    if verbosity() > 0:
        for use in unused_waivers(report):
            typer.echo(f"tlsgate: warning: {printable(unused_waiver_text(use))}", err=True)
    if not gate_in_use(report.gate) or verbosity() == 0:
        return
    typer.echo(f"gate: {printable(gate_line(report))}", err=err)


def show_grade_gate(report: Report, err: bool = False) -> None:
    """One line per target that --min-grade failed (or could not check), saying why: for report render, which prints
    no summary (the summary of scan and evaluate says it under each target)."""
    for target in report.targets:
        if target.grade_gate is not None:
            typer.echo(f"gate: {printable(target.target)}: {printable(target.grade_gate)}", err=err)


def scan_and_deliver(
    request: engine.ScanRequest, outputs: Sequence[Output], progress: bool, forced: bool = False
) -> Report:
    """Scan with the JSON Lines journal (if asked for) written as targets finish, then write the other reports.

    Ctrl-C or SIGTERM stops the scan: the reports are still written — every finished target, the others marked
    ``interrupted`` — and the exit code is 130; a signal while they are written waits for them, the next one quits
    without them (see Stops). ``forced`` draws the progress bar even when standard error is no terminal
    (--progress given).
    """
    journal = next((o for o in outputs if o.format is OutputFormat.jsonl), None)
    if journal is not None:
        request = replace(request, journal=engine.JournalRequest(journal.path))
    others = [o for o in outputs if o.format is not OutputFormat.jsonl]
    streamed = journal is not None and (journal.path is None or names_stdout(journal.path))
    taken = streamed or any(o.path is None or names_stdout(o.path) for o in others)
    probe = request.probe
    timing = TimeLeft(probe.concurrency, probe.timeout, probe.target_time, probe.time_budget)
    bar = ProgressBar(force=forced, timing=timing) if progress else None
    screen = Screen(bar, err=taken, resume=request.resume)
    with guard(Stops()) as stops:
        try:
            try:
                result = engine.scan(request, screen)
            except engine.RequestError as exc:
                fatal_lines(exc.lines, ExitCode.USAGE)
            finally:
                if bar is not None:
                    bar.close()
            stops.finishing = True
        except KeyboardInterrupt:
            quit_interrupted(stops, others, journal)
        deliver(result.report, others, stdout_taken=streamed, stops=stops, journal=journal, shown=screen.shown)
        try:
            _close(result, taken, stops.received > 0)
        except KeyboardInterrupt:  # the reports are written: only this command's last words were cut
            quit_interrupted(stops, others)
    return result.report


class Screen:
    """What a person sees while a scan runs, as it runs: with ``--resume``, how many targets were kept; each
        target's verdict line (and its failed rules) the moment it finishes — above the progress ``bar`` when there
        is one, plain lines otherwise (CI logs, pipes), none with --quiet. On standard error with ``err`` (a report
        is on standard output). ``shown`` keeps which targets were printed (their labels, not the targets: a scan keeps
    no list of its targets), for the summary not to repeat them."""

    def __init__(self, bar: ProgressBar | None, *, err: bool, resume: Path | None) -> None:
        from rich.console import Console  # noqa: PLC0415 - rich loads only when printing

        self.bar = bar
        self.resume = resume
        self.shown: list[ShownKey] = []
        stream = sys.stderr if err else sys.stdout  # the stream now: a bar on a terminal redirects sys.stdout
        self._above_bar = bar is not None and (err or (stream.isatty() and sys.stderr.isatty()))
        self._console = Console(file=stream, highlight=False, soft_wrap=True)

    def planned(self, total: int, kept: int = 0) -> None:
        if self.resume is not None and verbosity() > 0:
            kept_text = plural(kept, "finished target")
            typer.echo(printable(f"resumed: kept {kept_text} from {self.resume}, scanning {total - kept}"), err=True)
        if self.bar is not None:
            self.bar.planned(total, kept)

    def finished(self, result: TargetReport) -> None:
        from scanner.render.terminal import shown_key, target_lines  # noqa: PLC0415 - rich loads only when printing

        if self.bar is not None:
            self.bar.finished(result)
        if verbosity() == 0:
            return
        lines = target_lines(result, verbose=verbosity() > 1)
        if self.bar is not None and self._above_bar:
            self.bar.show(lines)
        else:
            for line in lines:
                self._console.print(line)
        self.shown.append(shown_key(result))


def _close(result: engine.ScanResult, stdout_taken: bool, signalled: bool) -> None:
    """The journal's and the store's fate, then how the run ended: exit 4 for a journal cut short or a store that
    failed, 130 when interrupted. Words for a person go to stderr when a report is on standard output
    (``stdout_taken``)."""
    from scanner.cli.history import expiring_in_report, store_failed  # noqa: PLC0415

    soon = expiring_in_report(result.report)
    if soon and verbosity() > 0:
        typer.echo(
            f"tlsgate: warning: {plural(soon, 'certificate')} {'expire' if soon != 1 else 'expires'} within 30 days",
            err=True,
        )
    if result.recorder is not None and result.recorder.failure is not None:
        store_failed(getattr(result.recorder, "name", "--store"), result.recorder.failure)
    if result.journal is not None:
        if result.journal.failure is not None:
            where = result.journal.path or "standard output"
            message = f"cannot write {where}: {result.journal.failure} (the other reports were written)"
            fatal(message, ExitCode.OUTPUT_FAILED)
        if result.journal.path is not None and verbosity() > 0:
            typer.echo(f"report: {result.journal.path} (JSON Lines, written as targets finished)", err=stdout_taken)
    targets = result.report.targets
    if result.interrupted:
        done = sum(1 for t in targets if t.facts.error is None or t.facts.error.error_class != "interrupted")
        typer.echo(
            f"tlsgate: interrupted: {done} of {len(targets)} targets had finished; reports written, "
            "the unfinished targets marked interrupted",
            err=True,
        )
        raise typer.Exit(int(ExitCode.INTERRUPTED))
    if signalled:
        typer.echo("tlsgate: interrupted after the scan had finished: reports written", err=True)
        raise typer.Exit(int(ExitCode.INTERRUPTED))
