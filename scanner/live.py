"""What a scan shows and keeps while it runs: a progress bar on a terminal (with its time left, ``TimeLeft``),
and the JSON Lines journal.

Both hear the pipeline's ``Listener`` calls: ``planned(total, kept)`` once (``kept``: targets --resume kept, heard
first), then ``finished(target)`` as each target is done. Nothing here decides anything, and nothing here keeps
the targets: the pipeline keeps them, in a spool (scanner/targetspool.py), for the report at the end.
"""

from __future__ import annotations

import math
import os
import stat
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from scanner.render.files import Kind, destination
from scanner.render.jsonl import line
from scanner.report import TargetReport

if TYPE_CHECKING:
    from rich.text import Text

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

    def planned(self, total: int, kept: int = 0) -> None:
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


class TimeLeft:
    """How long a scan has left, from what it has seen: for the progress bar, never for a decision.

    Rich's own estimate divides the targets left by the recent rate of finishing. Near the end of a run that
    rate says nothing: the last target in flight is often the one waiting on a timeout, and the estimate sits
    at "0:00:01" for as long as it waits. This one models the run as it is scheduled instead: ``concurrency``
    targets in flight (each started the moment another finished), the rest waiting their turn.

    - A finished target's duration is known (its facts' start and end), so is the mean duration of the run's
      targets; targets kept by ``--resume`` are not timed (they were not scanned now).
    - A target in flight for ``s`` seconds is expected to need ``mean - s`` more. Once past the mean it is taken
      to be waiting on one timeout: ``mean + timeout - s``. Past that its end is unknown, unless the target has
      a time limit (``--target-time``): it is reported by then, so ``limit - s`` is a bound, and it caps every
      case.
    - Left = the longest of the targets in flight, or the work of all of them together with ``mean`` for each
      waiting target spread over the ``concurrency`` slots, whichever is longer; never beyond the run's time
      budget (``--time-budget``).
    - None ("unknown", shown as a dash) before the first target has finished, and while a target in flight is
      past every expectation and no limit bounds it: an honest dash rather than a figure that sits still.

    Times are ``time.monotonic()`` seconds, passed in, so the model is a plain calculation.
    """

    def __init__(
        self,
        concurrency: int,
        timeout: float,
        target_time: float | None = None,
        time_budget: float | None = None,
    ) -> None:
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self.target_time = target_time
        self.time_budget = time_budget
        self._began: float | None = None
        self._kept = 0  # finished targets still to hear that --resume kept
        self._flight: list[float] = []  # when each target in flight started
        self._waiting = 0
        self._timed = 0
        self._spent = 0.0  # seconds, all timed targets together

    def planned(self, total: int, kept: int, now: float) -> None:
        self._began = now
        self._kept = kept
        scanning = max(0, total - kept)
        self._flight = [now] * min(self.concurrency, scanning)
        self._waiting = scanning - len(self._flight)

    def finished(self, result: TargetReport, now: float) -> None:
        if self._kept > 0:
            self._kept -= 1
            return
        facts = result.facts
        took = max(0.0, (facts.finished_at - facts.started_at).total_seconds())
        self._timed += 1
        self._spent += took
        if self._flight:  # the target in flight whose start is nearest to when this one started
            nearest = min(range(len(self._flight)), key=lambda i: abs(self._flight[i] - (now - took)))
            del self._flight[nearest]
        if self._waiting > 0:
            self._waiting -= 1
            self._flight.append(now)

    def left(self, now: float) -> float | None:
        """Seconds the run has left, or None when that cannot be told (see the class)."""
        if not self._flight and not self._waiting:
            return 0.0
        if not self._timed:
            return None
        mean = self._spent / self._timed
        each: list[float] = []
        for started in list(self._flight):  # a copy: the bar asks from its own thread while targets finish
            one = self._in_flight(now - started, mean)
            if one is None:
                return None
            each.append(one)
        left = max(max(each, default=0.0), (sum(each) + self._waiting * mean) / self.concurrency)
        if self.time_budget is not None and self._began is not None:
            left = min(left, max(0.0, self.time_budget - (now - self._began)))
        return left

    def _in_flight(self, running: float, mean: float) -> float | None:
        """What one target in flight for ``running`` seconds is expected to need still."""
        expected: float | None
        if running <= mean:
            expected = mean - running
        elif running <= mean + self.timeout:
            expected = mean + self.timeout - running
        else:
            expected = None
        if self.target_time is None:
            return expected
        bound = max(0.0, self.target_time - running)
        return bound if expected is None else min(expected, bound)


def clock_text(seconds: float | None) -> str:
    """``0:01:05`` (rounded up: a second left is not none), or a dash when unknown."""
    if seconds is None:
        return "—"
    whole = math.ceil(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class ProgressBar:
    """A rich progress bar on standard error: targets done of all, failures so far, elapsed time and the time
    left as ``TimeLeft`` estimates it (without one, none is shown). Only for a terminal: the caller decides (CI
    logs and pipes get nothing). ``show`` prints lines above the bar while it runs."""

    def __init__(self, *, force: bool = False, timing: TimeLeft | None = None) -> None:
        from rich.console import Console  # noqa: PLC0415 - rich loads only when a bar is shown
        from rich.progress import (  # noqa: PLC0415
            BarColumn,
            MofNCompleteColumn,
            Progress,
            ProgressColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.text import Text  # noqa: PLC0415

        class LeftColumn(ProgressColumn):
            def render(self, task: Any) -> Text:
                seconds = timing.left(time.monotonic()) if timing is not None else None
                return Text(f"left {clock_text(seconds)}", style="progress.remaining")

        columns = [
            SpinnerColumn(),
            TextColumn("scanning"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[tally]}"),
            TimeElapsedColumn(),
        ]
        if timing is not None:
            columns.append(LeftColumn())
        self._timing = timing
        self.console = Console(stderr=True, force_terminal=True if force else None, highlight=False)
        self._progress = Progress(*columns, console=self.console, transient=True)
        self._task: Any = None
        self._tally = {"pass": 0, "fail": 0, "error": 0}

    def planned(self, total: int, kept: int = 0) -> None:
        if self._timing is not None:
            self._timing.planned(total, kept, time.monotonic())
        self._progress.start()
        self._task = self._progress.add_task("scan", total=total, tally=self._text())

    def finished(self, result: TargetReport) -> None:
        if self._timing is not None:
            self._timing.finished(result, time.monotonic())
        self._tally[result.verdict] = self._tally.get(result.verdict, 0) + 1
        if self._task is not None:
            self._progress.update(self._task, advance=1, tally=self._text())

    def show(self, lines: Iterable[Text]) -> None:
        """Print above the bar (the bar redraws below them)."""
        for one in lines:
            self.console.print(one, soft_wrap=True)

    def _text(self) -> str:
        t = self._tally
        return f"pass {t['pass']} · fail {t['fail']} · not checked {t['error']}"

    def close(self) -> None:
        self._progress.stop()


class Fanout:
    """Several listeners as one, heard in order; whoever made a listener closes it."""

    def __init__(self, listeners: Iterable[Listener]) -> None:
        self.listeners = list(listeners)

    def planned(self, total: int, kept: int = 0) -> None:
        for listener in self.listeners:
            listener.planned(total, kept)

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
