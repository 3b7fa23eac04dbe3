"""How much a run may do at once, and when it must stop.

``Slots`` bounds the connections in flight: across the whole run, and to one host (an IP address, whatever the
port), so that a fleet is spread over many servers while no one server is hammered. ``Stop`` is why and when a
run or one target must end early — Ctrl-C, the run's time budget, a target's own time limit —; every connection
a probe opens checks it first, so a stopped target winds down within one network timeout.
"""

from __future__ import annotations

import threading
import time

from scanner.facts import ErrorClass, ProbeError

_POLL = 0.05  # seconds between looks at a Stop while waiting for a slot


class Cancelled(ConnectionAbortedError):
    """Raised where a probe would connect after its run or target was stopped. An OSError, so every probe's
    network error handling ends its work quickly; the run then reports the target with ``error``."""

    def __init__(self, error: ProbeError) -> None:
        super().__init__(error.message)
        self.error = error


class Stop:
    """A stop signal with a reason: set by hand (Ctrl-C), by a deadline, or inherited from a parent stop (the
    run's, for a target). Cheap to check; thread-safe."""

    def __init__(
        self, parent: Stop | None = None, deadline: float | None = None, on_deadline: ProbeError | None = None
    ) -> None:
        self._parent = parent
        self._deadline = deadline  # time.monotonic() value
        self._on_deadline = on_deadline or ProbeError(error_class=ErrorClass.timeout, message="out of time")
        self._error: ProbeError | None = None
        self._lock = threading.Lock()

    @classmethod
    def after(cls, seconds: float, error: ProbeError, parent: Stop | None = None) -> Stop:
        return cls(parent, time.monotonic() + seconds, error)

    def set(self, error: ProbeError) -> None:
        """Stop with this reason; the first reason given is kept."""
        with self._lock:
            if self._error is None:
                self._error = error

    @property
    def error(self) -> ProbeError | None:
        """Why this stopped, or None while it may go on. A parent's reason comes first."""
        if self._parent is not None and (inherited := self._parent.error) is not None:
            return inherited
        if self._error is None and self._deadline is not None and time.monotonic() >= self._deadline:
            self.set(self._on_deadline)
        return self._error

    @property
    def deadline(self) -> float | None:
        """The earliest deadline (a ``time.monotonic()`` value) of this stop and its parents, or None."""
        own = self._deadline
        inherited = self._parent.deadline if self._parent is not None else None
        if own is None or inherited is None:
            return own if inherited is None else inherited
        return min(own, inherited)

    def remaining(self) -> float | None:
        """Seconds left before the earliest deadline (never negative), or None when there is none."""
        deadline = self.deadline
        return None if deadline is None else max(0.0, deadline - time.monotonic())

    def check(self) -> None:
        """Raise Cancelled when stopped."""
        error = self.error
        if error is not None:
            raise Cancelled(error)


class Slots:
    """Connections in flight: at most ``total`` in the run and ``per_host`` to one host. A holder takes its
    host's slot first and then a global one, and holds one slot at a time, so waiting never deadlocks."""

    def __init__(self, total: int, per_host: int) -> None:
        if total < 1 or per_host < 1:
            raise ValueError("connection limits must be at least 1")
        self.total = total
        self.per_host = per_host
        self._global = threading.BoundedSemaphore(total)
        self._hosts: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    def _host(self, host: str) -> threading.BoundedSemaphore:
        with self._lock:
            found = self._hosts.get(host)
            if found is None:
                found = self._hosts[host] = threading.BoundedSemaphore(self.per_host)
            return found

    def hold(self, host: str, stop: Stop | None = None) -> Held:
        """One connection slot to ``host`` for the duration of a ``with`` block; raises Cancelled if ``stop``
        fires while waiting."""
        return Held(self, host.lower(), stop)

    def _take(self, key: str, stop: Stop | None) -> None:
        per_host = self._host(key)
        _acquire(per_host, stop)
        try:
            _acquire(self._global, stop)
        except BaseException:
            per_host.release()
            raise

    def _give(self, key: str) -> None:
        self._global.release()
        self._host(key).release()


class Held:
    """A slot held for a ``with`` block. A class, not a generator context manager: contextlib re-raises through
    the generator and sets ``__traceback__`` on the exception, which sslyze's frozen-dataclass exceptions
    refuse."""

    def __init__(self, slots: Slots, key: str, stop: Stop | None) -> None:
        self._slots, self._key, self._stop = slots, key, stop

    def __enter__(self) -> None:
        self._slots._take(self._key, self._stop)

    def __exit__(self, *exc: object) -> None:
        self._slots._give(self._key)


def _acquire(semaphore: threading.BoundedSemaphore, stop: Stop | None) -> None:
    if stop is None:
        semaphore.acquire()
        return
    while not semaphore.acquire(timeout=_POLL):
        stop.check()
    try:
        stop.check()
    except Cancelled:
        semaphore.release()
        raise
