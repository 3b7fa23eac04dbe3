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
from scanner.targets import Target


@dataclass(frozen=True)
class Reachable:
    ip_address: str


def resolve(target: Target) -> str | ProbeError:
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return ProbeError(error_class=ErrorClass.dns, message=f"cannot resolve {target.host}: {exc.strerror}")
    except UnicodeError:
        return ProbeError(error_class=ErrorClass.dns, message=f"cannot resolve {target.host}: invalid name")
    return str(infos[0][4][0])


def _connect_error(target: Target, exc: OSError, timeout: float) -> ProbeError:
    where = f"{target.display}"
    if isinstance(exc, ConnectionRefusedError):
        return ProbeError(error_class=ErrorClass.refused, message=f"connection to {where} refused")
    if isinstance(exc, TimeoutError):
        return ProbeError(
            error_class=ErrorClass.timeout, message=f"TCP connect to {where} timed out after {timeout:g}s"
        )
    if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL):
        return ProbeError(error_class=ErrorClass.unreachable, message=f"{where} unreachable: {exc.strerror}")
    return ProbeError(error_class=ErrorClass.unreachable, message=f"cannot connect to {where}: {exc}")


def preflight(target: Target, timeout: float) -> Reachable | ProbeError:
    """Return the address to scan, or the error that makes the target unscannable."""
    address = resolve(target)
    if isinstance(address, ProbeError):
        return address
    try:
        sock = socket.create_connection((address, target.port), timeout=timeout)
    except OSError as exc:
        return _connect_error(target, exc, timeout)
    with sock:
        try:
            sock.sendall(build_client_hello(target.server_name))
            reply = sock.recv(64)
        except TimeoutError:
            return ProbeError(
                error_class=ErrorClass.timeout,
                message=f"{target.display} accepted the connection but did not answer a TLS ClientHello "
                f"within {timeout:g}s",
            )
        except OSError:
            # A reset in answer to a ClientHello is how some TLS stacks refuse an offer; let the
            # handshake probes decide.
            return Reachable(address)
    if reply and not looks_like_tls(reply):
        return ProbeError(
            error_class=ErrorClass.not_tls,
            message=f"{target.display} does not speak TLS: it answered a ClientHello with {describe_reply(reply)}",
        )
    return Reachable(address)
