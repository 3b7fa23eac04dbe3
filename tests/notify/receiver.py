"""A loopback HTTP receiver for webhook tests: records every request and answers from a script."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    at: float  # time.monotonic() when the request was read
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    port: int
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # answers in order, then 200
    requests: list[Received] = field(default_factory=list)
    hang: bool = False  # read the request, never answer
    flood: bool = False  # answer 200 announcing 10 GB of body, and send zeros until the client goes
    trickle: bool = False  # answer a status line, then a byte of a header every 0.2 s, never ending
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hooks/T000/B000/s3cr3t-token") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def delivered(self) -> list[Received]:
        """The requests answered 2xx."""
        with self.lock:
            return [r for r in self.requests if r.status < 300]


@contextlib.contextmanager
def receiver() -> Iterator[Receiver]:
    state = Receiver(port=0)
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with state.lock:
                status, headers = state.script.pop(0) if state.script else (200, {})
                state.requests.append(Received(time.monotonic(), self.path, dict(self.headers.items()), body, status))
            if state.hang:
                stop.wait(30)
                return
            if state.trickle:
                with contextlib.suppress(OSError):
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                    while not stop.wait(0.2):
                        self.wfile.write(b"a")
                        self.wfile.flush()
                return
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(10**10 if state.flood else 2))
            self.end_headers()
            if not state.flood:
                self.wfile.write(b"ok")
                return
            chunk = b"\0" * 65536
            with contextlib.suppress(OSError):
                while not stop.is_set():
                    self.wfile.write(chunk)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
