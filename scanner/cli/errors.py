"""The one way a command fails: a message on stderr (``tlsgate: error: ...``) and an exit code."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

import typer

from scanner.exitcodes import ExitCode


def fatal(message: str, code: ExitCode) -> NoReturn:
    typer.echo(f"tlsgate: error: {message}", err=True)
    raise typer.Exit(int(code))


def fatal_lines(lines: Sequence[str], code: ExitCode) -> NoReturn:
    """Every problem on its own line, the exit code after the last."""
    for line in lines[:-1]:
        typer.echo(f"tlsgate: error: {line}", err=True)
    fatal(lines[-1], code)
