"""Shared fixtures: a test PKI made with trustme, and real servers on loopback."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator

import pytest
import trustme

from scanner.demo import LoopbackServer
from tests.helpers import Run, ServerFiles, free_port, python_tls_server, run_tlsgate, server_context


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> ServerFiles:
    """A trustme CA and a server certificate for localhost, 127.0.0.1 and ::1."""
    directory = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1", "::1")
    files = ServerFiles(cert=directory / "server.pem", key=directory / "server-key.pem", ca=directory / "ca.pem")
    cert.private_key_pem.write_to_path(str(files.key))
    cert.cert_chain_pems[0].write_to_path(str(files.cert))
    ca.cert_pem.write_to_path(str(files.ca))
    return files


@pytest.fixture
def tls13_server(pki: ServerFiles) -> Iterator[LoopbackServer]:
    """A Python ssl server that accepts TLS 1.3 only."""
    with python_tls_server(server_context(pki, ssl.TLSVersion.TLSv1_3)) as server:
        yield server


@pytest.fixture
def tls12_13_server(pki: ServerFiles) -> Iterator[LoopbackServer]:
    """A Python ssl server that accepts TLS 1.2 and TLS 1.3."""
    with python_tls_server(server_context(pki, ssl.TLSVersion.TLSv1_2)) as server:
        yield server


def _plain_http(conn: socket.socket) -> None:
    conn.recv(4096)
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


@pytest.fixture
def http_server() -> Iterator[LoopbackServer]:
    """A plain-HTTP server: answers anything, a ClientHello included, with an HTTP 400."""
    with LoopbackServer(_plain_http) as server:
        yield server


@pytest.fixture
def silent_server() -> Iterator[LoopbackServer]:
    """Accepts connections and never sends a byte."""
    release = threading.Event()

    def hold(conn: socket.socket) -> None:
        release.wait(60)

    with LoopbackServer(hold) as server:
        yield server
        release.set()


@pytest.fixture
def refused_port() -> int:
    """A loopback port with nothing listening on it."""
    return free_port()


@pytest.fixture
def tlsgate() -> Callable[..., Run]:
    return run_tlsgate
