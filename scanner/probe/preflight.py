"""Resolve, connect and send one ClientHello: the cheapest way to tell why a target cannot be scanned.

sslyze would eventually report the same failures, but only after retrying every protocol version with
its own timeouts; a silent port would cost minutes. The preflight bounds that to one timeout per step.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from scanner.facts import ErrorClass, ProbeError
from scanner.probe.clienthello import build_client_hello, describe_reply, looks_like_tls
from scanner.probe.starttls import StartTls, StartTlsError, upgrade
from scanner.targets import Target


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
    if isinstance(exc, ConnectionRefusedError):
        return ProbeError(error_class=ErrorClass.refused, message=f"connection to {where} refused")
    if isinstance(exc, TimeoutError):
        return ProbeError(
            error_class=ErrorClass.timeout, message=f"TCP connect to {where} timed out after {timeout:g}s"
        )
    if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL):
        return ProbeError(error_class=ErrorClass.unreachable, message=f"{where} unreachable: {exc.strerror}")
    return ProbeError(error_class=ErrorClass.unreachable, message=f"cannot connect to {where}: {exc}")


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
            sock.sendall(build_client_hello(server_name))
            reply = sock.recv(64)
        except StartTlsError as exc:
            return ProbeError(
                error_class=ErrorClass.starttls_failed, message=f"{where}: {starttls} upgrade failed: {exc}"
            )
        except TimeoutError:
            step = f"the {starttls} STARTTLS exchange" if starttls else "a TLS ClientHello"
            return ProbeError(
                error_class=ErrorClass.timeout,
                message=f"{where} accepted the connection but did not answer {step} within {timeout:g}s",
            )
        except OSError:
            # A reset in answer to a ClientHello is how some TLS stacks refuse an offer; let the
            # handshake probes decide.
            return Reachable(address)
    if reply and not looks_like_tls(reply):
        return ProbeError(
            error_class=ErrorClass.not_tls,
            message=f"{where} does not speak TLS: it answered a ClientHello with {describe_reply(reply)}",
        )
    return Reachable(address)
