"""Which probes a scan runs: the union of the facts its packs look at.

A pack that never looks at session tickets does not pay for probing them. ``--all-facts`` runs every probe.
Planning reads policy packs, so it lives beside the policy, not in the probe stage, which knows no policy.
"""

from __future__ import annotations

from collections.abc import Iterable

from scanner.policy.pack import RulePack
from scanner.probe.registry import ALL, BASELINE, ProbeKind


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
