"""HTTP servers on loopback that answer too slowly, too much or not at all, for the bounds of HTTP clients.

Each reads the request's head and then misbehaves in one way, for as long as the client stays:

- ``trickle_status``: the status line, a byte every ``interval`` seconds, never ending;
- ``trickle_headers``: a status line at once, then one header a byte at a time, never ending;
- ``trickle_body``: a 200 with a large Content-Length, the body a byte at a time;
- ``endless_body``: a 200 without a length, the body as fast as the client reads, never ending;
- ``silent``: nothing at all after the request.

With ``tls`` the same is spoken over TLS (for a client that checks an HTTPS service after its handshake).
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Literal

from scanner.demo import LoopbackServer

Behaviour = Literal["trickle_status", "trickle_headers", "trickle_body", "endless_body", "silent"]
BEHAVIOURS: tuple[Behaviour, ...] = ("trickle_status", "trickle_headers", "trickle_body", "endless_body", "silent")


def _read_head(conn: socket.socket) -> None:
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            return
        head += chunk


def _trickle(conn: socket.socket, start: bytes, filler: bytes, interval: float) -> None:
    conn.sendall(start)
    for byte in itertools.cycle(filler):
        time.sleep(interval)
        conn.sendall(bytes([byte]))


def _misbehave(behaviour: Behaviour, interval: float) -> Callable[[socket.socket], None]:
    def handle(conn: socket.socket) -> None:
        conn.settimeout(60)
        _read_head(conn)
        if behaviour == "trickle_status":
            _trickle(conn, b"", b"HTTP/1.1 200 OK-but-slowly", interval)
        elif behaviour == "trickle_headers":
            _trickle(conn, b"HTTP/1.1 200 OK\r\nX-Slow: ", b"a", interval)
        elif behaviour == "trickle_body":
            _trickle(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n", b"x", interval)
        elif behaviour == "endless_body":
            conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
            block = b"x" * 65536
            while True:
                conn.sendall(block)
        else:
            conn.recv(1)  # until the client gives up

    return handle


@contextlib.contextmanager
def hostile_http(
    behaviour: Behaviour, *, interval: float = 0.2, tls: ssl.SSLContext | None = None
) -> Iterator[LoopbackServer]:
    """A server on 127.0.0.1 that misbehaves as ``behaviour`` says; its ``target`` is ``127.0.0.1:port``."""
    plain = _misbehave(behaviour, interval)

    def handle(conn: socket.socket) -> None:
        if tls is None:
            plain(conn)
            return
        with tls.wrap_socket(conn, server_side=True) as wrapped:
            plain(wrapped)

    with LoopbackServer(handle) as server:
        yield server
