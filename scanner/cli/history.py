"""``tlsgate history``, ``history prune`` and ``tlsgate expiring``: what the store remembers, with no network; and
the ``--store`` of the commands that judge (opened before anything is scanned).

Exit codes: 0 done; 2 a store that cannot be opened (or is of a newer schema), a bad option; for ``expiring``, 1
when a certificate expires within the window (a pipeline can gate on it); for ``history site``, 2 a directory that
holds other files, 4 a site that could not be written.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from scanner.cli.errors import fatal
from scanner.exitcodes import ExitCode
from scanner.textsafe import printable

if TYPE_CHECKING:
    from scanner.report import Report
    from scanner.store import Expiry, RunInfo, Store, TimelineEntry
    from scanner.store.documents import HistoryDocument

HISTORY_EXIT_HELP = """Exit codes:
  0  done
  2  the store cannot be opened or is newer than this tlsgate; bad option; site: DIR holds other files
  4  site: the site could not be written"""
EXPIRING_EXIT_HELP = """Exit codes:
  0  no certificate expires within the window
  1  at least one certificate expires within the window (or has expired)
  2  the store cannot be opened or is newer than this tlsgate; bad option"""

_SPAN = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class HistoryFormat(StrEnum):
    terminal = "terminal"
    json = "json"
    markdown = "markdown"
    html = "html"


def span(option: str, text: str) -> timedelta:
    """``30d``, ``12h``, ``2w`` ...: a usage error otherwise."""
    match = _SPAN.match(text.strip().lower())
    if match is None or int(match.group(1)) == 0:
        fatal(f"{option} {text!r}: give a span like 30d, 12h, 2w", ExitCode.USAGE)
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def since_time(text: str | None) -> datetime | None:
    """``--since``: a span back from now (7d) or an ISO date/time (UTC when no zone is given)."""
    if text is None:
        return None
    if _SPAN.match(text.strip().lower()):
        return datetime.now(UTC) - span("--since", text)
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        fatal(f"--since {text!r}: give a span (7d) or a date (2026-12-01)", ExitCode.USAGE)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def open_store_or_exit(url: str) -> Store:
    """The store, or exit 2 with its one line: before anything is scanned."""
    from scanner.store import StoreError, open_store  # noqa: PLC0415 - SQLAlchemy loads only with a store

    try:
        return open_store(url)
    except StoreError as exc:
        fatal(str(exc), ExitCode.USAGE)


def record_report(url: str | None, command: str, report: Report) -> None:
    """``evaluate``/``cert`` with ``--store``: the judged report recorded whole (after its reports were written);
    a failure is a warning and exit 4, like a report that could not be written."""
    if url is None:
        return
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415

    store = open_store_or_exit(url)
    try:
        store.record_report(command, report)
    except SQLAlchemyError as exc:
        store_failed(store.name, " ".join(str(exc).split("\n", maxsplit=1)[0].split()))
    finally:
        store.close()


def store_failed(name: str, reason: str) -> None:
    fatal(f"cannot record the run in store {name}: {reason} (the reports were written)", ExitCode.OUTPUT_FAILED)


StoreArgument = Annotated[
    str | None,
    typer.Option(
        "--store",
        metavar="URL",
        envvar="TLSGATE_STORE",
        show_envvar=True,
        help="The store: sqlite:///PATH or postgresql://USER@HOST/DB.",
    ),
]
FormatArgument = Annotated[
    HistoryFormat, typer.Option("--format", help="terminal (default), json, markdown or html, on standard output.")
]


def _need(url: str | None) -> Store:
    if not url:
        fatal("no store: give --store URL or set TLSGATE_STORE", ExitCode.USAGE)
    return open_store_or_exit(url)


# --- history ------------------------------------------------------------------------------------------------


def history(
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            help="Targets (as scanned, or host, or host:port); every target when none.", metavar="[TARGET]..."
        ),
    ] = None,
    store: StoreArgument = None,
    since: Annotated[
        str | None, typer.Option("--since", metavar="WHEN", help="Only runs since then: a span (7d) or a date.")
    ] = None,
    format_: FormatArgument = HistoryFormat.terminal,
    keep: Annotated[
        str | None,
        typer.Option("--keep", metavar="SPAN", help="With prune: keep runs started within this span (180d)."),
    ] = None,
    keep_runs: Annotated[
        int | None, typer.Option("--keep-runs", min=1, metavar="N", help="With prune: keep only the newest N runs.")
    ] = None,
) -> None:
    """The store's runs, and per target a timeline: verdict, grade, certificate, failed rules.

    'tlsgate history prune --keep 180d' (and/or --keep-runs N) removes older runs, and the facts and findings no
    remaining run refers to. 'tlsgate history site DIR' writes the static status site (docs/deploy.md).
    """
    if targets and targets[0] == "prune":
        if targets[1:]:
            fatal("history prune takes no targets", ExitCode.USAGE)
        prune(store, keep, keep_runs)
        return
    if keep is not None or keep_runs is not None:
        fatal("--keep and --keep-runs go with 'history prune'", ExitCode.USAGE)
    if targets and targets[0] == "site":
        if len(targets) != 2 or since is not None or format_ is not HistoryFormat.terminal:
            fatal("history site takes one directory (and no --since, --format): history site DIR", ExitCode.USAGE)
        site(store, Path(targets[1]))
        return
    opened = _need(store)
    at = since_time(since)
    try:
        runs = opened.runs(at)
        timeline = opened.timeline(targets or [], at)
    finally:
        opened.close()
    if targets and not timeline:
        fatal(f"no run of {', '.join(targets)} in the store", ExitCode.USAGE)
    typer.echo(render_history(runs, timeline, format_), nl=False)


def history_document(runs: Sequence[RunInfo], timeline: Sequence[TimelineEntry]) -> HistoryDocument:
    from scanner.store.documents import HistoryDocument, HistoryRun, TargetTimeline, TimelinePoint  # noqa: PLC0415

    by_target: dict[str, list[TimelinePoint]] = {}
    for e in timeline:  # the store's entries, field for field, less what the document says around them
        fields = {k: v for k, v in dataclasses.asdict(e).items() if k not in ("run_id", "target")}
        by_target.setdefault(e.target, []).append(TimelinePoint.model_validate(fields | {"run": e.run_id}))
    return HistoryDocument(
        runs=[HistoryRun.model_validate(dataclasses.asdict(r)) for r in runs],
        targets=[TargetTimeline(target=name, timeline=points) for name, points in by_target.items()],
    )


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


def _rows(
    runs: Sequence[RunInfo], timeline: Sequence[TimelineEntry]
) -> tuple[list[list[str]], dict[str, list[list[str]]]]:
    run_rows = [[str(r.id), _when(r.started), _when(r.finished), r.status, r.command, str(r.targets)] for r in runs]
    per: dict[str, list[list[str]]] = {}
    for e in timeline:
        per.setdefault(e.target, []).append(
            [
                str(e.run_id),
                _when(e.at),
                e.verdict + (f" ({e.error_class})" if e.error_class else ""),
                e.grade or "-",
                (e.certificate or "-")[:16],
                e.issuer or "-",
                _when(e.not_after)[:10],
                ", ".join(e.failed_rules) or "-",
            ]
        )
    return run_rows, per


RUN_HEADER = ["run", "started", "finished", "status", "command", "targets"]
TIMELINE_HEADER = ["run", "time", "verdict", "grade", "certificate", "issuer", "expires", "failed rules"]


def render_history(runs: Sequence[RunInfo], timeline: Sequence[TimelineEntry], form: HistoryFormat) -> str:
    if form is HistoryFormat.json:
        return history_document(runs, timeline).model_dump_json(indent=2) + "\n"
    run_rows, per = _rows(runs, timeline)
    if form is HistoryFormat.markdown:
        parts = ["# tlsgate history\n", "## Runs\n", _markdown(RUN_HEADER, run_rows)]
        for name, rows in per.items():
            parts += [f"## {_md_cell(name)}\n", _markdown(TIMELINE_HEADER, rows)]
        return "\n".join(parts)
    if form is HistoryFormat.html:
        body = ["<h1>tlsgate history</h1>", "<h2>Runs</h2>", _html(RUN_HEADER, run_rows)]
        for name, rows in per.items():
            body += [f"<h2>{escape(name)}</h2>", _html(TIMELINE_HEADER, rows)]
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>tlsgate history</title></head>'
            "<body>\n" + "\n".join(body) + "\n</body></html>\n"
        )
    lines = ["runs:", *_plain(RUN_HEADER, run_rows)]
    for name, rows in per.items():
        lines += ["", f"{printable(name)}:", *_plain(TIMELINE_HEADER, rows)]
    return "\n".join(lines) + "\n"


def _plain(header: list[str], rows: list[list[str]]) -> list[str]:
    table = [header, *[[printable(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table]


def _md_cell(text: str) -> str:
    return printable(text).replace("|", "\\|").replace("<", "&lt;")


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def _html(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# --- history prune --------------------------------------------------------------------------------------------


def prune(store: str | None, keep: str | None, keep_runs: int | None) -> None:
    """Remove old runs, and the facts and findings no remaining run refers to."""
    if keep is None and keep_runs is None:
        fatal("say what to keep: --keep SPAN and/or --keep-runs N", ExitCode.USAGE)
    window = span("--keep", keep) if keep is not None else None
    opened = _need(store)
    try:
        done = opened.prune(window, keep_runs)
    finally:
        opened.close()
    typer.echo(f"pruned {done.runs} runs, {done.facts} facts documents, {done.findings} findings documents")


# --- history site ---------------------------------------------------------------------------------------------


def site(store: str | None, directory: Path) -> None:
    """The static status site of the store's targets, written to ``directory`` as a whole (scanner/site.py)."""
    from scanner.site import NotASite, SiteError, write_site  # noqa: PLC0415 - SQLAlchemy loads only with a store

    opened = _need(store)
    try:
        write_site(opened, directory)
    except NotASite as exc:
        fatal(str(exc), ExitCode.USAGE)
    except SiteError as exc:
        fatal(str(exc), ExitCode.OUTPUT_FAILED)
    finally:
        opened.close()
    typer.echo(f"site written to {directory}")


