"""Name resolution within a step's deadline.

``getaddrinfo`` has no timeout of its own: the system resolver waits as long as resolv.conf says (seconds per
server and attempt, more with search domains), and a resolver that never answers holds the calling thread that
long. So the lookup runs in a small shared pool of daemon threads and the caller waits only for the time left;
on expiry the caller goes on with a ``dns`` error, and the abandoned lookup ends in its thread when the system
resolver gives up (a daemon thread: it never holds the process at exit).
"""

from __future__ import annotations

import ipaddress
import queue
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

# (host, port) -> the addresses, in resolver order; raises socket.gaierror (or UnicodeError for a bad name)
Resolver = Callable[[str, int], list[str]]

_WORKERS = 32  # lookups at once (as many as targets probed at once by default); more wait, each within its deadline


class ResolveError(Exception):
    """The name could not be resolved in time, or at all; the message is one plain line."""

    def __init__(self, host: str, reason: str, *, timed_out: bool = False) -> None:
        super().__init__(f"cannot resolve {host}: {reason}")
        self.timed_out = timed_out


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _Pool:
    """Daemon worker threads, started as lookups need them (concurrent.futures' pool joins its threads at exit,
    which a lookup stuck in the system resolver would delay)."""

    def __init__(self, workers: int) -> None:
        self._jobs: queue.SimpleQueue[tuple[Future[list[str]], Resolver, str, int]] = queue.SimpleQueue()
        self._workers = workers
        self._started = 0
        self._pending = 0  # submitted and not finished
        self._lock = threading.Lock()

    def submit(self, resolver: Resolver, host: str, port: int) -> Future[list[str]]:
        future: Future[list[str]] = Future()
        with self._lock:
            self._pending += 1
            if self._pending > self._started and self._started < self._workers:
                self._started += 1
                threading.Thread(target=self._work, name=f"tlsgate-dns-{self._started}", daemon=True).start()
        self._jobs.put((future, resolver, host, port))
        return future

    def _work(self) -> None:
        while True:
            future, resolver, host, port = self._jobs.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(resolver(host, port))
                except Exception as exc:  # handed to the waiting caller, which names it
                    future.set_exception(exc)
            with self._lock:
                self._pending -= 1


_POOL = _Pool(_WORKERS)


def resolve(
    host: str, port: int, seconds: float, resolver: Resolver = system_resolver, *, step: float | None = None
) -> list[str]:
    """Every address of ``host`` (an IP address is its own), found within ``seconds``; ResolveError when the
    resolver says the name does not exist or has not answered in time. ``step``: the timeout the message names
    (the whole step's, of which ``seconds`` may be what is left)."""
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    if seconds <= 0:
        raise ResolveError(host, "no time left to look the name up", timed_out=True)
    future = _POOL.submit(resolver, host, port)
    try:
        addresses = future.result(timeout=seconds)
    except FutureTimeout:
        future.cancel()  # still queued: never looked up; running: its answer is dropped
        said = seconds if step is None else step
        raise ResolveError(host, f"no answer from the resolver within {said:g}s", timed_out=True) from None
    except socket.gaierror as exc:
        raise ResolveError(host, exc.strerror or "the resolver failed") from None
    except UnicodeError:
        raise ResolveError(host, "invalid name") from None
    except OSError as exc:
        raise ResolveError(host, exc.strerror or "the resolver failed") from None
    if not addresses:
        raise ResolveError(host, "no address")
    return addresses
