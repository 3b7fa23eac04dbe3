"""Options for a probe run; light to import (the CLI reads them before it needs sslyze)."""

from __future__ import annotations

from dataclasses import dataclass, field

from scanner.probe.connect.endpoint import ClientCredentials
from scanner.probe.connect.starttls import StartTls
from scanner.probe.pki.certchain import CertificateOptions
from scanner.probe.registry import BASELINE, ProbeKind


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
    check_name: bool = True  # False: trust judged by the chain alone (peers identified by their DN)
    zone: str | None = None  # network zone: with --executor dask, only workers of this zone probe the target


@dataclass(frozen=True)
class ProbeOptions:
    timeout: float = 5.0  # seconds for each connect and read
    concurrency: int = 32  # targets probed at once
    max_connections: int = 64  # connections in flight across the run
    per_host: int = 8  # connections in flight to one host (IP address), whatever the port: politeness
    per_server_connections: int = 5  # sslyze jobs of one target at once (also within per_host)
    time_budget: float | None = None  # seconds for the whole run; targets not finished by then are reported so
    target_time: float | None = None  # seconds for one target, all its probes together
    plan: frozenset[ProbeKind] = BASELINE
    session_age_check: float | None = None  # opt-in: seconds to wait before trying to resume
    certificates: CertificateOptions = field(default_factory=CertificateOptions)
    offline: bool = False  # no AIA, OCSP or CRL fetching: those facts say "not checked"
