"""What to scan: target syntax (``host:port`` and friends), and inventories of targets with their own packs and
connection settings (model, reader, planning, published schema).

Only the target syntax is imported here: the probe stage needs ``Target``, and the inventory modules import the
probe's options.
"""

from scanner.targets.parse import Target, TargetError, parse_target

__all__ = ["Target", "TargetError", "parse_target"]
