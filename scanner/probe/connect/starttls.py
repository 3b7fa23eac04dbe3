"""Plaintext preambles that upgrade a connection to TLS (STARTTLS and friends).

Every probe connects through ``Endpoint.connect()``, which runs the preamble here first, so all probes
work on STARTTLS services, not only sslyze's.

A preamble is one step with one ``Deadline``: a server that trickles its greeting a byte at a time, or keeps
a multi-line reply going, cannot hold it past the timeout (``TimeoutError``); one that floods it ends it at
``MAX_DIALOGUE`` bytes (``StartTlsError``), so no reply is ever read into memory unbounded.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from enum import StrEnum

from scanner.probe.connect.deadline import Deadline

MAX_LINE = 8192  # RFC 5321 allows 512 bytes a reply line; servers write longer ones, but not this long
MAX_DIALOGUE = 64 * 1024  # everything a server may send before it agrees to upgrade


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


class _Dialogue:
    """The plaintext side of one connection: reads and writes within one deadline, at most MAX_DIALOGUE read."""

    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
        self.sock = sock
        self.deadline = deadline
        self.buffer = b""
        self.received = 0

    def send(self, data: bytes) -> None:
        self.deadline.sendall(self.sock, data)

    def _more(self, where: str) -> None:
        if self.received >= MAX_DIALOGUE:
            raise StartTlsError(f"the server sent more than {MAX_DIALOGUE // 1024} KiB {where}")
        chunk = self.deadline.recv(self.sock, min(4096, MAX_DIALOGUE - self.received))
        if not chunk:
            raise StartTlsError(f"connection closed {where}")
        self.buffer += chunk
        self.received += len(chunk)

    def line(self) -> bytes:
        while (end := self.buffer.find(b"\n")) < 0:
            if len(self.buffer) > MAX_LINE:
                raise StartTlsError("over-long line during STARTTLS negotiation")
            self._more("during STARTTLS negotiation")
        line, self.buffer = self.buffer[: end + 1], self.buffer[end + 1 :]
        return line

    def until(self, marker: bytes, where: str) -> bytes:
        """Everything up to and including ``marker`` (and whatever came with it)."""
        while marker not in self.buffer:
            self._more(where)
        data, self.buffer = self.buffer, b""
        return data

    def exactly(self, count: int, where: str) -> bytes:
        while len(self.buffer) < count:
            self._more(where)
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data


def _read_smtp_reply(talk: _Dialogue) -> bytes:
    """A possibly multi-line SMTP/FTP reply: lines 'NNN-...' continue, 'NNN ...' ends it."""
    while True:
        line = talk.line()
        if not (line[:3].isdigit() and line[3:4] == b"-"):
            return line


def _expect(reply: bytes, prefix: bytes, step: str) -> None:
    if not reply.startswith(prefix):
        text = reply.decode("ascii", "replace").strip()[:80]
        raise StartTlsError(f"{step}: server answered {text!r}")


def _smtp(talk: _Dialogue, host: str) -> None:
    _expect(_read_smtp_reply(talk), b"220", "greeting")
    talk.send(f"EHLO {host}\r\n".encode())
    _expect(_read_smtp_reply(talk), b"250", "EHLO")
    talk.send(b"STARTTLS\r\n")
    _expect(_read_smtp_reply(talk), b"220", "STARTTLS")


def _ftp(talk: _Dialogue, host: str) -> None:
    _expect(_read_smtp_reply(talk), b"220", "greeting")
    talk.send(b"AUTH TLS\r\n")
    _expect(_read_smtp_reply(talk), b"234", "AUTH TLS")


def _imap(talk: _Dialogue, host: str) -> None:
    _expect(talk.line(), b"* OK", "greeting")
    talk.send(b"a1 STARTTLS\r\n")
    while True:
        line = talk.line()
        if line.startswith(b"a1 "):
            _expect(line, b"a1 OK", "STARTTLS")
            return


def _pop3(talk: _Dialogue, host: str) -> None:
    _expect(talk.line(), b"+OK", "greeting")
    talk.send(b"STLS\r\n")
    _expect(talk.line(), b"+OK", "STLS")


def _xmpp(namespace: str) -> Callable[[_Dialogue, str], None]:
    def negotiate(talk: _Dialogue, host: str) -> None:
        talk.send(
            f"<stream:stream xmlns='{namespace}' xmlns:stream='http://etherx.jabber.org/streams' "
            f"xmlns:tls='http://www.ietf.org/rfc/rfc2595.txt' to='{host}' version='1.0'>".encode()
        )
        features = talk.until(b"</stream:features>", "before XMPP stream features")
        if b"starttls" not in features:
            raise StartTlsError("XMPP server does not offer STARTTLS")
        talk.send(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        reply = talk.until(b">", "after XMPP starttls")
        if b"<proceed" not in reply:
            raise StartTlsError("XMPP server refused STARTTLS")

    return negotiate


# LDAPv3 ExtendedRequest for StartTLS (OID 1.3.6.1.4.1.1466.20037), message id 1.
_LDAP_STARTTLS = bytes.fromhex("301d02010177188016312e332e362e312e342e312e313436362e3230303337")


def _ldap_message(talk: _Dialogue) -> bytes:
    """One whole BER-encoded LDAPMessage (a SEQUENCE), however slowly it arrives."""
    where = "during LDAP StartTLS"
    header = talk.exactly(2, where)
    if header[0] != 0x30:
        raise StartTlsError(f"LDAP server answered bytes {header.hex(' ')}, not an LDAP message")
    length = header[1]
    if length & 0x80:
        size = length & 0x7F
        if not 1 <= size <= 3:
            raise StartTlsError("LDAP server answered with an unreadable message length")
        length = int.from_bytes(talk.exactly(size, where), "big")
        header += length.to_bytes(size, "big")
    return header + talk.exactly(length, where)


def _ldap(talk: _Dialogue, host: str) -> None:
    talk.send(_LDAP_STARTTLS)
    reply = _ldap_message(talk)
    # ExtendedResponse (0x78) with resultCode success: ENUMERATED 0 (0a 01 00)
    if b"\x78" not in reply[:8] or b"\x0a\x01\x00" not in reply:
        raise StartTlsError("LDAP server refused StartTLS")


def _postgres(talk: _Dialogue, host: str) -> None:
    talk.send(struct.pack("!II", 8, 80877103))  # SSLRequest
    answer = talk.exactly(1, "after the PostgreSQL SSLRequest")
    if answer != b"S":
        raise StartTlsError(f"PostgreSQL server refused SSL (answered {answer!r})")


PREAMBLES: dict[StartTls, Callable[[_Dialogue, str], None]] = {
    StartTls.smtp: _smtp,
    StartTls.imap: _imap,
    StartTls.pop3: _pop3,
    StartTls.ftp: _ftp,
    StartTls.xmpp: _xmpp("jabber:client"),
    StartTls.xmpp_server: _xmpp("jabber:server"),
    StartTls.ldap: _ldap,
    StartTls.postgres: _postgres,
}


def upgrade(sock: socket.socket, protocol: StartTls, host: str, deadline: Deadline) -> None:
    """Run the plaintext preamble on a connected socket within ``deadline``; raises StartTlsError, TimeoutError
    when the deadline passes, or another OSError."""
    PREAMBLES[protocol](_Dialogue(sock, deadline), host)
