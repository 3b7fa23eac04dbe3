"""HTTP fetching for certificate checks (AIA CA issuers, OCSP, CRLs): bounded, cached per run, offline-able.

One Fetcher serves a whole scan, so a CRL or an intermediate shared by many targets is fetched once.

Each fetch, redirects included, has one deadline (the fetcher's timeout), not only httpx's timeout per read: a
responder that trickles its status line, headers or body a byte at a time is cut off when the deadline passes,
and a body over ``MAX_BYTES`` is not read further. Every read, write and connect of the fetch is clamped to what
is left (``_Deadline``, an httpcore network backend), name resolution included (``connect.resolve``).
"""

from __future__ import annotations

import re
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from scanner.probe.connect.resolve import ResolveError, resolve

MAX_BYTES = 10 * 1024 * 1024  # a CRL larger than this is not something a scan should download
_MAX_REDIRECTS = 5


@dataclass(frozen=True)
class FetchError:
    url: str
    reason: str  # one line, for facts: "offline mode", "timeout after 5s", "HTTP 404", ...
    offline: bool = False  # True when skipped on purpose: the facts say "not checked", not "error"


class _OutOfTime(Exception):
    """The fetch's deadline passed while the server was still answering."""


class Fetcher:
    def __init__(self, timeout: float = 5.0, *, offline: bool = False) -> None:
        self.timeout = timeout
        self.offline = offline
        self._cache: dict[tuple[str, str, bytes], bytes | FetchError] = {}
        self._lock = threading.Lock()
        self._inflight: dict[tuple[str, str, bytes], threading.Event] = {}
        self._ssl: ssl.SSLContext | None = None
        self.requests = 0  # how many requests actually went out (cache hits and shared waits do not count)

    def get(self, url: str) -> bytes | FetchError:
        return self._fetch("GET", url, b"", "")

    def post(self, url: str, body: bytes, content_type: str) -> bytes | FetchError:
        return self._fetch("POST", url, body, content_type)

    def _fetch(self, method: str, url: str, body: bytes, content_type: str) -> bytes | FetchError:
        if self.offline:
            return FetchError(url, "not fetched: offline mode", offline=True)
        if not url.lower().startswith(("http://", "https://")):
            return FetchError(url, "only http and https URLs are fetched")
        key = (method, url, body)
        while True:
            with self._lock:
                if key in self._cache:
                    return self._cache[key]
                pending = self._inflight.get(key)
                if pending is None:
                    # This thread fetches; others asking for the same URL meanwhile wait for its answer.
                    pending = self._inflight[key] = threading.Event()
                    self.requests += 1
                    break
            pending.wait()
        result: bytes | FetchError = FetchError(url, "fetch failed: interrupted")
        try:
            result = self._request(method, url, body, content_type)
        except Exception as exc:  # never let one odd URL break a scan
            result = FetchError(url, f"fetch failed: {_words(exc)}")
        finally:  # whatever happened, those waiting for this URL get an answer
            with self._lock:
                self._cache[key] = result
                del self._inflight[key]
            pending.set()
        return result

    def _context(self) -> ssl.SSLContext:
        with self._lock:
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()  # httpx's default: certifi's roots, verification on
            return self._ssl

    def _request(self, method: str, url: str, body: bytes, content_type: str) -> bytes | FetchError:
        headers = {"Content-Type": content_type} if content_type else {}
        transport = _Transport(self.timeout, self._context())
        try:
            with (
                httpx.Client(
                    transport=transport,
                    timeout=self.timeout,
                    follow_redirects=True,
                    max_redirects=_MAX_REDIRECTS,
                    trust_env=False,
                ) as client,
                client.stream(method, url, content=body or None, headers=headers) as response,
            ):
                if response.status_code != 200:
                    return FetchError(url, f"HTTP {response.status_code}")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > MAX_BYTES:
                    return FetchError(url, f"response larger than {MAX_BYTES} bytes")
                data = bytearray()
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) > MAX_BYTES:
                        return FetchError(url, f"response larger than {MAX_BYTES} bytes")
                return bytes(data)
        except ResolveError as exc:
            return FetchError(url, str(exc))
        except _OutOfTime:
            return FetchError(url, f"timeout after {self.timeout:g}s: no complete answer in that time")
        except (httpx.TimeoutException, httpcore.TimeoutException):
            return FetchError(url, f"timeout after {self.timeout:g}s")
        except httpcore.ConnectError as exc:
            return FetchError(url, f"cannot connect: {_words(exc)}")
        except (httpcore.ProtocolError, httpx.DecodingError) as exc:
            return FetchError(url, f"not a valid HTTP answer: {_words(exc)}")
        except httpx.TooManyRedirects:
            return FetchError(url, f"more than {_MAX_REDIRECTS} redirects")
        except (httpx.HTTPError, httpcore.NetworkError) as exc:
            return FetchError(url, f"fetch failed: {_words(exc)}")


_ERRNO = re.compile(r"^\[Errno -?\d+\]\s*")


def _words(exc: BaseException) -> str:
    """An exception's message on one line, without its class name or an ``[Errno N]`` prefix."""
    lines = str(exc).strip().splitlines()
    text = _ERRNO.sub("", lines[0]) if lines else ""
    return text or "no detail"


# --- one deadline for a whole fetch ---------------------------------------------------------------------------


class _Transport(httpx.BaseTransport):
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
            raise _OutOfTime
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
                    raise _OutOfTime from None
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
                raise _OutOfTime from None
            raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        wait, clamped = self._deadline.left(timeout)
        try:
            self._stream.write(buffer, wait)
        except httpcore.TimeoutException:
            if clamped:
                raise _OutOfTime from None
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
                raise _OutOfTime from None
            raise

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)
