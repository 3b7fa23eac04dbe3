"""nginx on a loopback port with a generated configuration, for tests of what real web servers announce.

Everything nginx writes (pid, logs, temp files) stays in a temporary directory; it runs in the foreground as a
single process (no master, no workers), so stopping it is one signal and nothing survives a test.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers import free_port, server_process

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


@dataclass(frozen=True)
class NginxOptions:
    """What the generated nginx.conf sets; ``session_cache`` None writes ``ssl_session_cache off`` (no server-side
    cache at all).

    nginx 1.22 enables HTTP/2 (and so ALPN ``h2``) with ``listen ... ssl http2``; the ``http2 on`` directive came
    in 1.25.1.
    """

    protocols: Sequence[str] = ("TLSv1.2", "TLSv1.3")
    session_timeout: str = "300s"
    session_tickets: bool = True
    session_cache: str | None = "shared:tlsgate:1m"
    http2: bool = False
    extra: str = ""


def nginx_config(directory: Path, port: int, cert: Path, key: Path, options: NginxOptions) -> str:
    """The nginx.conf text."""
    d, o = directory, options
    listen = f"127.0.0.1:{port} ssl" + (" http2" if o.http2 else "")
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
        ssl_protocols {" ".join(o.protocols)};
        ssl_session_timeout {o.session_timeout};
        ssl_session_tickets {"on" if o.session_tickets else "off"};
        ssl_session_cache {o.session_cache or "off"};
        {o.extra}
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""


@contextlib.contextmanager
def nginx_server(cert: Path, key: Path, **options: Any) -> Iterator[NginxServer]:
    """nginx serving TLS on a free 127.0.0.1 port; yields once the port accepts connections, stops it on exit.

    ``cert`` is the PEM chain to serve (leaf first), ``key`` its private key; ``options`` are NginxOptions fields.
    Raises RuntimeError with nginx's own words when the configuration is refused.
    """
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is required (apt-get install nginx-light)")
    with tempfile.TemporaryDirectory(prefix="tlsgate-nginx-") as tmp:
        directory = Path(tmp)
        port = free_port()
        config = directory / "nginx.conf"
        config.write_text(nginx_config(directory, port, cert, key, NginxOptions(**options)))
        log = directory / "error.log"
        # -e: the error log before the config is read (the built-in default may not be writable);
        # -p: the prefix, so no relative path reaches /usr/share/nginx or /var/lib/nginx.
        command = [binary, "-p", str(directory), "-e", str(log), "-c", str(config)]
        with server_process(command, port, "nginx", log=log):
            yield NginxServer(port=port, directory=directory)
