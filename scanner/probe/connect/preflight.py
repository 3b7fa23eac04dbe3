"""Resolve, connect and send one ClientHello: the cheapest way to tell why a target cannot be scanned.

sslyze would eventually report the same failures, but only after retrying every protocol version with
its own timeouts; a silent port would cost minutes. The preflight bounds that to one timeout per step (connect,
STARTTLS, the hello and its answer), each step whole — a peer that trickles bytes cannot stretch it.

The preflight decides the target's class, so every way a peer can fail it is named here, once: refused, reset
(on accept, or on the ClientHello), timeout (silent after accept, after the hello, mid-answer or trickling),
not_tls (garbage, a plain-text banner with the ``--starttls`` hint), handshake_failed (a TLS answer cut off or
malformed, a flood of records), starttls_failed. A TLS alert passes: the probes tell versions apart by it.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from scanner.facts import ErrorClass, ProbeError, ProtocolVersion
from scanner.probe.checks.ciphers import candidate_suites
from scanner.probe.connect.banners import starttls_hint
from scanner.probe.connect.deadline import Deadline
from scanner.probe.connect.endpoint import connect_failure
from scanner.probe.connect.limits import Stop
from scanner.probe.connect.resolve import ResolveError, resolve
from scanner.probe.connect.starttls import StartTls, StartTlsError, upgrade
from scanner.probe.wire.hello import build_client_hello
from scanner.probe.wire.messages import Closed, Malformed, NotTls, ServerReply, TimedOut
from scanner.probe.wire.records import send_hello
from scanner.targets import Target

# A broad offer that any TLS server from the last twenty years answers with a ServerHello or an alert.
_VERSIONS = (0x0304, 0x0303, 0x0302, 0x0301)


def _hello(server_name: str | None) -> bytes:
    suites = candidate_suites(ProtocolVersion.TLSv1_3) + candidate_suites(ProtocolVersion.TLSv1_2)[:120]
    return build_client_hello(ProtocolVersion.TLSv1_3, suites, server_name=server_name, supported_versions=_VERSIONS)


def _short_hello(server_name: str | None) -> bytes:
    """A TLS 1.2 hello of common suites, padded to about 512 bytes (past the 256-511 range some stacks choke on):
    what a server that drops long or TLS 1.3 hellos still answers."""
    suites = candidate_suites(ProtocolVersion.TLSv1_2)[:24]
    return build_client_hello(ProtocolVersion.TLSv1_2, suites, server_name=server_name)


@dataclass(frozen=True)
class Reachable:
    ip_address: str


def resolve_all(target: Target, deadline: Deadline) -> list[str] | ProbeError:
    """Every address of the target's host, IPv4 and IPv6, in resolver order, without duplicates, found by the
    deadline: a resolver that does not answer in time is a ``dns`` error like a name that does not exist."""
    try:
        return resolve(target.host, target.port, deadline.remaining(), step=deadline.seconds)
    except ResolveError as exc:
        return ProbeError(error_class=ErrorClass.dns, message=str(exc))


def _connect_error(where: str, exc: OSError, timeout: float) -> ProbeError:
    if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL):
        return ProbeError(error_class=ErrorClass.unreachable, message=f"{where} unreachable: {exc.strerror}")
    # A reset while connecting is a server that accepts and drops at once (as one with no TLS stack behind its
    # port does), the same class as a reset on the first read: which of the two the client sees is a race.
    return connect_failure(
        where,
        exc,
        timed_out=f"TCP connect to {where} timed out after {timeout:g}s",
        closed="reset the connection as it was accepted",
    )


def preflight(
    target: Target,
    timeout: float,
    *,
    address: str | None = None,
    server_name: str | None = None,
    starttls: StartTls | None = None,
    stop: Stop | None = None,
) -> Reachable | ProbeError:
    """Return the address to scan, or the error that makes the target unscannable. Each step takes at most
    ``timeout`` seconds, and all of them end by ``stop``'s deadline when it has one."""
    if address is None:
        addresses = resolve_all(target, Deadline(timeout, stop))
        if isinstance(addresses, ProbeError):
            return addresses
        address = addresses[0]
    where = f"[{address}]:{target.port}" if ":" in address else f"{address}:{target.port}"
    if where != target.display:
        where = f"{target.display} ({address})"
    reply = _attempt(target, timeout, address, where, _hello(server_name), server_name, starttls, stop)
    if isinstance(reply, ServerReply) and _unanswered(reply):
        # Some TLS stacks drop a long hello or one offering TLS 1.3 without a word; a short TLS 1.2 hello tells
        # such a server from one that drops every connection.
        reply = _attempt(target, timeout, address, where, _short_hello(server_name), server_name, starttls, stop)
    if isinstance(reply, ProbeError):
        return reply
    error = _reply_error(where, reply, timeout, starttls)
    # A ServerHello or an alert: a TLS peer; the handshake probes decide the rest.
    return Reachable(address) if error is None else error


