"""Plaintext preambles that upgrade a connection to TLS (STARTTLS and friends).

Every probe connects through ``Endpoint.connect()``, which runs the preamble here first, so all probes
work on STARTTLS services, not only sslyze's.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from enum import StrEnum


class StartTls(StrEnum):
    smtp = "smtp"
    imap = "imap"
    pop3 = "pop3"
    ftp = "ftp"
    xmpp = "xmpp"
    xmpp_server = "xmpp-server"
    ldap = "ldap"
    postgres = "postgres"


class StartTlsError(Exception):
    """The plaintext side refused or did not understand the upgrade."""


def _read_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise StartTlsError("connection closed during STARTTLS negotiation")
        data += chunk
        if len(data) > 8192:
            raise StartTlsError("over-long line during STARTTLS negotiation")
    return data


def _read_smtp_reply(sock: socket.socket) -> bytes:
    """A possibly multi-line SMTP/FTP reply: lines 'NNN-...' continue, 'NNN ...' ends it."""
    while True:
        line = _read_line(sock)
        if not (line[:3].isdigit() and line[3:4] == b"-"):
            return line


def _expect(reply: bytes, prefix: bytes, step: str) -> None:
    if not reply.startswith(prefix):
        text = reply.decode("ascii", "replace").strip()[:80]
        raise StartTlsError(f"{step}: server answered {text!r}")


def _smtp(sock: socket.socket, host: str) -> None:
    _expect(_read_smtp_reply(sock), b"220", "greeting")
    sock.sendall(f"EHLO {host}\r\n".encode())
    _expect(_read_smtp_reply(sock), b"250", "EHLO")
    sock.sendall(b"STARTTLS\r\n")
    _expect(_read_smtp_reply(sock), b"220", "STARTTLS")


def _ftp(sock: socket.socket, host: str) -> None:
    _expect(_read_smtp_reply(sock), b"220", "greeting")
    sock.sendall(b"AUTH TLS\r\n")
    _expect(_read_smtp_reply(sock), b"234", "AUTH TLS")


def _imap(sock: socket.socket, host: str) -> None:
    _expect(_read_line(sock), b"* OK", "greeting")
    sock.sendall(b"a1 STARTTLS\r\n")
    while True:
        line = _read_line(sock)
        if line.startswith(b"a1 "):
            _expect(line, b"a1 OK", "STARTTLS")
            return


def _pop3(sock: socket.socket, host: str) -> None:
    _expect(_read_line(sock), b"+OK", "greeting")
    sock.sendall(b"STLS\r\n")
    _expect(_read_line(sock), b"+OK", "STLS")


def _read_until(sock: socket.socket, marker: bytes, where: str) -> bytes:
    """Everything up to and including ``marker`` (and whatever came with it); StartTlsError if the peer closes."""
    buffer = b""
    while marker not in buffer:
        chunk = sock.recv(4096)
        if not chunk:
            raise StartTlsError(f"connection closed {where}")
        buffer += chunk
    return buffer


def _xmpp(namespace: str) -> Callable[[socket.socket, str], None]:
    def negotiate(sock: socket.socket, host: str) -> None:
        sock.sendall(
            f"<stream:stream xmlns='{namespace}' xmlns:stream='http://etherx.jabber.org/streams' "
            f"xmlns:tls='http://www.ietf.org/rfc/rfc2595.txt' to='{host}' version='1.0'>".encode()
        )
        features = _read_until(sock, b"</stream:features>", "before XMPP stream features")
        if b"starttls" not in features:
            raise StartTlsError("XMPP server does not offer STARTTLS")
        sock.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        reply = _read_until(sock, b">", "after XMPP starttls")
        if b"<proceed" not in reply:
            raise StartTlsError("XMPP server refused STARTTLS")

    return negotiate


# LDAPv3 ExtendedRequest for StartTLS (OID 1.3.6.1.4.1.1466.20037), message id 1.
_LDAP_STARTTLS = bytes.fromhex("301d02010177188016312e332e362e312e342e312e313436362e3230303337")


def _ldap(sock: socket.socket, host: str) -> None:
    sock.sendall(_LDAP_STARTTLS)
    reply = sock.recv(4096)
    # ExtendedResponse (0x78) with resultCode success: ENUMERATED 0 (0a 01 00)
    if b"\x78" not in reply[:8] or b"\x0a\x01\x00" not in reply:
        raise StartTlsError("LDAP server refused StartTLS")


def _postgres(sock: socket.socket, host: str) -> None:
    sock.sendall(struct.pack("!II", 8, 80877103))  # SSLRequest
    answer = sock.recv(1)
    if answer != b"S":
        raise StartTlsError(f"PostgreSQL server refused SSL (answered {answer!r})")


PREAMBLES: dict[StartTls, Callable[[socket.socket, str], None]] = {
    StartTls.smtp: _smtp,
    StartTls.imap: _imap,
    StartTls.pop3: _pop3,
    StartTls.ftp: _ftp,
    StartTls.xmpp: _xmpp("jabber:client"),
    StartTls.xmpp_server: _xmpp("jabber:server"),
    StartTls.ldap: _ldap,
    StartTls.postgres: _postgres,
}


def upgrade(sock: socket.socket, protocol: StartTls, host: str) -> None:
    """Run the plaintext preamble on a connected socket; raises StartTlsError or OSError."""
    PREAMBLES[protocol](sock, host)
