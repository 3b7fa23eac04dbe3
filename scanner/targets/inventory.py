"""Inventories: the targets of a run, with how to reach each and which packs judge it, in one YAML file.

An inventory has three optional top-level keys: ``defaults`` (settings every target inherits), ``groups``
(named sets of targets sharing settings; the group's name is also a tag of each of its targets) and
``targets``. A target's setting comes from the target itself, else its group, else ``defaults``, else the
command line; tags add up. Problems are reported as ``file:line:column: message``, every one at once, and a bad
inventory scans nothing. Secrets never sit in an inventory: a client key's password is named by an environment
variable or a file, and an inline ``password`` key is refused.

This module is the model; reader.py reads it, planning.py turns it into targets ready to scan, schema.py
publishes its JSON Schema.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scanner.policy.pack import RulePack
from scanner.probe.connect.starttls import StartTls
from scanner.probe.options import ConnectOptions
from scanner.targets.parse import Target
from scanner.yamlfile import FileProblems, Key


class InventoryError(FileProblems):
    """An inventory or targets file that cannot be used; carries every problem found (``line`` 0: whole file)."""


@dataclass(frozen=True)
class Setting:
    """One pack parameter setting: KEY is NAME (every pack of the target declaring it) or PACK.NAME."""

    key: str
    value: Any
    where: Key | None = None  # position in the inventory; None: from the command line


@dataclass(frozen=True)
class ClientSpec:
    cert: Path | None = None
    key: Path | None = None
    p12: Path | None = None
    password_env: str | None = None
    password_file: Path | None = None


@dataclass(frozen=True)
class Scope:
    """Settings as written at one level (defaults, a group, a target); None: not set at this level."""

    key: Key
    packs: tuple[tuple[str, Key], ...] | None = None
    params: tuple[Setting, ...] = ()
    timeout: float | None = None
    sni: str | None = None
    no_sni: bool | None = None
    connect: str | None = None
    starttls: StartTls | None = None
    name_check: bool | None = None
    client: ClientSpec | None = None
    tags: frozenset[str] = frozenset()
    every: float | None = None  # seconds between scans under `tlsgate watch`
    zone: str | None = None  # network zone: with --executor dask, only that zone's workers probe the target


@dataclass(frozen=True)
class InventoryTarget:
    """One target of an inventory, its settings merged over its group and the defaults."""

    name: str
    target: Target
    tags: frozenset[str]
    scopes: tuple[Scope, ...]  # most specific first: the target, its group, defaults
    line: int = 0

    def first(self, attribute: str) -> Any:
        for scope in self.scopes:
            value = getattr(scope, attribute)
            if value is not None:
                return value
        return None

    def first_scope(self, attribute: str) -> Scope | None:
        return next((s for s in self.scopes if getattr(s, attribute) is not None), None)


@dataclass(frozen=True)
class Inventory:
    path: str
    targets: tuple[InventoryTarget, ...]
    positions: Mapping[Key, tuple[int, int]] = field(default_factory=dict)
    key_positions: Mapping[Key, tuple[int, int]] = field(default_factory=dict)

    @property
    def tags(self) -> list[str]:
        return sorted({tag for t in self.targets for tag in t.tags})

    def select(self, tags: Sequence[str]) -> list[InventoryTarget]:
        """The targets having any of ``tags`` (all of them when none is given), in file order."""
        wanted = set(tags)
        return [t for t in self.targets if not wanted or t.tags & wanted]


@dataclass(frozen=True)
class PlannedTarget:
    """A target ready to scan: where, how, and with which packs (already loaded with their parameters)."""

    target: Target
    connect: ConnectOptions
    packs: tuple[RulePack, ...]
