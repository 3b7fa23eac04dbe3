"""Hostile servers on loopback: each one fails a TLS client one way, at one step, on purpose.

``hostile_server(behaviour)`` serves ``behaviour`` (a name from ``BEHAVIOURS`` or ``starttls_behaviour(...)``) on
127.0.0.1 until the ``with`` block ends; every connection gets the same treatment. The servers are a few lines of
raw sockets each: refuse, reset, stay silent, trickle one byte at a time, cut a ServerHello short, send garbage,
alerts or a flood, greet in plain text, or drag a STARTTLS dialogue on without end.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

# A ServerHello for TLS 1.2 (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, no extensions) in one record: well formed,
# so a client reading it slowly is reading a real answer.
_HELLO_BODY = struct.pack("!H", 0x0303) + bytes(32) + b"\x00" + struct.pack("!HB", 0xC02F, 0) + b"\x00\x00"
SERVER_HELLO = (
    b"\x16\x03\x03"
    + struct.pack("!H", 4 + len(_HELLO_BODY))
    + b"\x02"
    + len(_HELLO_BODY).to_bytes(3, "big")
    + _HELLO_BODY
)
GARBAGE = bytes(range(1, 64))  # no TLS record starts with 0x01, and it is not text either
ALERTS = {"handshake_failure": 40, "protocol_version": 70, "internal_error": 80}
SMTP_BANNER = b"220 mail.example ESMTP Postfix\r\n"

Handler = Callable[[socket.socket, threading.Event], None]


@dataclass
class HostileServer:
    host: str
    port: int
    behaviour: str
    connections: int = 0

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"


# --- the steps a behaviour is made of -------------------------------------------------------------------------


def read_record(conn: socket.socket) -> bytes:
    """What the client sent first, up to the end of its first TLS record (or whatever it sent, if not TLS)."""
    data = b""
    while len(data) < 5 or len(data) < 5 + int.from_bytes(data[3:5], "big"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
        if data[:1] != b"\x16":
            break
    return data


def read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def reset(conn: socket.socket) -> None:
    """Close with a TCP RST instead of a FIN."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def hold(conn: socket.socket, stop: threading.Event) -> None:
    """Keep the connection open and say nothing until the server stops."""
    stop.wait()


def trickle(conn: socket.socket, stop: threading.Event, data: bytes, interval: float) -> None:
    """Send ``data`` one byte every ``interval`` seconds: a slow-loris that never lets a read time out."""
    for byte in data:
        if stop.wait(interval):
            return
        conn.sendall(bytes([byte]))
    hold(conn, stop)


def flood(conn: socket.socket, stop: threading.Event, prefix: bytes, unit: bytes) -> None:
    """Send ``prefix``, then ``unit`` again and again, as fast as the client reads, until it hangs up."""
    conn.sendall(prefix)
    block = unit * max(1, 16384 // len(unit))
    while not stop.is_set():
        conn.sendall(block)


def _alert(description: int) -> bytes:
    return bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, description])


def _after_hello(then: Handler) -> Handler:
    def handle(conn: socket.socket, stop: threading.Event) -> None:
        read_record(conn)
        then(conn, stop)

    return handle


