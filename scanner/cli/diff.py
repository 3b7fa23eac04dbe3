"""``tlsgate diff``: what changed between two scans, and with --fail-on-regression whether the second is weaker.

The command reads two reports (``_reports``: two report files or journals, or with ``--store URL`` two runs of the
store — by id, or by default the newest run and the newest one before it that covers the same targets), compares
them (``scanner.diff.diff_reports``), renders and exits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, get_args

import typer

from scanner.cli.errors import fatal
from scanner.cli.options import STDOUT, QuietOption, check_output, names_stdout, verbosity
from scanner.exitcodes import ExitCode
from scanner.report import Report

DIFF_EXIT_HELP = """Exit codes:
  0  the diff was made (with --fail-on-regression: nothing weakened)
  1  --fail-on-regression: the second report is weaker than the first (a new
     counted failure, an older protocol version or a weaker suite accepted,
     a trust or host-name verdict lost, client authentication relaxed)
  2  usage error: bad option, or a report is not a readable tlsgate report
  3  --fail-on-regression: nothing weakened, but a target scanned in the
     first could not be scanned in the second
  4  a diff could not be written"""

FORMAT_HELP = (
    "Write the diff: FORMAT is json, markdown or html; PATH a file, or - (also when =PATH is left out) for standard "
    "output, which then carries nothing else. Repeatable, each FORMAT once."
)
MATCH_HELP = (
    "How targets are paired: identity (host, port, SNI, STARTTLS), order (the n-th target of each report), or auto: "
    "identity, except that two reports of one target each compare those two (production against staging)."
)


@dataclass(frozen=True)
class DiffOutput:
    format: str
    path: Path | None  # None: standard output


def _outputs(specs: list[str]) -> list[DiffOutput]:
    """``--format FORMAT[=PATH]`` as the other commands take it, checked before anything is read."""
    from scanner.render.diff import DiffFormat  # noqa: PLC0415

    names = ", ".join(f.value for f in DiffFormat)
    outputs: list[DiffOutput] = []
    for spec in specs:
        name, sep, raw = spec.partition("=")
        fmt = name.strip().lower()
        if fmt not in {f.value for f in DiffFormat}:
            fatal(f"--format {spec!r}: unknown format {name.strip()!r} (one of {names})", ExitCode.USAGE)
        if sep and not raw:
            fatal(f"--format {spec!r}: no path after '=' (use - for standard output)", ExitCode.USAGE)
        if any(o.format == fmt for o in outputs):
            fatal(f"the {fmt} diff is asked for twice", ExitCode.USAGE)
        outputs.append(DiffOutput(fmt, None if not sep or raw == STDOUT else Path(raw)))
    if sum(1 for o in outputs if o.path is None or names_stdout(o.path)) > 1:
        fatal("only one diff can go to standard output", ExitCode.USAGE)
    paths = [o.path.resolve() for o in outputs if o.path is not None]
    if len(set(paths)) < len(paths):
        fatal("two diffs would be written to the same file", ExitCode.USAGE)
    for output in outputs:
        check_output(output.path)
    return outputs


def _reports(sources: list[str]) -> tuple[tuple[str, Report], tuple[str, Report]]:
    """The two report files or journals to compare, each with the name the diff gives it."""
    from scanner.saved import SavedFileError, read_report_or_journal  # noqa: PLC0415

    if len(sources) != 2:
        fatal(f"expected two reports (BEFORE AFTER), got {len(sources)}", ExitCode.USAGE)
    loaded = []
    for source in sources:
        try:
            loaded.append((source, read_report_or_journal(Path(source))))
        except SavedFileError as exc:
            fatal(str(exc), ExitCode.USAGE)
    return loaded[0], loaded[1]


def _runs(url: str, sources: list[str]) -> tuple[tuple[str, Report], tuple[str, Report]]:
    """Two runs of the store: the ids given (BEFORE AFTER), or the newest run and the newest earlier run that
    holds every target of it."""
    from scanner.cli.history import open_store_or_exit  # noqa: PLC0415
    from scanner.store import StoreError  # noqa: PLC0415

    if len(sources) not in (0, 2):
        fatal(f"with --store, give two run ids (BEFORE AFTER) or none, not {' '.join(sources)!r}", ExitCode.USAGE)
    store = open_store_or_exit(url)
    try:
        if sources:
            ids = [int(s) for s in sources]
        else:
            newest = store.runs()
            if not newest:
                fatal(f"store {store.name}: no runs to compare", ExitCode.USAGE)
            covering = [r for r in store.latest_runs_covering(store.labels(newest[0].id), 3) if r.id != newest[0].id]
            if not covering:
                fatal(f"store {store.name}: no earlier run covers the targets of run {newest[0].id}", ExitCode.USAGE)
            ids = [covering[0].id, newest[0].id]
        first, second = (store.report(i) for i in ids)
    except StoreError as exc:
        fatal(str(exc), ExitCode.USAGE)
    finally:
        store.close()
    return (f"run {ids[0]}", first), (f"run {ids[1]}", second)


def diff(
    reports: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="BEFORE AFTER",
            help="Two JSON reports written by scan, cert or evaluate (--format json), or scan journals (--format "
            "jsonl): the earlier (or production) first. With --store: two run ids, or none for the newest run "
            "against the newest earlier run covering the same targets.",
            show_default=False,
        ),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            metavar="URL",
            envvar="TLSGATE_STORE",
            show_envvar=True,
            help="Compare runs of this store (sqlite:///PATH or postgresql://...) instead of report files.",
        ),
    ] = None,
    fail_on_regression: Annotated[
        bool,
        typer.Option(
            "--fail-on-regression",
            help="Exit 1 when AFTER is weaker than BEFORE (see the exit codes), 3 when a target could not be "
            "scanned in AFTER and nothing weakened.",
        ),
    ] = False,
    format_: Annotated[
        list[str] | None,
        typer.Option("--format", metavar="FORMAT[=PATH]", help=FORMAT_HELP, show_default=False),
    ] = None,
    match: Annotated[str, typer.Option("--match", metavar="auto|identity|order", help=MATCH_HELP)] = "auto",
    quiet: QuietOption = False,
) -> None:
    """Show what changed between two scans: findings new, fixed and still failing; protocols, suites, groups,
    certificates, trust, client authentication and session lifetimes; targets added, removed, unreachable.

    Nothing is scanned or judged again. In a pipeline before production:

    \b
      tlsgate diff production.json staging.json --fail-on-regression
    """
    from scanner.diff import MatchMode, diff_exit_code, diff_reports  # noqa: PLC0415
    from scanner.render.diff import DiffFormat, render  # noqa: PLC0415
    from scanner.render.diff.terminal import print_summary  # noqa: PLC0415
    from scanner.render.files import write_atomic_all  # noqa: PLC0415

    modes: tuple[MatchMode, ...] = get_args(MatchMode)
    mode = next((m for m in modes if m == match.strip().lower()), None)
    if mode is None:
        fatal(f"--match {match!r}: one of {', '.join(modes)}", ExitCode.USAGE)
    outputs = _outputs(format_ or [])
    sources = reports or []
    # Report files win over a TLSGATE_STORE in the environment: run ids are numbers, files are not.
    from_store = store is not None and all(s.isdigit() for s in sources)
    (before_name, before), (after_name, after) = _runs(store, sources) if store and from_store else _reports(sources)
    result = diff_reports(before, after, before_source=before_name, after_source=after_name, match=mode)
    try:
        write_atomic_all([(o.path, render(result, DiffFormat(o.format))) for o in outputs])
    except OSError as exc:
        fatal(f"cannot write {exc.filename or 'the diff'}: {exc.strerror or exc}", ExitCode.OUTPUT_FAILED)
    if verbosity() > 0 and not quiet:
        print_summary(result, err=any(o.path is None or names_stdout(o.path) for o in outputs))
    raise typer.Exit(int(diff_exit_code(result, fail_on_regression)))
