"""A deadline for one step of talking to a target: connect, a STARTTLS dialogue, a handshake, a reply.

A socket timeout bounds one ``recv``; a peer that sends one byte just before each timeout would stretch a read
for ever. A ``Deadline`` bounds the whole step instead: it ends at ``timeout`` seconds from its start or at the
target's (or run's) stop deadline, whichever comes first, and every call through it gets only the time left.
When it is over, the call raises ``TimeoutError`` (an OSError, so every probe's network error handling applies).
"""

from __future__ import annotations

import socket
import time

from scanner.probe.connect.limits import Stop


class Deadline:
    """The end of one step: ``seconds`` from now, or the stop's deadline when that comes first."""

    def __init__(self, seconds: float, stop: Stop | None = None) -> None:
        self.seconds = seconds
        self.started = time.monotonic()
        at = self.started + seconds
        limit = stop.deadline if stop is not None else None
        self.at = at if limit is None else min(at, limit)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.at - time.monotonic())

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def arm(self, sock: socket.socket) -> None:
        """Give ``sock`` the time left for its next call; TimeoutError when none is left."""
        remaining = self.remaining()
        if remaining <= 0:
            raise TimeoutError(f"no answer within {self.seconds:g}s")
        sock.settimeout(remaining)

    def connect(self, address: str, port: int) -> socket.socket:
        """A TCP connection opened within the time left."""
        remaining = self.remaining()
        if remaining <= 0:
            raise TimeoutError(f"no answer within {self.seconds:g}s")
        return socket.create_connection((address, port), timeout=remaining)

    def recv(self, sock: socket.socket, size: int) -> bytes:
        """Up to ``size`` bytes (empty at end of stream) within the time left."""
        self.arm(sock)
        return sock.recv(size)

    def recv_exactly(self, sock: socket.socket, count: int) -> bytes:
        """Exactly ``count`` bytes, or fewer when the peer closed first; TimeoutError when the time runs out."""
        data = b""
        while len(data) < count:
            chunk = self.recv(sock, count - len(data))
            if not chunk:
                break
            data += chunk
        return data

    def sendall(self, sock: socket.socket, data: bytes) -> None:
        """Send all of ``data`` within the time left (Python bounds a whole sendall by the socket timeout)."""
        self.arm(sock)
        sock.sendall(data)
