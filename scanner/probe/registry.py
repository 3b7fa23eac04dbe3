"""The probe kinds: one per group of facts a scan can be asked for.

Which kinds a scan runs is planned outside the probe stage (``scanner.plan``), from the packs it evaluates.
"""

from __future__ import annotations

from enum import StrEnum


class ProbeKind(StrEnum):
    protocols = "protocols"  # versions and suites (enumerator; one SSL 2.0 CLIENT-HELLO)
    certificate = "certificate"  # the served chain (sslyze certificate_info)
    groups = "groups"  # named groups, DH size, hybrid PQ
    behaviours = "behaviours"  # renegotiation, compression, SCSV, EMS, stapling, ALPN, 0-RTT, vulnerabilities
    sessions = "sessions"  # resumption and ticket lifetimes
    client_auth = "client_auth"  # mTLS requirement, CA names, acceptance


# Facts every report shows, whatever the packs ask: what a reader expects to see of any endpoint.
BASELINE: frozenset[ProbeKind] = frozenset({ProbeKind.protocols, ProbeKind.certificate})
ALL: frozenset[ProbeKind] = frozenset(ProbeKind)
