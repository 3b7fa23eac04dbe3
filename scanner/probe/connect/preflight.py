"""Resolve, connect and send one ClientHello: the cheapest way to tell why a target cannot be scanned.

sslyze would eventually report the same failures, but only after retrying every protocol version with
its own timeouts; a silent port would cost minutes. The preflight bounds that to one timeout per step.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from scanner.facts import ErrorClass, ProbeError, ProtocolVersion
from scanner.probe.checks.ciphers import candidate_suites
from scanner.probe.connect.banners import starttls_hint
from scanner.probe.connect.endpoint import connect_failure
from scanner.probe.connect.starttls import StartTls, StartTlsError, upgrade
from scanner.probe.wire.hello import build_client_hello
from scanner.probe.wire.messages import NotTls, TimedOut
from scanner.probe.wire.records import send_hello
from scanner.targets import Target

# A broad offer that any TLS server from the last twenty years answers with a ServerHello or an alert.
_VERSIONS = (0x0304, 0x0303, 0x0302, 0x0301)


def _hello(server_name: str | None) -> bytes:
    suites = candidate_suites(ProtocolVersion.TLSv1_3) + candidate_suites(ProtocolVersion.TLSv1_2)[:120]
    return build_client_hello(ProtocolVersion.TLSv1_3, suites, server_name=server_name, supported_versions=_VERSIONS)


@dataclass(frozen=True)
class Reachable:
    ip_address: str


def resolve_all(target: Target) -> list[str] | ProbeError:
    """Every address of the target's host, IPv4 and IPv6, in resolver order, without duplicates."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return ProbeError(error_class=ErrorClass.dns, message=f"cannot resolve {target.host}: {exc.strerror}")
    except UnicodeError:
        return ProbeError(error_class=ErrorClass.dns, message=f"cannot resolve {target.host}: invalid name")
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _connect_error(where: str, exc: OSError, timeout: float) -> ProbeError:
    if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL):
        return ProbeError(error_class=ErrorClass.unreachable, message=f"{where} unreachable: {exc.strerror}")
    # No TLS yet, so a reset is one more way of not getting through, not a server ending a handshake.
    return connect_failure(where, exc, timed_out=f"TCP connect to {where} timed out after {timeout:g}s", closings=())


def preflight(
    target: Target,
    timeout: float,
    *,
    address: str | None = None,
    server_name: str | None = None,
    starttls: StartTls | None = None,
) -> Reachable | ProbeError:
    """Return the address to scan, or the error that makes the target unscannable."""
    if address is None:
        addresses = resolve_all(target)
        if isinstance(addresses, ProbeError):
            return addresses
        address = addresses[0]
    where = f"[{address}]:{target.port}" if ":" in address else f"{address}:{target.port}"
    if where != target.display:
        where = f"{target.display} ({address})"
    try:
        sock = socket.create_connection((address, target.port), timeout=timeout)
    except OSError as exc:
        return _connect_error(where, exc, timeout)
    with sock:
        try:
            if starttls is not None:
                upgrade(sock, starttls, server_name or target.host)
        except StartTlsError as exc:
            return ProbeError(
                error_class=ErrorClass.starttls_failed, message=f"{where}: {starttls} upgrade failed: {exc}"
            )
        except TimeoutError:
            return ProbeError(
                error_class=ErrorClass.timeout,
                message=f"{where} accepted the connection but did not answer the {starttls} STARTTLS exchange "
                f"within {timeout:g}s",
            )
        except OSError as exc:
            return ProbeError(error_class=ErrorClass.reset, message=f"{where}: {starttls} upgrade failed: {exc}")
        reply = send_hello(sock, _hello(server_name), timeout, until="server_hello")
    end = reply.end
    if isinstance(end, NotTls) and not end.ssl2:
        hint = starttls_hint(end.preview) if starttls is None else None
        return ProbeError(
            error_class=ErrorClass.not_tls,
            message=f"{where} does not speak TLS: it answered a ClientHello with {end.describe()}"
            + (f"; {hint}" if hint else ""),
        )
    if isinstance(end, TimedOut) and end.received == 0:
        return ProbeError(
            error_class=ErrorClass.timeout,
            message=f"{where} accepted the connection but did not answer a TLS ClientHello within {timeout:g}s",
        )
    # A ServerHello, an alert, or a reset (how some TLS stacks refuse an offer): a TLS peer, or at least
    # not provably something else; the handshake probes decide the rest.
    return Reachable(address)
