"""nginx on a loopback port with a generated configuration, for tests of what real web servers announce.

Everything nginx writes (pid, logs, temp files) stays in a temporary directory; it runs in the foreground as a
single process (no master, no workers), so stopping it is one signal and nothing survives a test.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import free_port

NGINX_CANDIDATES = ("/usr/sbin/nginx", "nginx")


@dataclass(frozen=True)
class NginxServer:
    port: int
    directory: Path  # config, pid and logs

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def error_log(self) -> str:
        path = self.directory / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


def nginx_binary() -> str | None:
    for candidate in NGINX_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def nginx_config(
    directory: Path,
    port: int,
    cert: Path,
    key: Path,
    *,
    protocols: Sequence[str] = ("TLSv1.2", "TLSv1.3"),
    session_timeout: str = "300s",
    session_tickets: bool = True,
    session_cache: str | None = "shared:tlsgate:1m",
    http2: bool = False,
    extra: str = "",
) -> str:
    """The nginx.conf text; ``session_cache`` None writes ``ssl_session_cache off`` (no server-side cache at all).

    nginx 1.22 enables HTTP/2 (and so ALPN ``h2``) with ``listen ... ssl http2``; the ``http2 on`` directive came
    in 1.25.1.
    """
    d = directory
    listen = f"127.0.0.1:{port} ssl" + (" http2" if http2 else "")
    return f"""\
user root;
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
lock_file {d}/nginx.lock;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen {listen};
        server_name localhost;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols {" ".join(protocols)};
        ssl_session_timeout {session_timeout};
        ssl_session_tickets {"on" if session_tickets else "off"};
        ssl_session_cache {session_cache or "off"};
        {extra}
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""


def _wait_until_accepting(proc: subprocess.Popen[bytes], port: int, directory: Path, deadline: float) -> None:
    while True:
        if proc.poll() is not None:
            log = (directory / "error.log").read_text(errors="replace") if (directory / "error.log").exists() else ""
            stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"nginx exited with {proc.returncode}: {stderr}{log}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextlib.contextmanager
def nginx_server(
    cert: Path,
    key: Path,
    *,
    protocols: Sequence[str] = ("TLSv1.2", "TLSv1.3"),
    session_timeout: str = "300s",
    session_tickets: bool = True,
    session_cache: str | None = "shared:tlsgate:1m",
    http2: bool = False,
    extra: str = "",
) -> Iterator[NginxServer]:
    """nginx serving TLS on a free 127.0.0.1 port; yields once the port accepts connections, stops it on exit.

    ``cert`` is the PEM chain to serve (leaf first), ``key`` its private key. Raises RuntimeError with nginx's
    own words when the configuration is refused.
    """
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is required (apt-get install nginx-light)")
    with tempfile.TemporaryDirectory(prefix="tlsgate-nginx-") as tmp:
        directory = Path(tmp)
        port = free_port()
        config = directory / "nginx.conf"
        config.write_text(
            nginx_config(
                directory, port, cert, key,
                protocols=protocols, session_timeout=session_timeout, session_tickets=session_tickets,
                session_cache=session_cache, http2=http2, extra=extra,
            )
        )  # fmt: skip
        # -e: the error log before the config is read (the built-in default may not be writable);
        # -p: the prefix, so no relative path reaches /usr/share/nginx or /var/lib/nginx.
        proc = subprocess.Popen(
            [binary, "-p", str(directory), "-e", str(directory / "error.log"), "-c", str(config)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            _wait_until_accepting(proc, port, directory, time.monotonic() + 10)
            yield NginxServer(port=port, directory=directory)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            if proc.stderr:
                proc.stderr.close()
