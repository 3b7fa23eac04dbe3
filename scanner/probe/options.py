"""Options for a probe run; light to import (the CLI reads them before it needs sslyze)."""

from __future__ import annotations

from dataclasses import dataclass, field

from scanner.probe.certchain import CertificateOptions
from scanner.probe.endpoint import ClientCredentials
from scanner.probe.plan import BASELINE, ProbeKind
from scanner.probe.starttls import StartTls


@dataclass(frozen=True)
class ConnectOptions:
    """How to reach a target, beyond its host and port."""

    server_name: str | None = None  # SNI override; None keeps the target's own name
    no_sni: bool = False
    connect_address: str | None = None  # connect here instead of resolving the host
    all_addresses: bool = False  # scan every A/AAAA address as its own result
    starttls: StartTls | None = None
    credentials: ClientCredentials | None = None
    timeout: float | None = None  # overrides ProbeOptions.timeout for this target


@dataclass(frozen=True)
class ProbeOptions:
    timeout: float = 5.0
    concurrency: int = 32  # targets probed at once; per target, connections stay capped (politeness)
    per_server_connections: int = 5
    plan: frozenset[ProbeKind] = BASELINE
    session_age_check: float | None = None  # opt-in: seconds to wait before trying to resume
    certificates: CertificateOptions = field(default_factory=CertificateOptions)
    offline: bool = False  # no AIA, OCSP or CRL fetching: those facts say "not checked"
