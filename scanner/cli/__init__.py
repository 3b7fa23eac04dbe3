"""The ``tlsgate`` command line (console script ``scanner.cli:main``, also ``python -m scanner.cli``).

Kept light: the command line's modules take most of a second to import, and Ctrl-C during that time must end
tlsgate with one line, not a traceback from whichever import it landed in.
"""

from __future__ import annotations

import os
import signal
from types import FrameType
from typing import Any


def _interrupted_while_starting(signum: int, frame: FrameType | None) -> None:
    # Nothing has started that needs cleaning up; os._exit, because an import that catches KeyboardInterrupt
    # (a bare except around an optional import) would otherwise swallow it.
    os.write(2, b"tlsgate: interrupted\n")
    os._exit(130)  # ExitCode.INTERRUPTED, not imported: scanner.exitcodes loads the report model


def main() -> None:
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when ignored (started in background)
        signal.signal(signal.SIGINT, _interrupted_while_starting)
    from scanner.cli.app import main as run  # noqa: PLC0415 - imported once Ctrl-C is handled

    run()  # which hands Ctrl-C back to KeyboardInterrupt, inside its own error handling


def __getattr__(name: str) -> Any:
    if name == "app":  # the typer application, imported when asked for (scanner.cli.app.app)
        from scanner.cli.app import app  # noqa: PLC0415

        return app
    raise AttributeError(name)
