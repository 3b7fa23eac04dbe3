"""The probe registry: every kind of probe, the facts field it fills, and how it runs.

A scan asks for probe kinds (``ProbeKind``); which kinds is planned outside the probe stage (``scanner.plan``),
from the packs it evaluates. Each row of ``PROBES`` says which kind it serves, which field of
:class:`~scanner.facts.Facts` it fills, and how: one of tlsgate's own probe functions (``OwnProbe``) or a job
of sslyze's (``SslyzeProbe``, run by ``sslyze_adapter``). ``run`` reads this table to choose, run and merge
probes, so a new group of facts is a model in ``scanner.facts`` and a row here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from scanner.facts import ClientAuthFacts, GroupFacts, Observed, ProtocolSupport, SessionFacts

if TYPE_CHECKING:
    from scanner.probe.connect.endpoint import Endpoint
    from scanner.probe.options import ProbeOptions


class ProbeKind(StrEnum):
    protocols = "protocols"  # versions and suites (enumerator; one SSL 2.0 CLIENT-HELLO)
    certificate = "certificate"  # the served chain (sslyze certificate_info)
    groups = "groups"  # named groups, DH size, hybrid PQ
    behaviours = "behaviours"  # renegotiation, compression, SCSV, EMS, stapling, ALPN, 0-RTT, vulnerabilities
    sessions = "sessions"  # resumption and ticket lifetimes
    client_auth = "client_auth"  # mTLS requirement, CA names, acceptance, where refused (one HTTP request)


# Facts every report shows, whatever the packs ask: what a reader expects to see of any endpoint.
BASELINE: frozenset[ProbeKind] = frozenset({ProbeKind.protocols, ProbeKind.certificate})
ALL: frozenset[ProbeKind] = frozenset(ProbeKind)


class Extra(StrEnum):
    """What we ask of sslyze: the chain as served, and the behaviour and vulnerability plugins."""

    certificate = "certificate"
    behaviours = "behaviours"


FactGroup = SessionFacts | ClientAuthFacts | GroupFacts


@dataclass(frozen=True)
class OwnProbe:
    """One of tlsgate's own probes: ``run`` returns what goes into ``fills``."""

    name: str  # in the error when it breaks: "<name> probe failed: ..."
    kind: ProbeKind
    fills: str  # the Facts field; "behaviours.<key>" for one behaviour
    run: Callable[[Endpoint, ProbeOptions], Any]
    group: type[FactGroup] | None = None  # the model, when this probe alone fills a whole fact group


@dataclass(frozen=True)
class SslyzeProbe:
    """A job of sslyze's, asked for through ``sslyze_adapter`` with ``extra``."""

    kind: ProbeKind
    fills: str
    extra: Extra


# How each own probe runs. The checks are imported when a probe first runs, not with this module: the CLI reads
# ProbeKind (through ProbeOptions) at startup, and --help must not pay for every probe's imports.


def _protocols(endpoint: Endpoint, options: ProbeOptions) -> list[ProtocolSupport]:
    from scanner.probe.checks.ciphers import enumerate_all  # noqa: PLC0415 - see above
    from scanner.probe.checks.sslv2 import probe_sslv2  # noqa: PLC0415

    return [probe_sslv2(endpoint), *enumerate_all(endpoint)]


def _sessions(endpoint: Endpoint, options: ProbeOptions) -> SessionFacts:
    from scanner.probe.checks.sessions import probe_sessions  # noqa: PLC0415

    return probe_sessions(endpoint, age_check_seconds=options.session_age_check)


def _alpn(endpoint: Endpoint, options: ProbeOptions) -> Observed[list[str]]:
    from scanner.probe.checks.alpn import probe_alpn  # noqa: PLC0415

    return probe_alpn(endpoint)


def _client_auth(endpoint: Endpoint, options: ProbeOptions) -> ClientAuthFacts:
    from scanner.probe.checks.clientauth import probe_client_auth  # noqa: PLC0415

    return probe_client_auth(endpoint)


def _groups(endpoint: Endpoint, options: ProbeOptions) -> GroupFacts:
    from scanner.probe.checks.groups import probe_groups  # noqa: PLC0415

    return probe_groups(endpoint)


# The own probes run in this order, one after another on one connection slot (see run.py).
PROBES: tuple[OwnProbe | SslyzeProbe, ...] = (
    OwnProbe("cipher suites", ProbeKind.protocols, "protocols", _protocols),
    OwnProbe("sessions", ProbeKind.sessions, "sessions", _sessions, SessionFacts),
    OwnProbe("alpn", ProbeKind.behaviours, "behaviours.alpn", _alpn),
    OwnProbe("client_auth", ProbeKind.client_auth, "client_auth", _client_auth, ClientAuthFacts),
    OwnProbe("groups", ProbeKind.groups, "groups", _groups, GroupFacts),
    SslyzeProbe(ProbeKind.certificate, "certificate", Extra.certificate),
    SslyzeProbe(ProbeKind.behaviours, "behaviours", Extra.behaviours),
)

OWN_PROBES: tuple[OwnProbe, ...] = tuple(p for p in PROBES if isinstance(p, OwnProbe))
SSLYZE_PROBES: tuple[SslyzeProbe, ...] = tuple(p for p in PROBES if isinstance(p, SslyzeProbe))


def sslyze_extras(plan: frozenset[ProbeKind]) -> frozenset[Extra]:
    """What sslyze is asked for under ``plan``."""
    return frozenset(p.extra for p in SSLYZE_PROBES if p.kind in plan)
