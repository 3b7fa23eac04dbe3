"""HTTP fetching for certificate checks (AIA CA issuers, OCSP, CRLs): bounded, cached per run, offline-able.

One Fetcher serves a whole scan, so a CRL or an intermediate shared by many targets is fetched once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import httpx

MAX_BYTES = 10 * 1024 * 1024  # a CRL larger than this is not something a scan should download


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
        try:
            result = self._request(method, url, body, content_type)
        except Exception as exc:  # never let one odd URL break a scan
            result = FetchError(url, f"{type(exc).__name__}: {exc}")
        with self._lock:
            self._cache[key] = result
            del self._inflight[key]
        pending.set()
        return result

    def _request(self, method: str, url: str, body: bytes, content_type: str) -> bytes | FetchError:
        headers = {"Content-Type": content_type} if content_type else {}
        try:
            with (
                httpx.Client(timeout=self.timeout, follow_redirects=True, trust_env=False) as client,
                client.stream(method, url, content=body or None, headers=headers) as response,
            ):
                if response.status_code != 200:
                    return FetchError(url, f"HTTP {response.status_code}")
                data = b""
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) > MAX_BYTES:
                        return FetchError(url, f"response larger than {MAX_BYTES} bytes")
                return data
        except httpx.TimeoutException:
            return FetchError(url, f"timeout after {self.timeout:g}s")
        except httpx.HTTPError as exc:
            return FetchError(url, f"{type(exc).__name__}: {exc}")
