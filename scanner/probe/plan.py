"""Which probes a scan runs: the union of the facts its packs look at.

A pack that never looks at session tickets does not pay for probing them. ``--all-facts`` runs every probe.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from scanner.policy.pack import RulePack


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


def plan_for(packs: Iterable[RulePack], *, all_facts: bool = False) -> frozenset[ProbeKind]:
    if all_facts:
        return ALL
    kinds = set(BASELINE)
    for pack in packs:
        for rule in pack.rules:
            head = rule.fact.split(".", 1)[0]
            if head in ProbeKind.__members__:
                kinds.add(ProbeKind(head))
    return frozenset(kinds)
