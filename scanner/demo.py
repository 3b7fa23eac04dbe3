"""A local TLS endpoint for the bundled demo: loopback only, certificates made on the fly.

The endpoint is well configured for the default pack once its CA is trusted, and deliberately fails
tls13-only (it accepts TLS 1.2 beside 1.3), so the demo shows a failing verdict with real evidence.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Handler = Callable[[socket.socket], None]


class LoopbackServer:
    """Accepts connections on a loopback address and hands each to ``handle`` in its own thread."""

    def __init__(self, handle: Handler, host: str = "127.0.0.1") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, 0))
        self._sock.listen(128)
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        self._handle = handle
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"loopback-{self.port}", daemon=True)

    @property
    def target(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def _serve(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        # A scanner's probes end connections abruptly by design; the server shrugs and goes on.
        with contextlib.suppress(Exception), conn:
            conn.settimeout(10)
            self._handle(conn)

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()


def tls_handler(context: ssl.SSLContext) -> Handler:
    """Complete the handshake, answer one request with a tiny HTTP response, close."""

    def handle(conn: socket.socket) -> None:
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.settimeout(2)
            with contextlib.suppress(OSError):
                tls.recv(1024)
                tls.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n")

    return handle


@dataclass(frozen=True)
class DemoPki:
    ca_cert: Path
    cert: Path  # leaf followed by the CA, as servers send their chain
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tlsgate demo"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_demo_pki(directory: Path) -> DemoPki:
    """A throwaway CA and a server certificate for localhost / 127.0.0.1 (RSA 2048, 825 days)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("tlsgate demo CA"))
        .issuer_name(_name("tlsgate demo CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    pki = DemoPki(ca_cert=directory / "demo-ca.pem", cert=directory / "demo-server.pem", key=directory / "demo-key.pem")
    pem = serialization.Encoding.PEM
    pki.ca_cert.write_bytes(ca.public_bytes(pem))
    pki.cert.write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    pki.key.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    pki.key.chmod(0o600)
    return pki


@contextlib.contextmanager
def demo_endpoint(pki: DemoPki) -> Iterator[LoopbackServer]:
    """A TLS 1.2 + 1.3 endpoint on 127.0.0.1 with the demo certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert, pki.key)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    with LoopbackServer(tls_handler(context)) as server:
        yield server
