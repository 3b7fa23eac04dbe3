"""Connection options against real servers: SNI override and none, a given IP, every address, STARTTLS."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from collections.abc import Iterator

import pytest

from scanner.demo import LoopbackServer
from scanner.facts import ProtocolVersion
from scanner.probe.options import ConnectOptions, ProbeOptions
from scanner.probe.run import probe_targets
from scanner.targets import parse_target
from tests.helpers import ServerFiles, server_context


@contextlib.contextmanager
def sni_recording_server(pki: ServerFiles) -> Iterator[tuple[LoopbackServer, list[str | None]]]:
    """A TLS 1.2+1.3 server that records the SNI of every handshake."""
    seen: list[str | None] = []
    lock = threading.Lock()
    context = server_context(pki, ssl.TLSVersion.TLSv1_2)

    def record(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        with lock:
            seen.append(name)

    context.sni_callback = record  # type: ignore[assignment]

    def handle(conn: socket.socket) -> None:
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.settimeout(2)
            with contextlib.suppress(OSError):
                tls.recv(1024)

    with LoopbackServer(handle) as server:
        yield server, seen


def test_sni_override(tlsgate, pki, tmp_path):
    """--sni sends the given name in every handshake and the facts record it."""
    with sni_recording_server(pki) as (server, seen):
        run = tlsgate(
            "scan", f"localhost:{server.port}", "--sni", "api.partner.example", "--json", str(tmp_path / "r.json")
        )
    assert run.code in (0, 1), run.stderr
    # SSL 3.0 hellos carry no extensions, hence None beside the override; never the host name itself
    assert "api.partner.example" in seen and set(seen) <= {"api.partner.example", None}
    facts = json.loads((tmp_path / "r.json").read_text())["targets"][0]["facts"]
    assert facts["target"]["server_name"] == "api.partner.example"


def test_no_sni(tlsgate, pki, tmp_path):
    """--no-sni keeps the host name out of the handshakes; tlsgate's own probes send no SNI at all."""
    with sni_recording_server(pki) as (server, seen):
        run = tlsgate("scan", f"localhost:{server.port}", "--no-sni", "--json", str(tmp_path / "r.json"))
    assert run.code in (0, 1), run.stderr
    assert "localhost" not in seen
    assert None in seen
    facts = json.loads((tmp_path / "r.json").read_text())["targets"][0]["facts"]
    assert facts["target"]["server_name"] is None


def test_connect_to_given_ip_with_name_as_sni(tlsgate, pki, tmp_path):
    """--ip connects to the address while the name (not the address) is the SNI."""
    with sni_recording_server(pki) as (server, seen):
        run = tlsgate(
            "scan", f"unresolvable-name.invalid:{server.port}", "--ip", "127.0.0.1", "--json", str(tmp_path / "r.json")
        )
    assert run.code in (0, 1), run.stderr
    assert "unresolvable-name.invalid" in seen
    target = json.loads((tmp_path / "r.json").read_text())["targets"][0]["facts"]["target"]
    assert (target["ip_address"], target["server_name"]) == ("127.0.0.1", "unresolvable-name.invalid")


def test_bad_ip_option_is_usage_error(tlsgate):
    """--ip with something that is not an address exits 2 before scanning."""
    run = tlsgate("scan", "example.invalid", "--ip", "not-an-ip")
    assert run.code == 2 and "not an IP address" in run.stderr


