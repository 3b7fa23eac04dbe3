"""The record layer: send one ClientHello, read the server's first flight record by record, and say why it ended.

``exchange`` opens the connection (through STARTTLS when the endpoint asks for it), sends the hello and reads
until it has what the caller asked for. Every network condition is a value (``Closed``, ``TimedOut``,
``ConnectFailed``...), never an exception. Sending the hello and reading the reply is one step under one
``Deadline``: a server that trickles its flight a byte at a time is cut off at the timeout, one that floods it
at ``MAX_FLIGHT_BYTES``. ``split_records`` cuts bytes already received into records.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import struct
import time
from dataclasses import dataclass, field, replace

from scanner.facts import ErrorClass, ProbeError
from scanner.probe.connect.deadline import Deadline
from scanner.probe.connect.endpoint import Endpoint, connect_failure
from scanner.probe.connect.starttls import StartTlsError
from scanner.probe.wire.codes import (
    CONTENT_ALERT,
    CONTENT_CHANGE_CIPHER_SPEC,
    CONTENT_HANDSHAKE,
    CONTENT_HEARTBEAT,
    HS_CERTIFICATE,
    HS_CERTIFICATE_REQUEST,
    HS_SERVER_HELLO,
    HS_SERVER_HELLO_DONE,
    HS_SERVER_KEY_EXCHANGE,
    MAX_RECORD_PAYLOAD,
)
from scanner.probe.wire.cursor import ParseError
from scanner.probe.wire.messages import (
    Alert,
    Closed,
    ConnectFailed,
    HelloRetryRequest,
    Malformed,
    NotTls,
    OtherHandshake,
    ReadUntil,
    ReplyEnd,
    ServerHelloDone,
    ServerMessage,
    ServerReply,
    TimedOut,
    parse_certificate,
    parse_certificate_request,
    parse_server_hello,
    parse_server_key_exchange,
)

MAX_FLIGHT_BYTES = 1 << 20  # a first flight larger than this is not a TLS server we can reason about


@dataclass
class _Flight:
    messages: list[ServerMessage] = field(default_factory=list)
    warnings: list[Alert] = field(default_factory=list)
    version: int = 0x0303
    suite: int | None = None


def _closed(exc: OSError, received: int = 0) -> Closed:
    reset = isinstance(exc, ConnectionResetError | ConnectionAbortedError | BrokenPipeError) or exc.errno in (
        errno.ECONNRESET,
        errno.EPIPE,
    )
    return Closed(reset=reset, detail=exc.strerror or str(exc), received=received)


class _Stream:
    """Byte reader over a socket, bounded as a whole by ``deadline`` and in size by MAX_FLIGHT_BYTES."""

    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
        self.sock = sock
        self.deadline = deadline
        self.buffer = b""
        self.received = 0

    def fill(self, n: int) -> ReplyEnd | None:
        """Read until ``n`` bytes are buffered; the reason it could not, if any."""
        while len(self.buffer) < n:
            try:
                chunk = self.deadline.recv(self.sock, 65536)
            except TimeoutError:
                return TimedOut(self.deadline.elapsed(), self.received)
            except OSError as exc:
                return _closed(exc, self.received)
            if not chunk:
                return Closed(reset=False, detail="end of stream", received=self.received)
            self.buffer += chunk
            self.received += len(chunk)
            if self.received > MAX_FLIGHT_BYTES:
                return Malformed(f"more than {MAX_FLIGHT_BYTES >> 20} MiB before the flight ended")
        return None

    def take(self, n: int) -> bytes:
        chunk, self.buffer = self.buffer[:n], self.buffer[n:]
        return chunk


def _handshake_message(flight: _Flight, msg_type: int, body: bytes, until: ReadUntil) -> tuple[bool, ReplyEnd | None]:
    """Record one handshake message; (done, end)."""
    if msg_type == HS_SERVER_HELLO:
        hello = parse_server_hello(body)
        flight.messages.append(hello)
        flight.suite = hello.cipher_suite
        if isinstance(hello, HelloRetryRequest):
            return True, None
        flight.version = hello.version
        # Past a TLS 1.3 ServerHello everything is encrypted.
        return until == "server_hello" or hello.version >= 0x0304, None
    if msg_type == HS_CERTIFICATE:
        flight.messages.append(parse_certificate(body))
    elif msg_type == HS_SERVER_KEY_EXCHANGE and flight.suite is not None:
        flight.messages.append(parse_server_key_exchange(body, flight.suite))
    elif msg_type == HS_CERTIFICATE_REQUEST:
        flight.messages.append(parse_certificate_request(body, flight.version))
    elif msg_type == HS_SERVER_HELLO_DONE:
        flight.messages.append(ServerHelloDone())
        return True, None
    else:
        flight.messages.append(OtherHandshake(msg_type, body))
    if flight.suite is None:
        return True, Malformed(f"handshake message {msg_type} before ServerHello")
    return False, None


def _next_record(stream: _Stream, flight: _Flight) -> tuple[int, bytes] | ReplyEnd:
    if end := stream.fill(5):
        return end
    header = stream.buffer[:5]
    content_type, major, length = header[0], header[1], int(struct.unpack("!H", header[3:5])[0])
    if content_type not in range(CONTENT_CHANGE_CIPHER_SPEC, CONTENT_HEARTBEAT + 1) or major != 3:
        if flight.messages:
            return Malformed(f"bad record header {header.hex(' ')}")
        return NotTls(stream.buffer[:64], ssl2=bool(header[0] & 0x80) and header[2] in (0x00, 0x04))
    if length > MAX_RECORD_PAYLOAD + 2048:
        return Malformed(f"record of {length} bytes")
    if end := stream.fill(5 + length):
        return end
    stream.take(5)
    return content_type, stream.take(length)


def _read_flight(stream: _Stream, flight: _Flight, until: ReadUntil) -> ReplyEnd | None:
    handshake = b""
    while True:
        record = _next_record(stream, flight)
        if not isinstance(record, tuple):
            return record
        content_type, payload = record
        if content_type == CONTENT_ALERT:
            if len(payload) < 2:
                return Malformed("short alert record")
            alert = Alert(payload[0], payload[1])
            if alert.fatal or alert.description == 0:
                return alert
            flight.warnings.append(alert)  # e.g. a warning unrecognized_name before the ServerHello
            continue
        if content_type != CONTENT_HANDSHAKE:
            # ChangeCipherSpec or application data: the plaintext part of the flight is over.
            return None if flight.messages else Malformed(f"record type {content_type} before ServerHello")
        handshake += payload
        # A record may hold several handshake messages, and a message may span several records.
        while len(handshake) >= 4:
            msg_len = int.from_bytes(handshake[1:4], "big")
            if len(handshake) < 4 + msg_len:
                break
            msg_type, body, handshake = handshake[0], handshake[4 : 4 + msg_len], handshake[4 + msg_len :]
            try:
                done, end = _handshake_message(flight, msg_type, body, until)
            except ParseError as exc:
                return Malformed(f"handshake message {msg_type}: {exc}")
            if done or end is not None:
                return end


def read_reply(sock: socket.socket, deadline: Deadline, *, until: ReadUntil = "server_hello_done") -> ServerReply:
    """Read the server's answer to a ClientHello already sent on ``sock``, within ``deadline``."""
    stream = _Stream(sock, deadline)
    flight = _Flight()
    end = _read_flight(stream, flight, until)
    return ServerReply(
        messages=tuple(flight.messages),
        end=end,
        warnings=tuple(flight.warnings),
        elapsed=deadline.elapsed(),
    )


