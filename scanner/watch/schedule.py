"""When each target is due: its inventory interval (``every``, else the default) after its last scan, plus a
jitter that is a fixed fraction of the interval per target (from a hash of its name), so that a fleet scanned
together drifts apart instead of hitting every server at the same moment of each cycle."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from scanner.targets.inventory import InventoryTarget

DEFAULT_EVERY = 24 * 3600.0
JITTER = 0.1  # at most a tenth of the interval
# A run that starts takes along the targets due within a hundredth of their interval (at most a minute): without
# it the jitter splits a fleet's cycle into a run per target or two (measured by bench/watch.py: 50 targets every
# 20 s gave 30 runs a cycle), each paying for its store transaction, its events and a rewrite of the status site.
BATCH, BATCH_MAX = 0.01, 60.0


def jitter_fraction(name: str) -> float:
    """A number in [0, 1) fixed for ``name`` (the same across restarts and machines)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") / 2**64


@dataclass
class Schedule:
    default_every: float = DEFAULT_EVERY
    jitter: float = JITTER
    next_due: dict[str, float] = field(default_factory=dict)  # by target name; absent: due now

    def every(self, target: InventoryTarget) -> float:
        value = target.first("every")
        return float(value) if value is not None else self.default_every

    def after(self, target: InventoryTarget, scanned_at: float) -> float:
        """When a target scanned at ``scanned_at`` is next due."""
        every = self.every(target)
        return scanned_at + every + jitter_fraction(target.name) * self.jitter * every

    def seed(self, targets: Iterable[InventoryTarget], last_scans: Mapping[str, float]) -> None:
        """Targets scanned before (by a previous process: the store's latest state) are due one interval after
        that scan; targets never scanned are due now."""
        for target in targets:
            if target.name in last_scans and target.name not in self.next_due:
                self.next_due[target.name] = self.after(target, last_scans[target.name])

    def due(self, targets: Sequence[InventoryTarget], now: float) -> list[InventoryTarget]:
        """The targets due at ``now``, with those due within the batching window (BATCH) after it."""
        return [t for t in targets if self.next_due.get(t.name, now) <= now + self.batch(t)]

    def batch(self, target: InventoryTarget) -> float:
        return min(BATCH_MAX, BATCH * self.every(target))

    def scanned(self, targets: Iterable[InventoryTarget], at: float) -> None:
        for target in targets:
            self.next_due[target.name] = self.after(target, at)

    def wake(self, targets: Sequence[InventoryTarget], now: float) -> float:
        """The next moment a target is due (``now`` if one is due already)."""
        return min((self.next_due.get(t.name, now) for t in targets), default=now + self.default_every)

    def keep(self, names: Iterable[str]) -> None:
        """Forget targets no longer in the inventory."""
        wanted = set(names)
        self.next_due = {name: at for name, at in self.next_due.items() if name in wanted}
