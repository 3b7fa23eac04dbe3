"""``tlsgate cert`` and ``tlsgate evaluate``: judge facts that need no network (certificate files, saved facts).

Neither loads the probe stage: evaluate's tests check that nothing here opens a connection.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from scanner.boundedfile import Unreadable, read_limited
from scanner.cli.deliver import deliver
from scanner.cli.errors import fatal, fatal_lines
from scanner.cli.history import record_report
from scanner.cli.options import (
    PinOption,
    ReportOptions,
    StoreOption,
    VerdictOptions,
    option_groups,
    saved_files_argument,
)
from scanner.cli.packs import DEFAULT_PACKS, DEFAULT_PACKS_HELP, ParamOption, load_packs, pack_option
from scanner.engine import RequestError, judge_certificate_files, judge_saved_facts
from scanner.exitcodes import ExitCode


@option_groups
def cert(
    *,
    files: Annotated[
        list[Path],
        typer.Argument(help="Certificate files: PEM (leaf first, then its chain), DER or PKCS#12.", metavar="FILE..."),
    ],
    pack: Annotated[
        list[str] | None, pack_option(f"Pack(s) with certificate rules; repeatable. {DEFAULT_PACKS_HELP}")
    ] = None,
    reports: ReportOptions,
    param: ParamOption = None,
    password_env: Annotated[
        str | None,
        typer.Option("--password-env", metavar="VAR", help="Environment variable with the PKCS#12 password."),
    ] = None,
    password_file: Annotated[
        Path | None, typer.Option("--password-file", metavar="FILE", help="File holding the PKCS#12 password.")
    ] = None,
    pin: PinOption = None,
    store: StoreOption = None,
    verdict: VerdictOptions,
) -> None:
    """Judge certificate FILEs with the certificate rules of packs, before they are ever deployed.

    Rules on other facts (protocols, sessions ...) are not_applicable to a file. A FILE that is missing or cannot
    be read is a usage error (2); a readable file that holds no certificate is that file's error (3).
    """
    packs = load_packs(pack or DEFAULT_PACKS, param or [])
    outputs = reports.outputs()
    gate = verdict.gate()
    try:
        report = judge_certificate_files(files, _password(password_env, password_file), packs, gate, tuple(pin or ()))
    except RequestError as exc:
        fatal_lines(exc.lines, ExitCode.USAGE)
    deliver(report, outputs)
    record_report(store, "cert", report)
    raise typer.Exit(report.exit_code)


@option_groups
def evaluate(
    *,
    files: Annotated[
        list[Path],
        saved_files_argument(
            "A JSON report (scan, cert or evaluate --json), a scan's JSON Lines (--format jsonl), or facts JSON.",
            "FILE...",
        ),
    ],
    pack: Annotated[
        list[str] | None, pack_option(f"Built-in pack id or a pack file; repeatable. {DEFAULT_PACKS_HELP}")
    ] = None,
    reports: ReportOptions,
    param: ParamOption = None,
    store: StoreOption = None,
    verdict: VerdictOptions,
) -> None:
    """Re-judge saved facts against rule packs, with no network access at all.

    The facts are taken as they were saved (a target that could not be scanned stays an error); only the
    judgement is new. Exit codes as for scan; a FILE that cannot be read or is neither a report nor facts is a
    usage error (2).
    """
    packs = load_packs(pack or DEFAULT_PACKS, param or [])
    outputs = reports.outputs()
    gate = verdict.gate()
    try:
        report = judge_saved_facts(files, packs, gate)
    except RequestError as exc:
        fatal_lines(exc.lines, ExitCode.USAGE)
    deliver(report, outputs)
    record_report(store, "evaluate", report)
    raise typer.Exit(report.exit_code)


def _password(env: str | None, file: Path | None) -> bytes | None:
    if env and file:
        fatal("--password-env and --password-file exclude each other", ExitCode.USAGE)
    if env:
        value = os.environ.get(env)
        if value is None:
            fatal(f"environment variable {env} is not set", ExitCode.USAGE)
        return value.encode()
    if file:
        try:  # the first line is the password; an editor's final newline is not part of it
            return read_limited(file, 1 << 20).split(b"\n", 1)[0].removesuffix(b"\r")
        except Unreadable as exc:
            fatal(f"cannot read password file {file}: {'it is ' if exc.too_large else ''}{exc.reason}", ExitCode.USAGE)
    return None
