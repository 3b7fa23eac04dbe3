"""--starttls for every protocol besides SMTP (test_connect_options.py has SMTP): a loopback server speaks the
protocol's plaintext upgrade as its RFC describes it, then does a real TLS 1.3 handshake with Python's ssl module.
Both tlsgate's own probes and sslyze's (the certificate) go through the upgrade, so a scan only reads as complete
when both upgrades worked."""

from __future__ import annotations

import json
import socket
import ssl
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from scanner.demo import LoopbackServer
from scanner.exitcodes import ExitCode
from tests.helpers import ServerFiles, run_tlsgate, server_context

Upgrade = Callable[[socket.socket], bool]  # True: the client asked to upgrade and was told to go ahead


def _lines(conn: socket.socket) -> list[bytes]:
    """The next line the client sent (a list, empty when it closed)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(1)
        if not chunk:
            return []
        data += chunk
    return [data.strip()]


def _line_upgrade(greeting: bytes, command: bytes, go_ahead: bytes, refusal: bytes, *, tagged: bool = False) -> Upgrade:
    """A line protocol's upgrade: greet, refuse every line but ``command``, answer that with ``go_ahead``.
    ``tagged`` (IMAP): each line starts with the client's tag, which the answer repeats in front of it."""

    def upgrade(conn: socket.socket) -> bool:
        conn.sendall(greeting)
        while line := _lines(conn):
            tag, _, said = line[0].partition(b" ") if tagged else (b"", b"", line[0])
            if said.upper() == command:
                conn.sendall(tag + go_ahead)
                return True
            conn.sendall(tag + refusal)
        return False

    return upgrade


imap = _line_upgrade(  # RFC 3501 6.2.1
    b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n", b"STARTTLS", b" OK Begin TLS negotiation now\r\n",
    b" BAD unexpected\r\n", tagged=True,
)  # fmt: skip
pop3 = _line_upgrade(  # RFC 2595 4
    b"+OK POP3 ready\r\n", b"STLS", b"+OK Begin TLS negotiation\r\n", b"-ERR unexpected\r\n"
)
ftp = _line_upgrade(  # RFC 4217 4
    b"220-welcome\r\n220 FTP ready\r\n", b"AUTH TLS", b"234 AUTH TLS successful\r\n", b"502 unexpected\r\n"
)


def _xmpp(namespace: bytes) -> Upgrade:  # RFC 6120 5.4
    def upgrade(conn: socket.socket) -> bool:
        data = b""
        while b"<stream:stream" not in data or not data.rstrip().endswith(b">"):
            chunk = conn.recv(4096)
            if not chunk:
                return False
            data += chunk
        assert b"xmlns='" + namespace + b"'" in data
        conn.sendall(
            b"<?xml version='1.0'?><stream:stream xmlns='" + namespace + b"' xmlns:stream="
            b"'http://etherx.jabber.org/streams' id='1' version='1.0'><stream:features><starttls "
            b"xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"
        )
        data = b""
        while b"<starttls" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return False
            data += chunk
        conn.sendall(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        return True

    return upgrade


LDAP_STARTTLS_OID = b"1.3.6.1.4.1.1466.20037"


def ldap(conn: socket.socket) -> bool:  # RFC 4511 4.14
    request = conn.recv(4096)
    if LDAP_STARTTLS_OID not in request:
        return False
    # ExtendedResponse, messageID 1: resultCode success, empty matchedDN and diagnosticMessage
    conn.sendall(bytes.fromhex("300c02010178070a010004000400"))
    return True


def postgres(conn: socket.socket) -> bool:  # PostgreSQL protocol 53.2.10, SSLRequest
    request = conn.recv(8, socket.MSG_WAITALL)
    if request != struct.pack("!II", 8, 80877103):
        return False
    conn.sendall(b"S")
    return True


PROTOCOLS: dict[str, Upgrade] = {
    "imap": imap,
    "pop3": pop3,
    "ftp": ftp,
    "xmpp": _xmpp(b"jabber:client"),
    "xmpp-server": _xmpp(b"jabber:server"),
    "ldap": ldap,
    "postgres": postgres,
}


def starttls_server(upgrade: Upgrade, context: ssl.SSLContext) -> Callable[[socket.socket], None]:
    def handle(conn: socket.socket) -> None:
        if not upgrade(conn):
            return
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.settimeout(2)
            tls.recv(1024)

    return handle


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_starttls_upgrade_then_tls(protocol: str, pki: ServerFiles, tmp_path: Path) -> None:
    context = server_context(pki, ssl.TLSVersion.TLSv1_3)
    report = tmp_path / "r.json"
    with LoopbackServer(starttls_server(PROTOCOLS[protocol], context)) as server:
        run = run_tlsgate("scan", server.target, "--pack", "tls13-only", "--starttls", protocol, "--timeout", "3",
                          "--json", str(report))  # fmt: skip
    assert run.code == ExitCode.OK, run.stdout + run.stderr
    facts = json.loads(report.read_text())["targets"][0]["facts"]
    assert facts["target"]["starttls"] == protocol
    assert [p["version"] for p in facts["protocols"] if p["status"] == "accepted"] == ["TLSv1.3"]
    assert facts["certificate"]["status"] == "ok", facts["certificate"]  # sslyze's own upgrade worked too


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_starttls_against_a_service_that_does_not_upgrade(protocol: str, tmp_path: Path) -> None:
    """A plain HTTP server behind --starttls PROTOCOL: the upgrade fails (or is never offered), exit 3."""

    def http(conn: socket.socket) -> None:
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    report = tmp_path / "r.json"
    with LoopbackServer(http) as server:
        run = run_tlsgate("scan", server.target, "--starttls", protocol, "--timeout", "2", "--json", str(report))
    assert run.code == ExitCode.NOT_CHECKED, run.stdout + run.stderr
    error = json.loads(report.read_text())["targets"][0]["facts"]["error"]
    # The server speaks first in FTP, IMAP and POP3: an HTTP server waits for a request and never greets.
    expected = "timeout" if protocol in ("ftp", "imap", "pop3") else "starttls_failed"
    assert error["error_class"] == expected, error
    assert f"{protocol} " in error["message"], error
    assert "Traceback" not in run.stderr
