"""The command line: which commands there are, under which names, and the last word on errors and exit codes.

Each command (scanner/cli/<family>.py) parses its options, builds objects, calls one function of the engine,
renders and exits. Only the command line prints or exits.
"""

from __future__ import annotations

import signal
import sys
import warnings
from typing import Annotated

import typer

from scanner import __version__
from scanner.cli import cert_evaluate, demo, diff, history, report, rules, scan, serve, watch
from scanner.exitcodes import EXIT_CODE_HELP, ExitCode
from scanner.textsafe import printable

EXIT_EPILOG = "\b\n" + EXIT_CODE_HELP

app = typer.Typer(
    name="tlsgate",
    help="Scan TLS endpoints and judge them against declarative rule packs.\n\n\b\n" + EXIT_CODE_HELP,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
rules_app = typer.Typer(help="Inspect the rule packs.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(rules_app, name="rules")
report_app = typer.Typer(help="Work with saved reports.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(report_app, name="report")
baseline_app = typer.Typer(
    help="Baselines: accept a run's failures, so that only new ones fail the next runs.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(baseline_app, name="baseline")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tlsgate {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Scan TLS endpoints and judge them against declarative rule packs."""


app.command(epilog=EXIT_EPILOG)(scan.scan)
app.command(epilog=EXIT_EPILOG)(cert_evaluate.cert)
app.command(epilog=EXIT_EPILOG)(cert_evaluate.evaluate)
rules_app.command("list")(rules.rules_list)
rules_app.command("validate", epilog="\b\n" + rules.VALIDATE_EXIT_HELP)(rules.rules_validate)
rules_app.command("show")(rules.rules_show)
report_app.command("render", epilog="\b\n" + report.RENDER_EXIT_HELP)(report.report_render)
baseline_app.command("create", epilog="\b\n" + report.BASELINE_EXIT_HELP)(report.baseline_create)
app.command(epilog="\b\n" + diff.DIFF_EXIT_HELP)(diff.diff)
app.command()(demo.demo)
app.command(epilog="\b\n" + serve.SERVE_EXIT_HELP)(serve.serve)
app.command(epilog="\b\n" + watch.WATCH_EXIT_HELP)(watch.watch)
app.command(epilog="\b\n" + history.HISTORY_EXIT_HELP)(history.history)
app.command(epilog="\b\n" + history.EXPIRING_EXIT_HELP)(history.expiring)


def main() -> None:
    # sslyze's bundled trust stores trip cryptography's warnings about legacy serial numbers; they are
    # not about the scanned endpoint and would only confuse a terminal or CI log.
    warnings.filterwarnings("ignore", module=r"sslyze\..*")
    warnings.filterwarnings("ignore", message=r".*serial number.*")
    try:
        # Start-up had its own Ctrl-C handler (scanner/cli/__init__.py); from here it is KeyboardInterrupt.
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        # standalone mode: click turns usage errors into exit code 2 with a one-line message. The name is
        # tlsgate however started (python -m scanner.cli too): usage lines and shell completion use it.
        app(standalone_mode=True, prog_name="tlsgate")
    except SystemExit as exc:
        # The command is over (reports written, exit code decided): a signal now must not become a traceback
        # from the interpreter's shutdown.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)
        if _typer_caught_ctrl_c(exc):
            typer.echo("tlsgate: interrupted", err=True)
        raise
    except KeyboardInterrupt:
        typer.echo("tlsgate: interrupted", err=True)
        sys.exit(int(ExitCode.INTERRUPTED))
    except Exception as exc:  # the last line of defence: never a traceback for a user
        typer.echo(f"tlsgate: internal error: {type(exc).__name__}: {printable(str(exc))}", err=True)
        sys.exit(int(ExitCode.INTERNAL))


def _typer_caught_ctrl_c(exc: SystemExit) -> bool:
    """Typer turns a KeyboardInterrupt that leaves a command into a silent exit 130 (``Exit(130) from`` it): a
    command interrupted outside the reports' own signal guard still gets its one line."""
    cause = getattr(exc.__context__, "__cause__", None)
    return exc.code == ExitCode.INTERRUPTED and isinstance(cause, KeyboardInterrupt)