def _unanswered(reply: ServerReply) -> bool:
    """The connection closed (FIN or RST) before the server sent a byte."""
    return isinstance(reply.end, Closed) and reply.end.received == 0 and not reply.messages


def _attempt(
    target: Target,
    timeout: float,
    address: str,
    where: str,
    hello: bytes,
    server_name: str | None,
    starttls: StartTls | None,
    stop: Stop | None,
) -> ServerReply | ProbeError:
    """One connection: connect, STARTTLS, the hello and its answer, each step within its own deadline."""
    try:
        sock = Deadline(timeout, stop).connect(address, target.port)
    except OSError as exc:
        return _connect_error(where, exc, timeout)
    with sock:
        if starttls is not None:
            failed = _upgrade(sock, where, starttls, server_name or target.host, Deadline(timeout, stop))
            if failed is not None:
                return failed
        # The whole first flight, not only the ServerHello: a server that stalls after its ServerHello would
        # cost every probe a timeout per connection.
        return send_hello(sock, hello, Deadline(timeout, stop), until="server_hello_done")


def _upgrade(sock: socket.socket, where: str, starttls: StartTls, host: str, deadline: Deadline) -> ProbeError | None:
    try:
        upgrade(sock, starttls, host, deadline)
    except StartTlsError as exc:
        return ProbeError(error_class=ErrorClass.starttls_failed, message=f"{where}: {starttls} upgrade failed: {exc}")
    except TimeoutError:
        # Silence, a trickle, or a dialogue that never ends: the server did not get to "go ahead" in time.
        return ProbeError(
            error_class=ErrorClass.timeout,
            message=f"{where} accepted the connection but did not complete the {starttls} STARTTLS exchange "
            f"within {deadline.seconds:g}s",
        )
    except OSError as exc:
        return ProbeError(
            error_class=ErrorClass.reset,
            message=f"{where} closed the connection during the {starttls} STARTTLS exchange"
            + (f" ({exc.strerror})" if exc.strerror else ""),
        )
    return None


def _reply_error(where: str, reply: ServerReply, timeout: float, starttls: StartTls | None) -> ProbeError | None:
    """Why the answer to the preflight hello shows no TLS peer we can talk to, or None when it does."""
    why = _why(reply, timeout, starttls)
    return None if why is None else ProbeError(error_class=why[0], message=f"{where} {why[1]}")


def _why(reply: ServerReply, timeout: float, starttls: StartTls | None) -> tuple[ErrorClass, str] | None:
    end = reply.end
    if isinstance(end, NotTls) and not end.ssl2:
        hint = starttls_hint(end.preview) if starttls is None else None
        said = f"does not speak TLS: it answered a ClientHello with {end.describe()}"
        return ErrorClass.not_tls, said + (f"; {hint}" if hint else "")
    answered = reply.server_hello is not None or reply.hello_retry_request is not None
    if isinstance(end, TimedOut):
        if answered:
            return ErrorClass.timeout, f"sent its ServerHello but not the rest of its first flight within {timeout:g}s"
        if end.received == 0:
            return (
                ErrorClass.timeout,
                f"accepted the connection but did not answer a TLS ClientHello within {timeout:g}s",
            )
        return ErrorClass.timeout, (
            f"began a TLS answer but did not finish its ServerHello within {timeout:g}s ({end.received} bytes received)"
        )
    if answered:
        return None
    if isinstance(end, Closed):
        how = "reset" if end.reset else "closed"
        if end.received == 0:
            return ErrorClass.reset, f"{how} the connection without answering a TLS ClientHello"
        return ErrorClass.handshake_failed, (
            f"{how} the connection in the middle of its ServerHello ({end.received} bytes received)"
        )
    if isinstance(end, Malformed):
        return ErrorClass.handshake_failed, f"sent a malformed TLS answer: {end.reason}"
    # An alert (the probes tell versions apart by it) or an SSL 2.0 record (an SSL 2.0-only server).
    return None
