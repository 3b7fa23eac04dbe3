"""Test helpers: real TLS servers on loopback and a runner for the real command line."""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from scanner.demo import LoopbackServer, tls_handler

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ServerFiles:
    cert: Path
    key: Path
    ca: Path


def server_context(
    files: ServerFiles,
    minimum: ssl.TLSVersion,
    maximum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3,
    ciphers: str | None = None,
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.cert, files.key)
    context.minimum_version = minimum
    context.maximum_version = maximum
    if ciphers:
        context.set_ciphers(ciphers)
    return context


@contextlib.contextmanager
def python_tls_server(context: ssl.SSLContext, host: str = "127.0.0.1") -> Iterator[LoopbackServer]:
    with LoopbackServer(tls_handler(context), host) as server:
        yield server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def openssl_server(cert: Path, key: Path, *args: str) -> Iterator[int]:
    """``openssl s_server`` on a free loopback port; yields the port once it accepts connections."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl is required (apt-get install openssl)"
    port = free_port()
    proc = subprocess.Popen(
        [openssl, "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(cert), "-key", str(key),
         "-www", "-quiet", *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                stderr = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"openssl s_server exited: {stderr}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str
    seconds: float


def run_tlsgate(*args: str, cwd: Path | None = None, timeout: float = 300) -> Run:
    """Run the real command line in a child process, as a user or a pipeline would."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "scanner.cli", *args],
        capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False,
    )  # fmt: skip
    return Run(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)
