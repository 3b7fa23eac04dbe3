"""Planning an inventory's targets: their packs loaded with their parameters, their client credentials and
connection options over the command line's."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from scanner.policy.pack import PackError, RulePack, UnknownPack, _pack_path, load_pack
from scanner.probe.options import ConnectOptions
from scanner.targets.inventory import (
    ClientSpec,
    Inventory,
    InventoryError,
    InventoryTarget,
    PlannedTarget,
    Scope,
    Setting,
)
from scanner.targets.parse import Target
from scanner.yamlfile import Key, Problem, did_you_mean


def _cache_key(ref: Path, values: Mapping[str, Any]) -> tuple[str, str]:
    return str(ref.resolve()), json.dumps(values, sort_keys=True, default=str)


class _Planner:
    def __init__(self, inventory: Inventory, cli_settings: Sequence[Setting]) -> None:
        self.inventory = inventory
        self.base = Path(inventory.path).parent
        self.cli_settings = tuple(cli_settings)
        self.problems: list[Problem] = []
        self.used: set[int] = set()  # id() of settings some target's pack took
        self.cache: dict[tuple[str, str], RulePack] = {}

    def at(self, where: Key | None, message: str, *, on_key: bool = False) -> None:
        if where is None:
            self.problems.append(Problem("--param", 0, 0, message))
            return
        positions = self.inventory.positions
        found = self.inventory.key_positions.get(where) if on_key else None
        while found is None and where:
            found = positions.get(where)
            where = where[:-1]
        line, column = found or (1, 1)
        self.problems.append(Problem(self.inventory.path, line, column, message))

    def load(self, ref: str, where: Key | None, values: Mapping[str, Any]) -> RulePack | None:
        try:
            path = _pack_path(ref, self.base if where is not None else None)
        except UnknownPack as exc:
            if where is None:
                self.problems.append(Problem("--pack", 0, 0, str(exc)))
            else:
                self.at(where, str(exc))
            return None
        key = _cache_key(path, values)
        if key not in self.cache:
            try:
                self.cache[key] = load_pack(path, values)
            except PackError as exc:
                if where is not None:
                    self.at(where, f"pack {ref!r} cannot be used (its problems follow)")
                self.problems.extend(exc.problems)
                return None
        return self.cache[key]

    def packs_for(self, item: InventoryTarget, fallback: Sequence[str]) -> tuple[RulePack, ...] | None:
        refs: Sequence[tuple[str, Key | None]] = item.first("packs") or [(ref, None) for ref in fallback]
        settings = [s for scope in reversed(item.scopes) for s in scope.params] + list(self.cli_settings)
        plain = [self.load(ref, where, {}) for ref, where in refs]
        if any(p is None for p in plain):
            return None
        packs = [p for p in plain if p is not None]
        ids = [p.id for p in packs]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            self.at(refs[0][1], f"target {item.name!r}: pack {dup!r} is named more than once")
            return None
        overrides: list[dict[str, Any]] = [{} for _ in packs]
        index = {pack.id: i for i, pack in enumerate(packs)}
        # NAME first, then PACK.NAME, which outranks it for that pack whatever the order
        for qualified in (False, True):
            for setting in settings:
                prefix, dot, name = setting.key.partition(".")
                if bool(dot) != qualified:
                    continue
                takers = [index[prefix]] if dot and prefix in index else []
                if not dot:
                    name = setting.key
                    takers = [i for i, pack in enumerate(packs) if name in pack.params]
                takers = [i for i in takers if name in packs[i].params]
                for i in takers:
                    overrides[i][name] = setting.value
                if takers:
                    self.used.add(id(setting))
        loaded = []
        for (ref, where), pack, values in zip(refs, packs, overrides, strict=True):
            loaded.append(pack if not values else self.load(ref, where, values))
        if any(p is None for p in loaded):
            return None
        return tuple(p for p in loaded if p is not None)

    def unused(self, items: Sequence[InventoryTarget]) -> None:
        """A parameter setting no pack of the targets it applies to takes is a mistake: say where it is."""
        seen: set[int] = set()
        for item in items:
            for scope in item.scopes:
                for setting in scope.params:
                    if id(setting) in self.used or id(setting) in seen:
                        continue
                    seen.add(id(setting))
                    known = sorted({n for p in self.cache.values() for n in p.params})
                    name = setting.key.rpartition(".")[2]
                    self.at(
                        setting.where,
                        f"parameter {setting.key!r}: no pack of the targets it applies to takes it"
                        f"{did_you_mean(name, known)}",
                        on_key=True,
                    )
        for setting in self.cli_settings:
            if id(setting) not in self.used:
                self.problems.append(
                    Problem("--param", 0, 0, f"{setting.key}: no pack of the selected targets has this parameter")
                )


def _client_problem(inventory: Inventory, item: InventoryTarget, message: str) -> Problem:
    scope = item.first_scope("client")
    where = inventory.positions.get((*scope.key, "client")) if scope else None
    line, column = where or (item.line, 1)
    return Problem(inventory.path, line, column, f"target {item.name!r}: client certificate: {message}")


def _connect_settings(item: InventoryTarget, connect: ConnectOptions) -> ConnectOptions:
    """The target's own connection settings (the most specific level that sets each) over ``connect``."""
    sni, no_sni = item.first("sni"), item.first("no_sni")
    if sni is not None:
        connect = replace(connect, server_name=sni, no_sni=False)
    if no_sni is not None:
        connect = replace(connect, no_sni=no_sni, server_name=None if no_sni else connect.server_name)
    address = item.first("connect")
    if address is not None:
        connect = replace(connect, connect_address=address, all_addresses=False)
    starttls, timeout = item.first("starttls"), item.first("timeout")
    if starttls is not None:
        connect = replace(connect, starttls=starttls)
    if timeout is not None:
        connect = replace(connect, timeout=timeout)
    name_check = item.first("name_check")
    if name_check is not None:
        connect = replace(connect, check_name=name_check)
    zone = item.first("zone")
    if zone is not None:
        connect = replace(connect, zone=zone)
    return connect