def test_all_addresses_scans_each_address(pki, monkeypatch):
    """--all-addresses gives one result per address of a name: here 127.0.0.1 (TLS 1.2+1.3) and ::1 (TLS 1.3)."""
    try:
        v6 = socket.socket(socket.AF_INET6)
        v6.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    port = v6.getsockname()[1]
    v4 = socket.socket(socket.AF_INET)
    v4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    v4.bind(("127.0.0.1", port))
    real_getaddrinfo = socket.getaddrinfo

    def dual_stack(host, *args, **kwargs):
        # The name resolves to both loopback addresses, as a dual-stack service name would.
        if host == "dual.test":
            return real_getaddrinfo("127.0.0.1", *args, **kwargs) + real_getaddrinfo("::1", *args, **kwargs)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", dual_stack)
    with contextlib.ExitStack() as stack:
        for sock, minimum in ((v4, ssl.TLSVersion.TLSv1_2), (v6, ssl.TLSVersion.TLSv1_3)):
            sock.listen(64)
            stack.callback(sock.close)
            stack.enter_context(_serve(sock, server_context(pki, minimum)))
        facts = probe_targets(
            [(parse_target(f"dual.test:{port}"), ConnectOptions(all_addresses=True))],
            ProbeOptions(timeout=3),
        )
    by_ip = {f.target.ip_address: f for f in facts}
    assert set(by_ip) == {"127.0.0.1", "::1"}
    assert {f.target.input for f in facts} == {f"dual.test:{port} @ 127.0.0.1", f"dual.test:{port} @ ::1"}
    assert all(f.target.server_name == "dual.test" for f in facts)
    assert by_ip["::1"].accepted_versions() == [ProtocolVersion.TLSv1_3]
    assert by_ip["127.0.0.1"].accepted_versions() == [ProtocolVersion.TLSv1_2, ProtocolVersion.TLSv1_3]


@contextlib.contextmanager
def _serve(sock: socket.socket, context: ssl.SSLContext) -> Iterator[None]:
    stop = threading.Event()

    def loop() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=_handshake, args=(conn, context), daemon=True).start()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def _handshake(conn: socket.socket, context: ssl.SSLContext) -> None:
    with contextlib.suppress(Exception), conn:
        conn.settimeout(5)
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1)


def smtp_starttls_handler(context: ssl.SSLContext):
    """A minimal SMTP server: greeting, EHLO advertising STARTTLS, then a real TLS handshake."""

    def handle(conn: socket.socket) -> None:
        conn.sendall(b"220 mail.test ESMTP ready\r\n")
        reader = conn.makefile("rb")
        while True:
            line = reader.readline()
            if not line:
                return
            command = line.strip().upper()
            if command.startswith((b"EHLO", b"HELO")):
                conn.sendall(b"250-mail.test\r\n250-SIZE 1000000\r\n250 STARTTLS\r\n")
            elif command == b"STARTTLS":
                conn.sendall(b"220 2.0.0 Ready to start TLS\r\n")
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.settimeout(2)
                    with contextlib.suppress(OSError):
                        tls.recv(1024)
                return
            elif command == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            else:
                conn.sendall(b"502 unknown\r\n")

    return handle


def test_smtp_starttls(tlsgate, pki, tmp_path):
    """--starttls smtp upgrades the plaintext session and then scans TLS as usual."""
    context = server_context(pki, ssl.TLSVersion.TLSv1_3)
    with LoopbackServer(smtp_starttls_handler(context)) as server:
        run = tlsgate(
            "scan", server.target, "--pack", "tls13-only", "--starttls", "smtp", "--json", str(tmp_path / "r.json")
        )
    assert run.code == 0, run.stdout + run.stderr
    facts = json.loads((tmp_path / "r.json").read_text())["targets"][0]["facts"]
    assert facts["target"]["starttls"] == "smtp"
    assert [p["version"] for p in facts["protocols"] if p["status"] == "accepted"] == ["TLSv1.3"]


def _ssh_banner(conn: socket.socket) -> None:
    conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
    conn.recv(1024)


def test_starttls_refused(tlsgate, tmp_path):
    """A plaintext service that is not SMTP is starttls_failed, quoting what it said, not a crash."""
    with LoopbackServer(_ssh_banner) as server:
        run = tlsgate("scan", server.target, "--starttls", "smtp", "--timeout", "2", "--json", str(tmp_path / "r.json"))
    assert run.code == 3
    facts = json.loads((tmp_path / "r.json").read_text())["targets"][0]["facts"]
    assert facts["error"]["error_class"] == "starttls_failed"
    assert "SSH-2.0" in facts["error"]["message"]
