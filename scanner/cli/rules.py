"""``tlsgate rules list|validate|show``: the rule packs, listed, checked and described in words."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from scanner.cli.errors import fatal
from scanner.cli.packs import ParamOption, load_packs
from scanner.exitcodes import ExitCode
from scanner.policy.describe import describe_pack
from scanner.policy.pack import PackError, builtin_pack_files, load_pack
from scanner.textsafe import printable, printable_lines
from scanner.yamlfile import exists


def rules_list() -> None:
    """List the built-in rule packs."""
    problems = []
    for file in builtin_pack_files():
        try:
            pack = load_pack(file)
        except PackError as exc:
            problems.append(str(exc))
            continue
        typer.echo(f"{pack.id:24} {pack.version:8} {len(pack.rules):3} rules  {printable(pack.title)}")
    if problems:
        fatal("; ".join(problems), ExitCode.INTERNAL)


VALIDATE_EXIT_HELP = """Exit codes:
  0  every FILE is a valid rule pack
  2  at least one FILE has a problem: each is printed on stderr as
     FILE:LINE:COLUMN: message"""


def _pack_file(ref: str) -> Path:
    """A path as given, or the file of a built-in pack when ``ref`` is an id and no such file exists."""
    path = Path(ref)
    if not exists(path):
        for file in builtin_pack_files():
            if file.stem == ref:
                return file
    return path


def rules_validate(
    files: Annotated[
        list[str],
        typer.Argument(help="Rule pack files (or built-in pack ids) to check.", metavar="FILE...", show_default=False),
    ],
) -> None:
    """Check rule packs without using them: every problem of every FILE, with line and column.

    Prints "OK FILE (ID, N rules)" for each valid pack. A pack with any problem is never used by scan, cert or
    evaluate.
    """
    invalid = problems = 0
    for ref in files:
        try:
            pack = load_pack(_pack_file(ref))
        except PackError as exc:
            invalid += 1
            problems += len(exc.problems)
            for problem in exc.problems:
                typer.echo(printable(problem.as_line()), err=True)
            continue
        typer.echo(f"OK {printable(ref)} ({printable(pack.id)}, {len(pack.rules)} rule{'s' * (len(pack.rules) != 1)})")
    if invalid:
        s = "s" * (problems != 1)
        fatal(f"{problems} problem{s} in {invalid} of {len(files)} pack file{'s' * (len(files) != 1)}", ExitCode.USAGE)


def rules_show(
    ref: Annotated[str, typer.Argument(help="Built-in pack id or a pack file.", metavar="ID|PATH", show_default=False)],
    param: ParamOption = None,
) -> None:
    """Print a rule pack in words: its source, parameters, and what each rule demands and why.

    With --param, the rules are shown with this run's parameter values.
    """
    (pack,) = load_packs([ref], param or [])
    typer.echo(printable_lines("\n".join(describe_pack(pack, _width()))))


def _width() -> int:
    return max(60, min(100, shutil.get_terminal_size((88, 24)).columns))
