"""``tlsgate serve`` as a child process on a free loopback port, stopped with SIGTERM (and checked to exit 0)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.helpers import free_port, tlsgate_command


@dataclass(frozen=True)
class Serving:
    port: int
    log: Path  # its standard error

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, timeout: float = 60, **kwargs: object) -> httpx.Response:
        return httpx.get(self.url + path, timeout=timeout, **kwargs)  # type: ignore[arg-type]


@contextlib.contextmanager
def tlsgate_serve(directory: Path, *args: str) -> Iterator[Serving]:
    """Serve until the block ends, then SIGTERM: it must stop within 10 s with exit code 0."""
    port = free_port()
    log = directory / f"serve-{port}.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            tlsgate_command("serve", "--listen", f"127.0.0.1:{port}", *args),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    serving = Serving(port, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"tlsgate serve exited with {proc.returncode}: {log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if serving.get("/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"tlsgate serve did not answer: {log.read_text()}")
            time.sleep(0.1)
        yield serving
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("tlsgate serve did not stop on SIGTERM") from None
    assert code == 0, log.read_text()
    assert log.read_text().rstrip().endswith("tlsgate: stopped"), log.read_text()