# --- expiring --------------------------------------------------------------------------------------------------


def expiring(
    store: StoreArgument = None,
    within: Annotated[str, typer.Option("--within", metavar="SPAN", help="The window: 30d, 2w, 12h.")] = "30d",
    format_: FormatArgument = HistoryFormat.terminal,
) -> None:
    """Certificates (leaf and chain) of each target's latest run that expire within the window, soonest first;
    from the store, with no network."""
    window = span("--within", within)
    opened = _need(store)
    try:
        found = opened.expiring(window)
    finally:
        opened.close()
    typer.echo(render_expiring(found, format_, window), nl=False)
    raise typer.Exit(int(ExitCode.POLICY_FAILED) if found else 0)


EXPIRY_HEADER = ["expires", "days", "target", "certificate", "subject", "issuer"]


def render_expiring(found: Sequence[Expiry], form: HistoryFormat, window: timedelta) -> str:
    now = datetime.now(UTC)
    if form is HistoryFormat.json:
        from scanner.store.documents import ExpiringCertificate, ExpiringDocument  # noqa: PLC0415

        items = [
            ExpiringCertificate(
                target=e.target,
                run=e.run_id,
                leaf=e.position == 0,
                sha256=e.sha256,
                subject=e.subject,
                issuer=e.issuer,
                not_after=e.not_after,
                days_remaining=round((e.not_after - now).total_seconds() / 86400, 2),
            )
            for e in found
        ]
        document = ExpiringDocument(within_days=window.total_seconds() / 86400, certificates=items)
        return document.model_dump_json(indent=2) + "\n"
    rows = [
        [
            _when(e.not_after),
            f"{(e.not_after - now).total_seconds() / 86400:.1f}",
            e.target,
            ("leaf " if e.position == 0 else "chain ") + e.sha256[:16],
            e.subject,
            e.issuer,
        ]
        for e in found
    ]
    if form is HistoryFormat.markdown:
        return "# Certificates expiring\n\n" + _markdown(EXPIRY_HEADER, rows)
    if form is HistoryFormat.html:
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>tlsgate expiring</title></head><body>'
            f"<h1>Certificates expiring</h1>{_html(EXPIRY_HEADER, rows)}</body></html>\n"
        )
    if not rows:
        return "no certificate expires within the window\n"
    return "\n".join(_plain(EXPIRY_HEADER, rows)) + "\n"


def expiring_in_report(report: Report, within: timedelta = timedelta(days=30)) -> int:
    """Distinct certificates (leaf and chain) of the report's targets that expire within ``within`` of its end (not
    those already expired: their validity rule fails already)."""
    limit = report.finished_at + within
    seen = set()
    for target in report.targets:
        for deployment in target.facts.deployments():
            for cert in deployment.certificate.chain or [c for c in [deployment.certificate.leaf] if c is not None]:
                if report.finished_at < cert.not_after <= limit:
                    seen.add(cert.sha256)
    return len(seen)
