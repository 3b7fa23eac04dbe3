"""What every probe needs to reach one target: the resolved address, SNI, timeout and client credentials."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

from scanner.facts import ErrorClass, ProbeError, ProtocolVersion
from scanner.probe.connect.deadline import Deadline
from scanner.probe.connect.limits import Stop
from scanner.probe.connect.starttls import StartTls, upgrade
from scanner.targets import Target


@dataclass(frozen=True)
class ClientCredentials:
    """A client certificate chain and its key as PEM files (materialised in a private temp dir when the
    user gave PKCS#12). Secrets never leave these files: not in facts, reports or logs."""

    cert_chain: Path  # PEM, leaf first
    key: Path  # PEM, unencrypted
    description: str  # what the user named, e.g. "client.p12", for messages and facts


class SeenInClear:
    """The leaf certificates a server showed in the clear to the enumerator's hellos (TLS 1.2 and older send the
    Certificate message unencrypted), by version and by the authentication of the suite it picked: what a client
    offering only suites of that authentication gets (pki/deployments). Filled by one probe, read after it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._leaves: dict[tuple[ProtocolVersion, str], set[bytes]] = {}

    def add(self, version: ProtocolVersion, authentication: str, leaf: bytes) -> None:
        with self._lock:
            self._leaves.setdefault((version, authentication), set()).add(leaf)

    def leaves(self, version: ProtocolVersion, authentications: frozenset[str]) -> set[bytes]:
        """Every leaf (DER) shown at ``version`` with a suite of one of ``authentications``."""
        with self._lock:
            return set().union(*(self._leaves.get((version, a), set()) for a in authentications))


@dataclass(frozen=True)
class Endpoint:
    target: Target
    address: str  # the IP connected to
    server_name: str | None  # SNI to send; None sends no SNI
    timeout: float
    credentials: ClientCredentials | None = None
    starttls: StartTls | None = None
    stop: Stop | None = field(default=None, compare=False)  # checked before every connection
    check_name: bool = True  # judge trust for the target's name (False: by the chain alone)
    seen: SeenInClear | None = field(default=None, compare=False)  # where the enumerator notes the leaves it saw

    @property
    def port(self) -> int:
        return self.target.port

    @property
    def display(self) -> str:
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"

    def deadline(self) -> Deadline:
        """A fresh deadline for one step: the probe timeout, cut short by the target's or run's stop."""
        return Deadline(self.timeout, self.stop)

    def connect(self) -> socket.socket:
        """A TCP connection, upgraded by the STARTTLS preamble if any, ready for a ClientHello.

        The connect and the STARTTLS dialogue are each one step bounded as a whole by the probe timeout (and the
        target's time), not only per read; the socket comes back with the probe timeout set. Raises OSError
        (TimeoutError when a step ran out of time), or StartTlsError when the plaintext side refuses to upgrade;
        Cancelled (an OSError) once the run or target is stopped.
        """
        if self.stop is not None:
            self.stop.check()
        sock = self.deadline().connect(self.address, self.port)
        try:
            if self.starttls is not None:
                upgrade(sock, self.starttls, self.server_name or self.target.host, self.deadline())
            sock.settimeout(self.timeout)
        except BaseException:
            sock.close()
            raise
        return sock


def connect_failure(
    where: str,
    exc: BaseException,
    *,
    timed_out: str,
    prefix: str = "",
    closed: str = "reset the connection",
    closings: tuple[type[BaseException], ...] = (ConnectionResetError,),
    reason: str | None = None,
) -> ProbeError:
    """The error for a connection to ``where`` that failed with ``exc``: refused, timed out, closed or unreachable.

    Each probe words its messages for what it was doing (a bare connect, a handshake named by ``prefix``), and
    users and saved reports know those words; so the wording is the caller's and only the classing is shared.
    ``timed_out`` is the whole timeout message, ``closed`` what ``where`` did to the connection when ``exc`` is
    one of ``closings``, and ``reason`` replaces ``exc``'s text after "cannot connect".
    """
    if isinstance(exc, ConnectionRefusedError):
        return ProbeError(error_class=ErrorClass.refused, message=f"{prefix}connection to {where} refused")
    if isinstance(exc, TimeoutError):
        return ProbeError(error_class=ErrorClass.timeout, message=f"{prefix}{timed_out}")
    if isinstance(exc, closings):
        return ProbeError(error_class=ErrorClass.reset, message=f"{prefix}{where} {closed}")
    detail = reason or (exc.strerror if isinstance(exc, OSError) else None) or exc
    return ProbeError(error_class=ErrorClass.unreachable, message=f"{prefix}cannot connect to {where}: {detail}")
