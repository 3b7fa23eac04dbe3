"""SIGINT and SIGTERM (Ctrl-C; systemd and CI runners cancelling a job) at any moment of a command that writes
reports: the reports are written whole, or not at all, and the last line says which."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOPS = (signal.SIGINT, signal.SIGTERM)


class Stops:
    """What SIGINT and SIGTERM do while installed (``guard``):

    - the first, while the work runs, stops it: KeyboardInterrupt where the main thread is (a scan then keeps the
      targets that finished);
    - the first once the reports are being finished (``finishing``) waits for them, and one line says so;
    - the next quits without them (KeyboardInterrupt again), except during ``committing``, the renames that put
      the reports in place, which no signal cuts: it then takes effect right after them, reports written.
    """

    def __init__(self, *, finishing: bool = False) -> None:
        self.received = 0
        self.finishing = finishing
        self.committed = False  # every report is in place
        self._waiting = False
        self._holding = False
        self._pending = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        self.received += 1
        if not self.finishing:
            self.finishing = True
            raise KeyboardInterrupt
        if not self._waiting:
            self._waiting = True
            # os.write: a handler may run in the middle of Python's own writes to stderr
            with contextlib.suppress(OSError):  # a closed stderr must not turn into an exception here
                os.write(2, b"tlsgate: writing the reports (interrupt again to quit without them)\n")
            return
        if self._holding:
            self._pending = True
            return
        raise KeyboardInterrupt

    @contextmanager
    def committing(self) -> Iterator[None]:
        """Around the renames: a signal that would quit waits for them; ``committed`` once they are all done."""
        self._holding = True
        try:
            yield
            self.committed = True
        finally:
            self._holding = False
        if self._pending:
            raise KeyboardInterrupt


@contextmanager
def guard(stops: Stops) -> Iterator[Stops]:
    """``stops`` handling SIGINT and SIGTERM (from the main thread only: elsewhere Python cannot install
    handlers, and the handlers stay as they are); the previous handlers are back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield stops
        return
    # A signal ignored when tlsgate started (nohup, a background job) stays ignored.
    previous = {signum: signal.signal(signum, stops.handle) for signum in STOPS if not _ignored(signum)}
    try:
        yield stops
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _ignored(signum: signal.Signals) -> bool:
    return signal.getsignal(signum) is signal.SIG_IGN
