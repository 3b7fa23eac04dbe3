"""The one way a command fails: a message on stderr (``tlsgate: error: ...``) and an exit code. Messages quote
files and servers, so they are shown ``printable``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

import typer

from scanner.exitcodes import ExitCode
from scanner.textsafe import printable


def fatal(message: str, code: ExitCode) -> NoReturn:
    typer.echo(f"tlsgate: error: {printable(message)}", err=True)
    raise typer.Exit(int(code))


def fatal_lines(lines: Sequence[str], code: ExitCode) -> NoReturn:
    """Every problem on its own line, the exit code after the last."""
    for line in lines[:-1]:
        typer.echo(f"tlsgate: error: {printable(line)}", err=True)
    fatal(lines[-1], code)
