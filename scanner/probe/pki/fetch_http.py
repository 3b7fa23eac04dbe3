"""The httpx side of :class:`~scanner.probe.pki.fetch.Fetcher`: one deadline for a whole fetch.

Kept apart and imported on the first fetch: httpx and httpcore (with what httpx's own command line pulls in) cost
a scan's start-up some 50 ms, and most scans fetch nothing (a chain without AIA, OCSP or CRL URLs, offline mode).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore
import httpx

from scanner.probe.connect.resolve import resolve


class OutOfTime(Exception):
    """The fetch's deadline passed while the server was still answering."""


def ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()  # httpx's default: certifi's roots, verification on


# --- one deadline for a whole fetch ---------------------------------------------------------------------------


class Transport(httpx.BaseTransport):
    """httpx's transport over httpcore, with every connection made by ``_Deadline``."""

    def __init__(self, seconds: float, context: ssl.SSLContext) -> None:
        self._pool = httpcore.ConnectionPool(ssl_context=context, network_backend=_Deadline(seconds))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(request.stream, httpx.SyncByteStream):
            raise TypeError("a synchronous request was expected")
        url = request.url
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        answer = self._pool.handle_request(core)
        if not isinstance(answer.stream, Iterable):
            raise TypeError("a synchronous response was expected")
        return httpx.Response(
            status_code=answer.status, headers=answer.headers, stream=_Body(answer.stream), extensions=answer.extensions
        )

    def close(self) -> None:
        self._pool.close()


class _Body(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class _Deadline(httpcore.NetworkBackend):
    """httpcore's own sockets, with each lookup, connect, read and write clamped to the time left of ``seconds``
    from now."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self._backend = httpcore.SyncBackend()

    def left(self, timeout: float | None) -> tuple[float, bool]:
        """The timeout for the next operation, and whether the deadline (not ``timeout``) sets it."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise OutOfTime
        return (left, True) if timeout is None or left < timeout else (timeout, False)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        # The name first, within the time left (httpcore's backend would call getaddrinfo unbounded), then each
        # of its addresses in turn, as socket.create_connection does.
        addresses = resolve(host, port, self.left(timeout)[0], step=self.seconds)
        refused: httpcore.ConnectError | None = None
        for address in addresses:
            wait, clamped = self.left(timeout)
            try:
                stream = self._backend.connect_tcp(address, port, wait, local_address, socket_options)
            except httpcore.ConnectTimeout:
                if clamped:
                    raise OutOfTime from None
                raise
            except httpcore.ConnectError as exc:
                refused = exc
                continue
            return _Stream(stream, self)
        raise refused or httpcore.ConnectError("no address")


class _Stream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        wait, clamped = self._deadline.left(timeout)
        try:
            return self._stream.read(max_bytes, wait)
        except httpcore.TimeoutException:
            if clamped:
                raise OutOfTime from None
            raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        wait, clamped = self._deadline.left(timeout)
        try:
            self._stream.write(buffer, wait)
        except httpcore.TimeoutException:
            if clamped:
                raise OutOfTime from None
            raise

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        wait, clamped = self._deadline.left(timeout)
        try:
            return _Stream(self._stream.start_tls(ssl_context, server_hostname, wait), self._deadline)
        except httpcore.TimeoutException:
            if clamped:
                raise OutOfTime from None
            raise

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)
