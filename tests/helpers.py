"""Test helpers: real TLS servers on loopback and a runner for the real command line."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import pty
import re
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from scanner.demo import LoopbackServer, tls_handler
from scanner.facts import ErrorClass, Facts, ProbeError, ProtocolSupport, TargetInfo
from scanner.findings import Finding, Severity
from scanner.gate import decided_target, run_outcome
from scanner.report import Report, TargetReport
from tests import pki

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


@contextlib.contextmanager
def ipv6_tls13_server(files: ServerFiles) -> Iterator[LoopbackServer]:
    """A TLS 1.3 Python server on ::1; the test is skipped where the machine has no IPv6 loopback."""
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(python_tls_server(server_context(files, ssl.TLSVersion.TLSv1_3), host="::1"))
        except OSError:
            pytest.skip("no IPv6 loopback on this machine")
        yield server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def openssl_server(
    cert: Path, key: Path, *args: str, chain: Path | None = None, www: bool = True, port: int | None = None
) -> Iterator[int]:
    """``openssl s_server`` on a free loopback port (or ``port``: a server restarted in another configuration);
    yields the port once it accepts connections.

    s_server sends only the first certificate of ``cert``; ``chain`` names the intermediates to send after it.
    With ``www`` it answers a GET with an HTTP status page; without, it is no HTTP server at all.
    """
    if chain is not None:
        args = ("-cert_chain", str(chain), *args)
    if www:
        args = ("-www", *args)
    openssl = shutil.which("openssl")
    assert openssl, "openssl is required (apt-get install openssl)"
    port = port or free_port()
    command = [openssl, "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(cert), "-key", str(key),
               "-quiet", *args]  # fmt: skip
    with server_process(command, port, "openssl s_server"):
        yield port


@contextlib.contextmanager
def server_process(
    command: list[str], port: int, name: str, *, log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server process, wait until 127.0.0.1:port accepts connections, stop it afterwards. A process that
    exits first raises RuntimeError with its exit code, its standard error and what it wrote to ``log``, if given."""
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                logged = log.read_text(errors="replace") if log is not None and log.exists() else ""
                raise RuntimeError(f"{name} exited with {proc.returncode}: {stderr}{logged}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stderr:
            proc.stderr.close()


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str
    seconds: float


def tlsgate_command(*args: str) -> list[str]:
    """The real command line, as a child process runs it."""
    return [sys.executable, "-m", "scanner.cli", *args]


def run_tlsgate(*args: str, cwd: Path | None = None, timeout: float = 300, env: dict[str, str] | None = None) -> Run:
    """Run the real command line in a child process, as a user or a pipeline would."""
    started = time.monotonic()
    proc = subprocess.run(
        tlsgate_command(*args),
        capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return Run(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


# CSI and OSC sequences and charset switches: what a terminal shows, without its controls
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][A-Z0-9]")


def run_tlsgate_on_terminal(
    *args: str, cwd: Path | None = None, timeout: float = 180, env: dict[str, str] | None = None, raw: bool = False
) -> Run:
    """The same with standard error on a pseudo-terminal (160 columns), read as it comes; ``stderr`` is what the
    terminal received, escape sequences removed (kept with ``raw``)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    started = time.monotonic()
    proc = subprocess.Popen(
        tlsgate_command(*args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=follower, cwd=cwd, env=env,
    )  # fmt: skip
    os.close(follower)
    received: list[bytes] = []

    def drain() -> None:  # a terminal's buffer is small: a bar that cannot write would stall the scan
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                return
            if not data:
                return
            received.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        stdout, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(10)
        os.close(leader)
    text = b"".join(received).decode("utf-8", errors="replace")
    if not raw:
        text = ANSI.sub("", text.replace("\r", "\n"))
    return Run(proc.returncode, stdout.decode(), text, time.monotonic() - started)


def protocol_facts(target: str, accepted: list[str], at: dt.datetime, *, scanned: bool = True) -> Facts:
    """Facts of a target that accepts ``accepted`` protocol versions (no suites), or was refused."""
    host, _, port = target.rpartition(":")
    info = TargetInfo(input=target, host=host, port=int(port), server_name=None, ip_address=None)
    if not scanned:
        error = ProbeError(error_class=ErrorClass.refused, message="connection refused")
        return Facts(target=info, started_at=at, finished_at=at, status="error", error=error)
    protocols = [ProtocolSupport(version=v, status="accepted") for v in accepted]
    return Facts(target=info, started_at=at, finished_at=at, status="ok", protocols=protocols)


def target_report(
    facts: Facts, findings: list[Finding], name: str | None = None, fail_on: Severity = "info"
) -> TargetReport:
    """A target's report built by hand as the gate writes one (decisions on its findings), labelled ``name``."""
    target = decided_target(facts, findings, fail_on)
    return target if name is None else target.model_copy(update={"target": name})


def decided_report(**fields: Any) -> Report:
    """A report built by hand, with the run's verdict and exit code its targets' gate verdicts give."""
    verdict, exit_code = run_outcome(fields["targets"])
    return Report(**fields, verdict=verdict, exit_code=exit_code)


@dataclass(frozen=True)
class IssuedCert:
    cert: Path  # leaf then issuer, as a server sends them
    key: Path
    ca: Path
    leaf: Any  # cryptography.x509.Certificate


def issue_certificate(
    directory: Path,
    name: str,
    *,
    key_type: str = "rsa3072",
    eku: list[Any] | None = None,
    days: int = 365,
    sans: tuple[str, ...] = ("localhost", "127.0.0.1"),
) -> IssuedCert:
    """A CA (``CN={name} test CA``) and a leaf it issued, with the key type, EKU and validity a test asks for."""
    now = dt.datetime.now(dt.UTC)
    ca_name = pki.name(f"{name} test CA", organization=None)
    ca = pki.issue(ca_name, ca=True, not_before=now - dt.timedelta(days=1), days=3651)
    leaf = pki.issue(
        pki.name(name), issuer=ca, key=pki.new_key(key_type), not_before=now - dt.timedelta(minutes=1), days=days,
        sans=sans, eku=eku,
    )  # fmt: skip
    cert_path, key_path = leaf.write(directory, name, chain=[ca])
    ca_path = directory / f"{name}-ca.pem"
    ca_path.write_bytes(ca.pem)
    return IssuedCert(cert_path, key_path, ca_path, leaf.cert)


def loopback_endpoint(
    port: int,
    *,
    host: str = "127.0.0.1",
    server_name: str | None = None,
    timeout: float = 3.0,
    credentials: Any = None,
) -> Any:
    """An ``Endpoint`` for a server on loopback, as the probe stage would hand it to a probe (no SNI by default)."""
    from scanner.probe.connect.endpoint import Endpoint  # noqa: PLC0415 - keeps this module importable on its own
    from scanner.targets import parse_target  # noqa: PLC0415

    target = parse_target(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    return Endpoint(target=target, address=host, server_name=server_name, timeout=timeout, credentials=credentials)


@dataclass(frozen=True)
class ClientPki:
    """A client CA and a client certificate it issued (EKU clientAuth), in every form a user may hold them."""

    ca: Path  # the client CA certificate, PEM: what an mTLS server trusts (s_server -CAfile)
    ca_name: str  # the CA's subject, RFC 4514: what the server sends as an acceptable CA name
    cert: Path  # client certificate then the CA, PEM
    key: Path  # its key, unencrypted PKCS#8 PEM
    encrypted_key: Path  # the same key, PKCS#8 PEM encrypted with ``password``
    combined: Path  # certificate, CA and unencrypted key in one PEM file
    p12: Path  # key, certificate and CA as PKCS#12 encrypted with ``password``
    password: str


def client_pki(directory: Path, password: str = "correct horse battery staple") -> ClientPki:  # noqa: S107 - a test PKI
    """Make a client PKI; the CA's name needs RFC 4514 escaping and is not ASCII."""
    from cryptography.hazmat.primitives.serialization import pkcs12  # noqa: PLC0415 - only mTLS tests need it

    now = dt.datetime.now(dt.UTC)
    ca = pki.issue(
        pki.name("tlsgate client CA", "Müller, Schmidt & Co", country="DE"), ca=True,
        not_before=now - dt.timedelta(days=1), days=3651,
    )  # fmt: skip
    client = pki.issue(  # from a minute ago until 30 days from now
        pki.name("tlsgate test client", organization=None), issuer=ca, not_before=now - dt.timedelta(minutes=1),
        days=30 + 1 / 1440, eku=pki.CLIENT_AUTH,
    )  # fmt: skip
    cert, key = client.write(directory, "client", chain=[ca])
    files = ClientPki(
        ca=directory / "client-ca.pem",
        ca_name=ca.cert.subject.rfc4514_string(),
        cert=cert,
        key=key,
        encrypted_key=directory / "client-key-encrypted.pem",
        combined=directory / "client-combined.pem",
        p12=directory / "client.p12",
        password=password,
    )
    encryption = serialization.BestAvailableEncryption(password.encode())
    files.ca.write_bytes(ca.pem)
    files.encrypted_key.write_bytes(client.key.private_bytes(pki.PEM, serialization.PrivateFormat.PKCS8, encryption))
    files.combined.write_bytes(client.pem + ca.pem + client.key_pem)
    files.p12.write_bytes(
        pkcs12.serialize_key_and_certificates(b"tlsgate test client", client.key, client.cert, [ca.cert], encryption)
    )
    return files


@contextlib.contextmanager
def gnutls_server(cert: Path, key: Path, *args: str) -> Iterator[int]:
    """``gnutls-serv`` on a free port (it listens on every local address; tests only connect to 127.0.0.1);
    yields the port once it accepts connections."""
    gnutls = shutil.which("gnutls-serv")
    assert gnutls, "gnutls-serv is required (apt-get install gnutls-bin)"
    port = free_port()
    command = [gnutls, "--x509certfile", str(cert), "--x509keyfile", str(key), "-p", str(port), "--quiet",
               "--http", "--disable-client-cert", *args]  # fmt: skip
    with server_process(command, port, "gnutls-serv"):
        yield port


@dataclass(frozen=True)
class SslyzeSuites:
    accepted: set[str]  # IANA names sslyze saw accepted
    tested: set[str]  # every suite sslyze offered (accepted or rejected)
    dh_bits: dict[str, int]  # size of the server's DH prime, for each accepted DHE suite


def sslyze_cipher_suites(port: int, server_name: str = "localhost") -> dict[str, SslyzeSuites]:
    """sslyze's own cipher suite scan of 127.0.0.1:port, SSLv3 to TLS 1.3, keyed by our version names."""
    from sslyze import ScanCommand  # noqa: PLC0415 - only the comparison tests need sslyze's API

    commands = {
        "SSLv3": ScanCommand.SSL_3_0_CIPHER_SUITES,
        "TLSv1.0": ScanCommand.TLS_1_0_CIPHER_SUITES,
        "TLSv1.1": ScanCommand.TLS_1_1_CIPHER_SUITES,
        "TLSv1.2": ScanCommand.TLS_1_2_CIPHER_SUITES,
        "TLSv1.3": ScanCommand.TLS_1_3_CIPHER_SUITES,
    }
    result = sslyze_scan_result(port, set(commands.values()), server_name)
    found: dict[str, SslyzeSuites] = {}
    for version, command in commands.items():
        attempt = getattr(result.scan_result, command.value)
        assert attempt.result is not None, f"sslyze {version}: {attempt.error_trace}"
        accepted = {s.cipher_suite.name for s in attempt.result.accepted_cipher_suites}
        rejected = {s.cipher_suite.name for s in attempt.result.rejected_cipher_suites}
        dh_bits = {
            s.cipher_suite.name: s.ephemeral_key.size
            for s in attempt.result.accepted_cipher_suites
            if type(s.ephemeral_key).__name__ == "DhEphemeralKeyInfo"
        }
        found[version] = SslyzeSuites(accepted=accepted, tested=accepted | rejected, dh_bits=dh_bits)
    return found


def sslyze_scan_result(port: int, commands: set[Any], server_name: str = "localhost") -> Any:
    """sslyze's scan of 127.0.0.1:port with these scan commands (5 connections at most): its one ServerScanResult,
    asserted complete."""
    from sslyze import (  # noqa: PLC0415 - only the comparison tests need sslyze's API
        Scanner,
        ServerNetworkConfiguration,
        ServerNetworkLocation,
        ServerScanRequest,
        ServerScanStatusEnum,
    )

    request = ServerScanRequest(
        server_location=ServerNetworkLocation(hostname="127.0.0.1", port=port, ip_address="127.0.0.1"),
        network_configuration=ServerNetworkConfiguration(tls_server_name_indication=server_name, network_timeout=5),
        scan_commands=commands,
    )
    scanner = Scanner(per_server_concurrent_connections_limit=5)
    scanner.queue_scans([request])
    (result,) = list(scanner.get_results())
    assert result.scan_status == ServerScanStatusEnum.COMPLETED, result.connectivity_error_trace
    return result


def sslyze_certificate_deployment(port: int, server_name: str = "localhost") -> Any:
    """sslyze's certificate scan of 127.0.0.1:port: its first certificate deployment (the chain as received and the
    stapled OCSP response), asserted complete."""
    from sslyze import ScanCommand  # noqa: PLC0415 - only the comparison tests need sslyze's API

    attempt = sslyze_scan_result(port, {ScanCommand.CERTIFICATE_INFO}, server_name).scan_result.certificate_info
    assert attempt.result is not None, attempt.error_trace
    return attempt.result.certificate_deployments[0]


@dataclass
class HelloFilterProxy:
    port: int
    hello_lengths: list[int]  # bytes of each ClientHello received, in order
    actions: list[str]  # what the proxy did with each


def _read_client_hello(conn: socket.socket) -> bytes:
    data = b""
    while True:
        while len(data) < 5 or len(data) < 5 + int.from_bytes(data[3:5], "big"):
            chunk = conn.recv(65536)
            if not chunk:
                return data
            data += chunk
        # Whole records are in; the ClientHello may span several (it never does for our hellos).
        body = b""
        pos = 0
        while pos + 5 <= len(data):
            length = int.from_bytes(data[pos + 3 : pos + 5], "big")
            body += data[pos + 5 : pos + 5 + length]
            pos += 5 + length
        if len(body) >= 4 and len(body) >= 4 + int.from_bytes(body[1:4], "big"):
            return data
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk


def _pipe(client: socket.socket, upstream: socket.socket) -> None:
    import select  # noqa: PLC0415

    sockets = [client, upstream]
    while True:
        readable, _, _ = select.select(sockets, [], [], 5)
        if not readable:
            return
        for sock in readable:
            other = upstream if sock is client else client
            data = sock.recv(65536)
            if not data:
                return
            other.sendall(data)


@contextlib.contextmanager
def hello_filter_proxy(upstream_port: int, decide: Any) -> Iterator[HelloFilterProxy]:
    """A loopback proxy in front of a real server that reads each ClientHello and, as ``decide(hello) -> str`` says,
    forwards the connection ("forward") or fails the way fragile servers do: "reset" (TCP RST), "close" (FIN),
    "alert" (a fatal decode_error alert) or "silent" (holds the connection and says nothing)."""
    import struct  # noqa: PLC0415
    import threading  # noqa: PLC0415

    release = threading.Event()
    lock = threading.Lock()
    proxy = HelloFilterProxy(port=0, hello_lengths=[], actions=[])

    def handle(conn: socket.socket) -> None:
        hello = _read_client_hello(conn)
        action = str(decide(hello))
        with lock:
            proxy.hello_lengths.append(len(hello))
            proxy.actions.append(action)
        if action == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif action == "alert":
            conn.sendall(bytes([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 50]))
        elif action == "silent":
            release.wait(60)
        elif action == "forward":
            with socket.create_connection(("127.0.0.1", upstream_port), timeout=5) as upstream:
                upstream.sendall(hello)
                _pipe(conn, upstream)

    with LoopbackServer(handle) as server:
        proxy.port = server.port
        try:
            yield proxy
        finally:
            release.set()