def plan(
    inventory: Inventory,
    items: Sequence[InventoryTarget],
    fallback_packs: Sequence[str],
    cli_settings: Sequence[Setting],
    base: ConnectOptions,
    workdir: Path,
) -> list[PlannedTarget]:
    """Load every selected target's packs (with its parameters) and client credentials, over the command line's
    connection options ``base``; raises InventoryError with every problem. Credentials go to ``workdir``."""
    from scanner.probe.connect.credentials import CredentialsError, load_credentials  # noqa: PLC0415 - only with mTLS

    planner = _Planner(inventory, cli_settings)
    planned: list[PlannedTarget] = []
    for other in inventory.targets:
        if other not in items:  # not selected by --tag: its packs and parameters must still be right
            planner.packs_for(other, fallback_packs)
    for number, item in enumerate(items):
        packs = planner.packs_for(item, fallback_packs)
        connect = base
        client: ClientSpec | None = item.first("client")
        if client is not None:
            directory = workdir / f"target-{number}"
            directory.mkdir(mode=0o700)
            try:
                credentials = load_credentials(
                    client.cert, client.key, client.p12, client.password_env, client.password_file, directory
                )
            except CredentialsError as exc:
                planner.problems.append(_client_problem(inventory, item, str(exc)))
                continue
            connect = replace(connect, credentials=credentials)
        connect = _connect_settings(item, connect)
        if packs is not None:
            planned.append(PlannedTarget(item.target, connect, packs))
    planner.unused([*inventory.targets, *items])
    if planner.problems:
        raise InventoryError(list(dict.fromkeys(planner.problems)))
    return planned


def plain_targets(targets: Sequence[Target]) -> list[InventoryTarget]:
    """Targets named outside the inventory (arguments, --targets-file), to plan along with it: no own settings."""
    return [InventoryTarget(t.input, t, frozenset(), (Scope(key=()),)) for t in targets]
