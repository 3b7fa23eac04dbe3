"""HTTP fetching for certificate checks (AIA CA issuers, OCSP, CRLs): bounded, cached per run, offline-able.

One Fetcher serves a whole scan, so a CRL or an intermediate shared by many targets is fetched once.

Each fetch, redirects included, has one deadline (the fetcher's timeout), not only httpx's timeout per read: a
responder that trickles its status line, headers or body a byte at a time is cut off when the deadline passes,
and a body over ``MAX_BYTES`` is not read further. Every read, write and connect of the fetch is clamped to what
is left (``fetch_http``: an httpcore network backend), name resolution included (``connect.resolve``).
"""

from __future__ import annotations

import re
import ssl
import threading
from dataclasses import dataclass

from scanner.probe.connect.resolve import ResolveError

MAX_BYTES = 10 * 1024 * 1024  # a CRL larger than this is not something a scan should download
_MAX_REDIRECTS = 5


@dataclass(frozen=True)
class FetchError:
    url: str
    reason: str  # one line, for facts: "offline mode", "timeout after 5s", "HTTP 404", ...
    offline: bool = False  # True when skipped on purpose: the facts say "not checked", not "error"


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
        from scanner.probe.pki.fetch_http import ssl_context  # noqa: PLC0415 - see _request

        with self._lock:
            if self._ssl is None:
                self._ssl = ssl_context()
            return self._ssl

    def _request(self, method: str, url: str, body: bytes, content_type: str) -> bytes | FetchError:
        # httpx is imported by the first fetch, not with this module: most scans fetch nothing (see fetch_http).
        import httpcore  # noqa: PLC0415
        import httpx  # noqa: PLC0415

        from scanner.probe.pki import fetch_http  # noqa: PLC0415

        headers = {"Content-Type": content_type} if content_type else {}
        transport = fetch_http.Transport(self.timeout, self._context())
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
        except fetch_http.OutOfTime:
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
