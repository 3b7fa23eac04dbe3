"""What every probe needs to reach one target: the resolved address, SNI, timeout and client credentials."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

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

    @property
    def port(self) -> int:
        return self.target.port

    @property
    def display(self) -> str:
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"

    def connect(self) -> socket.socket:
        """A TCP connection, upgraded by the STARTTLS preamble if any, ready for a ClientHello.

        The probe timeout applies to connect and to every read. Raises OSError, or StartTlsError when the
        plaintext side refuses to upgrade; Cancelled (an OSError) once the run or target is stopped.
        """
        if self.stop is not None:
            self.stop.check()
        sock = socket.create_connection((self.address, self.port), timeout=self.timeout)
        if self.starttls is not None:
            try:
                upgrade(sock, self.starttls, self.server_name or self.target.host)
            except BaseException:
                sock.close()
                raise
        return sock
