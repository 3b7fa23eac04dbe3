"""What a scan shows and keeps while it runs: a progress bar on a terminal, and the JSON Lines journal.

Both hear the pipeline's ``Listener`` calls: ``planned(total)`` once, then ``finished(target)`` as each target
is done. Nothing here decides anything; the report at the end is still built from every target by the pipeline.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from scanner.render.files import Kind, destination
from scanner.render.jsonl import line
from scanner.report import TargetReport

if TYPE_CHECKING:
    from scanner.pipeline import Listener


class Journal:
    """JSON Lines, one target a line, written and flushed to disk the moment the target is finished, so a run
    that is killed keeps everything it finished. ``path`` None writes to standard output. With ``append`` the
    file is continued (``--resume`` from this same file) and ``skip`` names the targets already in it."""

    def __init__(self, path: Path | None, *, append: bool = False, skip: Iterable[str] = ()) -> None:
        self.path = path
        self._skip = set(skip)
        self._own = path is not None
        self._handle: IO[str] = sys.stdout
        if path is not None:
            place = destination(path)  # /dev/stdout is written to, not reopened (that would truncate a >> file)
            if place.fd is not None:
                self._handle = os.fdopen(os.dup(place.fd), "w", encoding="utf-8", newline="\n")
            else:
                append = append and place.kind is Kind.file
                if append:
                    _drop_cut_line(path)
                self._handle = path.open("a" if append else "w", encoding="utf-8", newline="\n")
        # fsync only what can be: a pipe, a FIFO or a device refuses it
        self._sync = self._own and stat.S_ISREG(os.fstat(self._handle.fileno()).st_mode)
        self.written = 0
        self.failure: str | None = None  # why writing stopped (disk full ...); the scan itself goes on

    def planned(self, total: int) -> None:
        pass

    def finished(self, result: TargetReport) -> None:
        if result.target in self._skip or self.failure is not None:
            return
        try:
            self._handle.write(line(result))
            self._handle.flush()
            if self._sync:
                os.fsync(self._handle.fileno())
        except OSError as exc:
            self.failure = exc.strerror or str(exc)
            return
        self.written += 1

    def close(self) -> None:
        if self._own:
            self._handle.close()


def _drop_cut_line(path: Path) -> None:
    """Cut a last line that was never finished (its writer was killed mid-line) before appending after it."""
    try:
        with path.open("rb+") as handle:
            data = handle.read()
            if data and not data.endswith(b"\n"):
                handle.truncate(data.rfind(b"\n") + 1)
    except FileNotFoundError:
        pass


class ProgressBar:
    """A rich progress bar on standard error: targets done of all, failures so far, elapsed and remaining time.
    Only for a terminal: the caller decides (CI logs and pipes get nothing)."""

    def __init__(self, *, force: bool = False) -> None:
        from rich.console import Console  # noqa: PLC0415 - rich loads only when a bar is shown
        from rich.progress import (  # noqa: PLC0415
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("scanning"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[tally]}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=Console(stderr=True, force_terminal=True if force else None),
            transient=True,
        )
        self._task: Any = None
        self._tally = {"pass": 0, "fail": 0, "error": 0}

    def planned(self, total: int) -> None:
        self._progress.start()
        self._task = self._progress.add_task("scan", total=total, tally=self._text())

    def finished(self, result: TargetReport) -> None:
        self._tally[result.verdict] = self._tally.get(result.verdict, 0) + 1
        if self._task is not None:
            self._progress.update(self._task, advance=1, tally=self._text())

    def _text(self) -> str:
        t = self._tally
        return f"pass {t['pass']} · fail {t['fail']} · not checked {t['error']}"

    def close(self) -> None:
        self._progress.stop()


class Fanout:
    """Several listeners as one, heard in order; whoever made a listener closes it."""

    def __init__(self, listeners: Iterable[Listener]) -> None:
        self.listeners = list(listeners)

    def planned(self, total: int) -> None:
        for listener in self.listeners:
            listener.planned(total)

    def finished(self, result: TargetReport) -> None:
        for listener in self.listeners:
            listener.finished(result)


def show_progress(choice: bool | None, quiet: bool) -> bool:
    """The bar's default: on a terminal (standard error), not when quiet, not in CI (``CI`` set), not with
    ``TERM=dumb``; ``--progress``/``--no-progress`` decide otherwise."""
    if choice is not None:
        return choice
    if quiet or os.environ.get("CI") or os.environ.get("TERM") == "dumb":
        return False
    return sys.stderr.isatty()
