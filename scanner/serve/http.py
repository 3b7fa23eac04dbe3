"""The HTTP server of ``tlsgate serve`` (and of ``watch``): ``/metrics``, ``/probe``, ``/healthz``.

The standard library's ThreadingHTTPServer: one thread per connection, each connection's reads bounded by
``READ_TIMEOUT`` (a client that sends nothing cannot hold a thread), scans bounded by the prober. Errors are one
line of text with their status; nothing a request sends is echoed unprintable.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CollectorRegistry

from scanner.serve.metrics import TargetCollector, exposition
from scanner.serve.probe import ProbeCollector, Prober, ProbeRefused
from scanner.textsafe import printable

READ_TIMEOUT = 30.0  # seconds a connection may take to send its request
MAX_QUERY_FIELDS = 8
ENDPOINTS = ("/metrics", "/probe", "/healthz")


@dataclass
class ServeApp:
    """What the server answers with: the registry ``/metrics`` shows, the prober behind ``/probe`` (None: /probe
    answers 404), and where errors are told (``log``, one line each)."""

    registry: CollectorRegistry
    prober: Prober | None = None
    log: Callable[[str], None] = lambda line: None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    app: ServeApp


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = READ_TIMEOUT
    protocol_version = "HTTP/1.1"

    def version_string(self) -> str:
        return "tlsgate"

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        try:
            query = parse_qs(url.query, strict_parsing=False, max_num_fields=MAX_QUERY_FIELDS)
        except ValueError:
            self._text(HTTPStatus.BAD_REQUEST, "too many query parameters")
            return
        if url.path == "/metrics":
            self._metrics(self.server.app.registry)
        elif url.path == "/probe":
            self._probe(query)
        elif url.path == "/healthz":
            self._text(HTTPStatus.OK, "ok")
        else:
            self._text(HTTPStatus.NOT_FOUND, f"not found: try {', '.join(ENDPOINTS)}")

    def _probe(self, query: dict[str, list[str]]) -> None:
        prober = self.server.app.prober
        if prober is None:
            self._text(HTTPStatus.NOT_FOUND, "no /probe here")
            return
        if any(len(query.get(name, [])) > 1 for name in ("target", "pack")):
            self._text(HTTPStatus.BAD_REQUEST, "target and pack may be given once each")
            return
        target = query.get("target", [None])[0]
        pack = query.get("pack", [None])[0]
        try:
            report = prober.probe(target, pack, _seconds(self.headers.get("X-Prometheus-Scrape-Timeout-Seconds")))
        except ProbeRefused as exc:
            self._text(HTTPStatus(exc.status), str(exc))
            return
        except Exception as exc:  # a bug must cost one request, not the server; the scan's own errors are facts
            self.server.app.log(f"/probe {printable(str(target))}: internal error: {type(exc).__name__}: {exc}")
            self._text(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error: {type(exc).__name__}")
            return
        registry = CollectorRegistry(auto_describe=False)
        registry.register(ProbeCollector(report))
        registry.register(TargetCollector(lambda: report.targets, [p.id for p in report.packs]))
        self._metrics(registry)

    def _metrics(self, registry: CollectorRegistry) -> None:
        body, headers = exposition(registry, self.headers.get("Accept"), self.headers.get("Accept-Encoding"))
        self._send(HTTPStatus.OK, body, headers)

    def _text(self, status: HTTPStatus, line: str) -> None:
        self._send(status, (printable(line) + "\n").encode(), {"Content-Type": "text/plain; charset=utf-8"})

    def _send(self, status: HTTPStatus, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Access lines are not logged (Prometheus scrapes every few seconds); errors go through ``log_error``."""

    def log_error(self, format: str, *args: object) -> None:
        self.server.app.log(printable(format % args))


def _seconds(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def make_server(host: str, port: int, app: ServeApp) -> ThreadingHTTPServer:
    """A server bound to host:port (port 0: any free port), not yet serving: call ``serve_forever``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    class Server(_Server):
        address_family = family

    server = Server((host, port), _Handler)
    server.app = app
    return server