def send_hello(
    sock: socket.socket, hello: bytes, deadline: Deadline, *, until: ReadUntil = "server_hello_done"
) -> ServerReply:
    """Send ``hello`` on a connected socket and read the reply, both within ``deadline``."""
    try:
        deadline.sendall(sock, hello)
    except TimeoutError:
        return ServerReply(end=TimedOut(deadline.elapsed(), 0), hello_length=len(hello))
    except OSError as exc:
        return ServerReply(end=_closed(exc), hello_length=len(hello))
    reply = read_reply(sock, deadline, until=until)
    return replace(reply, hello_length=len(hello))


def connect_error(endpoint: Endpoint, exc: Exception) -> ProbeError:
    """The facts' error for a connection that could not be opened (or upgraded by STARTTLS)."""
    where = endpoint.display
    if isinstance(exc, StartTlsError):
        return ProbeError(error_class=ErrorClass.starttls_failed, message=f"{where}: {exc}")
    return connect_failure(where, exc, timed_out=f"connecting to {where} timed out after {endpoint.timeout:g}s")


def exchange(endpoint: Endpoint, hello: bytes, *, until: ReadUntil = "server_hello_done") -> ServerReply:
    """Open one connection to ``endpoint``, send ``hello``, read the reply, close. Never raises for the network."""
    started = time.monotonic()
    try:
        sock = endpoint.connect()
    except (OSError, StartTlsError) as exc:
        return ServerReply(
            end=ConnectFailed(connect_error(endpoint, exc)),
            hello_length=len(hello),
            elapsed=time.monotonic() - started,
        )
    with contextlib.closing(sock):
        reply = send_hello(sock, hello, endpoint.deadline(), until=until)
    # The connect (and any STARTTLS preamble) counts in the elapsed time, not only the hello and its reply.
    return replace(reply, hello_length=len(hello), elapsed=time.monotonic() - started)


# --- records already received ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    type: int
    header: bytes
    payload: bytes


def split_records(stream: bytes) -> list[Record]:
    """The complete records in bytes a server sent (a trailing partial record is left out)."""
    records, pos = [], 0
    while pos + 5 <= len(stream):
        length = int.from_bytes(stream[pos + 3 : pos + 5], "big")
        if length > MAX_RECORD_PAYLOAD + 256:
            raise ParseError("record longer than TLS allows")
        if pos + 5 + length > len(stream):
            break
        records.append(Record(stream[pos], stream[pos : pos + 5], stream[pos + 5 : pos + 5 + length]))
        pos += 5 + length
    return records
