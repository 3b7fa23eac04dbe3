"""Plain-text services on a TLS scan: not_tls, with a hint that names the --starttls value to use.

Each server is a real loopback listener that greets (or answers the ClientHello) as the protocol does.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from scanner.demo import LoopbackServer
from scanner.facts import ErrorClass, ProbeError
from scanner.probe.connect.preflight import preflight
from scanner.targets import parse_target

# RFC 4511 4.4.1: an extendedResponse with messageID 0, resultCode protocolError (2) and the notice's OID.
_OID = b"1.3.6.1.4.1.1466.20036"
_NOTICE_BODY = b"\x0a\x01\x02\x04\x00\x04\x00" + b"\x8a" + bytes([len(_OID)]) + _OID
_LDAP_NOTICE = (
    b"\x30" + bytes([5 + len(_NOTICE_BODY)]) + b"\x02\x01\x00\x78" + bytes([len(_NOTICE_BODY)]) + _NOTICE_BODY
)


def _greeter(banner: bytes) -> Callable[[socket.socket], None]:
    """A server that greets on connect, as SMTP, IMAP, POP3 and FTP servers do, then reads what comes."""

    def handle(conn: socket.socket) -> None:
        conn.sendall(banner)
        conn.recv(4096)

    return handle


def _answerer(reply: bytes) -> Callable[[socket.socket], None]:
    """A server that speaks only when spoken to, as XMPP and LDAP servers do, and answers garbage with ``reply``."""

    def handle(conn: socket.socket) -> None:
        conn.recv(4096)
        conn.sendall(reply)

    return handle


XMPP_ERROR = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
    b"version='1.0'><stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
)


@pytest.mark.parametrize(
    ("handler", "hint"),
    [
        (_greeter(b"220 mail.example ESMTP Postfix\r\n"), "SMTP greeting: scan it with --starttls smtp"),
        (_greeter(b"220 (vsFTPd 3.0.5)\r\n"), "FTP greeting: scan it with --starttls ftp"),
        (_greeter(b"220 Service ready\r\n"), "SMTP or FTP greeting: scan it with --starttls smtp or --starttls ftp"),
        (
            _greeter(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] Dovecot ready.\r\n"),
            "IMAP greeting: scan it with --starttls imap",
        ),
        (_greeter(b"+OK Dovecot ready.\r\n"), "POP3 greeting: scan it with --starttls pop3"),
        (_answerer(XMPP_ERROR), "XMPP greeting: scan it with --starttls xmpp or --starttls xmpp-server"),
        (_answerer(_LDAP_NOTICE), "LDAP greeting: scan it with --starttls ldap"),
    ],
    ids=["smtp", "ftp", "smtp-or-ftp", "imap", "pop3", "xmpp", "ldap"],
)
def test_plain_text_service_is_not_tls_with_a_starttls_hint(handler, hint: str) -> None:
    with LoopbackServer(handler) as server:
        result = preflight(parse_target(server.target), 2.0)
    assert isinstance(result, ProbeError) and result.error_class == ErrorClass.not_tls
    assert result.message.endswith(f"; that is a {hint}"), result.message


def test_plain_http_has_no_starttls_hint(http_server) -> None:
    """HTTP has no STARTTLS: the error quotes the server and names no --starttls value."""
    result = preflight(parse_target(http_server.target), 2.0)
    assert isinstance(result, ProbeError) and result.error_class == ErrorClass.not_tls
    assert "HTTP/1.1 400" in result.message and "--starttls" not in result.message


def test_binary_garbage_is_not_taken_for_ldap() -> None:
    """A BER SEQUENCE that is not the notice of disconnection names no protocol."""
    with LoopbackServer(_answerer(b"\x30\x03\x02\x01\x00")) as server:
        result = preflight(parse_target(server.target), 2.0)
    assert isinstance(result, ProbeError) and result.error_class == ErrorClass.not_tls
    assert "--starttls" not in result.message


def test_smtp_banner_hint_in_the_scan_error(tlsgate, tmp_path) -> None:
    """The one-line error of `tlsgate scan` carries the hint, and the exit code stays 3 (not checked)."""
    with LoopbackServer(_greeter(b"220 mx.example ESMTP ready\r\n")) as server:
        run = tlsgate("scan", server.target, "--timeout", "2", "--json", str(tmp_path / "r.json"))
    assert run.code == 3 and "Traceback" not in run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert ": not_tls: " in line and "plain text '220 mx.example ESMTP ready'" in line
    assert line.endswith("scan it with --starttls smtp")