def _send_then(data: bytes, then: Handler) -> Handler:
    def handle(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(data)
        then(conn, stop)

    return handle


def _close(conn: socket.socket, stop: threading.Event) -> None:
    conn.close()


def _reset(conn: socket.socket, stop: threading.Event) -> None:
    reset(conn)


def _trickle(data: bytes, interval: float) -> Handler:
    return lambda conn, stop: trickle(conn, stop, data, interval)


def _flood(prefix: bytes, unit: bytes) -> Handler:
    return lambda conn, stop: flood(conn, stop, prefix, unit)


# A handshake message that claims 16 MiB, continued by record after record for ever.
_ENDLESS_RECORD = b"\x16\x03\x03\x40\x00" + bytes(0x4000)
_ENDLESS_HELLO = b"\x16\x03\x03\x40\x00\x02\xff\xff\xff" + bytes(0x4000 - 4)


def behaviours(interval: float) -> dict[str, Handler]:
    """Every hostile TLS behaviour by name; ``interval`` paces the trickles."""
    half = SERVER_HELLO[: len(SERVER_HELLO) // 2]
    table: dict[str, Handler] = {
        "reset_on_accept": _reset,
        "accept_close": _close,
        "reset_after_hello": _after_hello(_reset),
        "silent_after_accept": hold,
        "silent_after_hello": _after_hello(hold),
        "silent_after_server_hello": _after_hello(_send_then(SERVER_HELLO, hold)),
        "trickle_handshake": _after_hello(_trickle(SERVER_HELLO, interval)),
        "truncated_hello_close": _after_hello(_send_then(half, _close)),
        "truncated_hello_silent": _after_hello(_send_then(half, hold)),
        "garbage": _after_hello(_send_then(GARBAGE, _close)),
        "flood_garbage": _after_hello(_flood(GARBAGE, GARBAGE)),
        "flood_records": _after_hello(_flood(_ENDLESS_HELLO, _ENDLESS_RECORD)),
        "plaintext_banner": _send_then(SMTP_BANNER, hold),
    }
    for name, code in ALERTS.items():
        table[f"alert_{name}"] = _after_hello(_send_then(_alert(code), _close))
    return table


BEHAVIOURS = (*behaviours(1.0), "refused")


# --- STARTTLS dialogues that never reach "go ahead" -----------------------------------------------------------

STARTTLS_PROTOCOLS = ("smtp", "imap", "pop3", "ftp", "xmpp", "ldap", "postgres")
_XMPP_FEATURES = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
    b"id='1' version='1.0'><stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>"
)
_LDAP_SUCCESS = bytes.fromhex("300c02010178070a010004000400")  # ExtendedResponse, resultCode success


def starttls_behaviour(protocol: str, how: str) -> str:
    """The name of a STARTTLS behaviour: ``how`` is "trickle" (the server's part arrives a byte at a time) or
    "endless" (it never ends: continuation lines, an unclosed stream, an endless message)."""
    return f"starttls_{how}_{protocol}"


def _starttls(protocol: str, how: str, interval: float) -> Handler:
    def slow(data: bytes) -> Handler:
        return _trickle(data, interval)

    def read_then(read: Callable[[socket.socket], bytes], then: Handler) -> Handler:
        def handle(conn: socket.socket, stop: threading.Event) -> None:
            read(conn)
            then(conn, stop)

        return handle

    def recv_some(conn: socket.socket) -> bytes:
        return conn.recv(4096)

    endless = how == "endless"
    table: dict[str, Handler] = {
        # Greeting protocols: the greeting trickles, or goes on with continuation lines for ever.
        "smtp": _flood(b"", b"220-still greeting\r\n") if endless else slow(b"220 mail.example ESMTP\r\n"),
        "ftp": _flood(b"", b"220-welcome, still\r\n") if endless else slow(b"220 FTP ready\r\n"),
        "imap": (
            _send_then(b"* OK IMAP4rev1 ready\r\n", read_then(read_line, _flood(b"", b"* OK still thinking\r\n")))
            if endless
            else slow(b"* OK IMAP4rev1 ready\r\n")
        ),
        "pop3": _flood(b"+OK POP3 ready ", b"and still going ") if endless else slow(b"+OK POP3 ready\r\n"),
        # Client-first protocols: the answer to the client's opening trickles, or never ends.
        "xmpp": read_then(
            recv_some,
            _flood(_XMPP_FEATURES[: -len(b"</stream:features>")], b"<feature/>") if endless else slow(_XMPP_FEATURES),
        ),
        "ldap": read_then(recv_some, _flood(b"\x30\x83\xff\xff\xff", b"\x04\x00") if endless else slow(_LDAP_SUCCESS)),
        # PostgreSQL answers the SSLRequest with one byte: slow is no answer in time, endless an error that goes on.
        "postgres": read_then(recv_some, _flood(b"E", b"SFATAL ") if endless else hold),
    }
    return table[protocol]


# --- what a scanner should make of each ----------------------------------------------------------------------

# The error class each behaviour earns from the preflight, which decides the target's class; None for the alerts:
# a TLS peer refusing this offer, which the probes go on to tell versions apart by.
PREFLIGHT_CLASS: dict[str, str | None] = {
    "refused": "refused",
    "reset_on_accept": "reset",
    "accept_close": "reset",
    "reset_after_hello": "reset",
    "silent_after_accept": "timeout",
    "silent_after_hello": "timeout",
    "silent_after_server_hello": "timeout",
    "trickle_handshake": "timeout",
    "truncated_hello_close": "handshake_failed",
    "truncated_hello_silent": "timeout",
    "garbage": "not_tls",
    "flood_garbage": "not_tls",
    "flood_records": "handshake_failed",
    "plaintext_banner": "not_tls",
    **{f"alert_{name}": None for name in ALERTS},
}
# A STARTTLS dialogue that trickles is a slow server: timeout. One that never ends (continuation lines, an
# unclosed XMPP stream, an endless LDAP message, a PostgreSQL error) is cut at 64 KiB: it did not upgrade.
for _protocol in STARTTLS_PROTOCOLS:
    PREFLIGHT_CLASS[starttls_behaviour(_protocol, "trickle")] = "timeout"
    PREFLIGHT_CLASS[starttls_behaviour(_protocol, "endless")] = "starttls_failed"


def scan_class(behaviour: str) -> str:
    """The class a whole `tlsgate scan` reports: the preflight's, or for a server that alerts every hello, a TLS
    peer with no version and suite we can agree on."""
    return PREFLIGHT_CLASS[behaviour] or "no_common_protocol"


def starttls_of(behaviour: str) -> str | None:
    """The --starttls value a behaviour is scanned with, if any."""
    return behaviour.rsplit("_", 1)[1] if behaviour.startswith("starttls_") else None


def _handler(behaviour: str, interval: float) -> Handler:
    if behaviour.startswith("starttls_"):
        _, how, protocol = behaviour.split("_", 2)
        return _starttls(protocol, how, interval)
    return behaviours(interval)[behaviour]


# --- the server -----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def hostile_server(behaviour: str, *, interval: float = 1.0, host: str = "127.0.0.1") -> Iterator[HostileServer]:
    """Serve ``behaviour`` on ``host`` (a loopback address) for the ``with`` block; "refused" holds a port that
    nobody listens on. ``interval`` paces the trickles."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, 0))
    server = HostileServer(host=host, port=listener.getsockname()[1], behaviour=behaviour)
    if behaviour == "refused":
        # Bound but not listening: the kernel answers every SYN with a RST, and no one else can take the port.
        with listener:
            yield server
        return
    handle = _handler(behaviour, interval)
    stop = threading.Event()
    open_connections: list[socket.socket] = []
    lock = threading.Lock()

    def run(conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            conn.settimeout(30)
            handle(conn, stop)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with lock:
                server.connections += 1
                open_connections.append(conn)
            threading.Thread(target=run, args=(conn,), daemon=True).start()

    listener.listen(64)
    listener.settimeout(0.1)
    thread = threading.Thread(target=serve, name=f"hostile-{behaviour}", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
        with lock:
            for conn in open_connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)  # wakes a handler blocked in a send
