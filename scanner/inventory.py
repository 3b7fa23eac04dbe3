"""Inventories: the targets of a run, with how to reach each and which packs judge it, in one YAML file.

An inventory has three optional top-level keys: ``defaults`` (settings every target inherits), ``groups``
(named sets of targets sharing settings; the group's name is also a tag of each of its targets) and
``targets``. A target's setting comes from the target itself, else its group, else ``defaults``, else the
command line; tags add up. Problems are reported as ``file:line:column: message``, every one at once, and a bad
inventory scans nothing. Secrets never sit in an inventory: a client key's password is named by an environment
variable or a file, and an inline ``password`` key is refused.

Plain target lists (``--targets-file``) are one target per line, ``#`` comments and blank lines ignored.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from scanner.policy.pack import PackError, RulePack, UnknownPack, _pack_path, load_pack
from scanner.probe.options import ConnectOptions
from scanner.probe.starttls import StartTls
from scanner.targets import Target, TargetError, parse_target
from scanner.yamlfile import Key, Problem, YamlLoader, did_you_mean

INVENTORY_SCHEMA_ID = "https://tlsgate.dev/schema/inventory-1.json"

_TOP_KEYS = ("defaults", "groups", "targets")
_SETTING_KEYS = (
    "packs", "params", "timeout", "sni", "no_sni", "connect", "starttls", "name_check", "client", "tags"
)  # fmt: skip
_GROUP_KEYS = (*_SETTING_KEYS, "targets")
_TARGET_KEYS = ("name", "target", "host", "port", *_SETTING_KEYS)
_CLIENT_KEYS = ("cert", "key", "p12", "password_env", "password_file")
_INLINE_REFUSAL = (
    "a password is never written in an inventory (files get committed and shared): name the environment "
    "variable that holds it with 'password_env', or a file with 'password_file'"
)


class InventoryError(Exception):
    """An inventory or targets file that cannot be used; carries every problem found (``line`` 0: whole file)."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


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
class _Scope:
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


@dataclass(frozen=True)
class InventoryTarget:
    """One target of an inventory, its settings merged over its group and the defaults."""

    name: str
    target: Target
    tags: frozenset[str]
    scopes: tuple[_Scope, ...]  # most specific first: the target, its group, defaults
    line: int = 0

    def first(self, attribute: str) -> Any:
        for scope in self.scopes:
            value = getattr(scope, attribute)
            if value is not None:
                return value
        return None

    def first_scope(self, attribute: str) -> _Scope | None:
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


# --- reading --------------------------------------------------------------------------------------------------


class _Reader:
    def __init__(self, loader: YamlLoader, base: Path) -> None:
        self.loader = loader
        self.base = base

    def at(self, key: Key, message: str, *, on_key: bool = False) -> None:
        self.loader.problem(self.where(key, on_key=on_key), message)

    def where(self, key: Key, *, on_key: bool = False) -> tuple[int, int]:
        return self.loader.where(key, on_key=on_key)

    def keys(self, data: Mapping[str, Any], allowed: Sequence[str], key: Key, what: str) -> None:
        for name in data:
            if name == "password":
                self.at((*key, name), _INLINE_REFUSAL, on_key=True)
            elif name not in allowed:
                self.at((*key, name), f"unknown {what} key {name!r}{did_you_mean(name, list(allowed))}", on_key=True)

    def text(self, value: Any, key: Key, name: str) -> str | None:
        if isinstance(value, bool) or not isinstance(value, str | int | float) or not str(value).strip():
            self.at(key, f"{name!r} must be non-empty text")
            return None
        return str(value).strip()

    def path(self, value: Any, key: Key, name: str, *, must_exist: bool = True) -> Path | None:
        text = self.text(value, key, name)
        if text is None:
            return None
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = self.base / path
        if must_exist and not path.is_file():
            self.at(
                key, f"{name} file {text!r} does not exist" + (f" (looked for {path})" if text != str(path) else "")
            )
            return None
        return path

    def scope(self, data: Mapping[str, Any], key: Key) -> _Scope:
        kwargs: dict[str, Any] = {}
        if "packs" in data:
            kwargs["packs"] = self.packs(data["packs"], (*key, "packs"))
        if "params" in data:
            kwargs["params"] = self.params(data["params"], (*key, "params"))
        if "timeout" in data:
            value = data["timeout"]
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.1 <= value <= 300:
                self.at((*key, "timeout"), "'timeout' must be a number of seconds from 0.1 to 300")
            else:
                kwargs["timeout"] = float(value)
        self.connection(data, key, kwargs)
        if "client" in data:
            kwargs["client"] = self.client(data["client"], (*key, "client"))
        if "tags" in data:
            kwargs["tags"] = self.tags(data["tags"], (*key, "tags"))
        return _Scope(key=key, **kwargs)

    def connection(self, data: Mapping[str, Any], key: Key, kwargs: dict[str, Any]) -> None:
        """sni, no_sni, connect, starttls and name_check, into ``kwargs``."""
        if "sni" in data:
            kwargs["sni"] = self.text(data["sni"], (*key, "sni"), "sni")
        self.flag(data, key, "no_sni", kwargs)
        self.flag(data, key, "name_check", kwargs)
        if "connect" in data:
            text = self.text(data["connect"], (*key, "connect"), "connect")
            if text is not None:
                try:
                    kwargs["connect"] = str(ipaddress.ip_address(text))
                except ValueError:
                    self.at((*key, "connect"), f"'connect' {text!r} is not an IP address")
        if "starttls" in data:
            value = data["starttls"]
            try:
                kwargs["starttls"] = StartTls(str(value).strip().lower())
            except ValueError:
                names = [p.value for p in StartTls]
                self.at(
                    (*key, "starttls"),
                    f"'starttls' {value!r} is not a protocol{did_you_mean(str(value), names)}; "
                    f"one of {', '.join(names)}",
                )
        if kwargs.get("sni") and kwargs.get("no_sni"):
            self.at((*key, "no_sni"), "'sni' and 'no_sni: true' exclude each other")

    def flag(self, data: Mapping[str, Any], key: Key, name: str, kwargs: dict[str, Any]) -> None:
        if name not in data:
            return
        if isinstance(data[name], bool):
            kwargs[name] = data[name]
        else:
            self.at((*key, name), f"'{name}' must be true or false")

    def packs(self, value: Any, key: Key) -> tuple[tuple[str, Key], ...] | None:
        if isinstance(value, str):
            value, single = [value], True
        else:
            single = False
        if not isinstance(value, list) or not value:
            self.at(key, "'packs' must be a non-empty list of built-in pack ids or pack files")
            return None
        refs = []
        for index, item in enumerate(value):
            where = key if single else (*key, index)
            text = self.text(item, where, "pack")
            if text is not None:
                refs.append((text, where))
        names = [r for r, _ in refs]
        for ref, where in refs:
            if names.count(ref) > 1:
                self.at(where, f"pack {ref!r} is named more than once")
                return None
        return tuple(refs)

    def params(self, value: Any, key: Key) -> tuple[Setting, ...]:
        if not isinstance(value, Mapping):
            self.at(key, "'params' must be a mapping of NAME or PACK.NAME to a value")
            return ()
        return tuple(Setting(str(name), item, (*key, name)) for name, item in value.items())

    def tags(self, value: Any, key: Key) -> frozenset[str]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list):
            self.at(key, "'tags' must be a list of names")
            return frozenset()
        tags = set()
        for index, item in enumerate(items):
            text = self.text(item, key if isinstance(value, str) else (*key, index), "tag")
            if text is not None:
                tags.add(text)
        return frozenset(tags)

    def client(self, value: Any, key: Key) -> ClientSpec | None:
        if not isinstance(value, Mapping):
            self.at(key, "'client' must be a mapping: cert and key (PEM), or p12; password_env or password_file")
            return None
        self.keys(value, _CLIENT_KEYS, key, "client")
        paths = {
            name: self.path(value[name], (*key, name), name.replace("p12", "PKCS#12"))
            for name in ("cert", "key", "p12", "password_file")
            if name in value
        }
        env = (
            self.text(value["password_env"], (*key, "password_env"), "password_env")
            if "password_env" in value
            else None
        )
        if "p12" in value and ("cert" in value or "key" in value):
            self.at(key, "'client' takes either 'p12' or 'cert' and 'key', not both")
        elif "p12" not in value and "cert" not in value:
            self.at(key, "'client' needs 'cert' (and 'key') or 'p12'")
        if env and "password_file" in value:
            self.at((*key, "password_file"), "'password_env' and 'password_file' exclude each other")
        return ClientSpec(paths.get("cert"), paths.get("key"), paths.get("p12"), env, paths.get("password_file"))

    def target(self, item: Any, key: Key, parents: tuple[_Scope, ...], group: str | None) -> InventoryTarget | None:
        if isinstance(item, str):
            item = {"target": item}
            self.loader.positions.values[(*key, "target")] = self.where(key)
        if not isinstance(item, Mapping):
            self.at(key, "a target is a mapping (name, target or host and port, ...) or a 'host:port' text")
            return None
        self.keys(item, _TARGET_KEYS, key, "target")
        target = self.address(item, key)
        scope = self.scope(item, key)
        if target is None:
            return None
        name = self.text(item["name"], (*key, "name"), "name") if "name" in item else None
        if name is not None:
            target = replace(target, input=name)
        tags = frozenset().union(*(s.tags for s in (scope, *parents))) | ({group} if group else frozenset())
        return InventoryTarget(target.input, target, tags, (scope, *parents), self.where(key)[0])

    def address(self, item: Mapping[str, Any], key: Key) -> Target | None:
        has_target, has_host = "target" in item, "host" in item
        if has_target and (has_host or "port" in item):
            self.at(key, "give either 'target' (host:port or URL) or 'host' and 'port', not both")
            return None
        if has_target:
            text = self.text(item["target"], (*key, "target"), "target")
            if text is None:
                return None
            try:
                return parse_target(text)
            except TargetError as exc:
                self.at((*key, "target"), f"bad target {exc}")
                return None
        if not has_host:
            self.at(key, "a target needs 'target' (host:port or URL) or 'host' (and 'port')")
            return None
        host = self.text(item["host"], (*key, "host"), "host")
        port = item.get("port", 443)
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            self.at((*key, "port"), f"'port' must be a number from 1 to 65535, not {port!r}")
            return None
        if host is None:
            return None
        text = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            return parse_target(text)
        except TargetError as exc:
            self.at((*key, "host"), f"bad host {exc}")
            return None

    def targets(self, value: Any, key: Key, parents: tuple[_Scope, ...], group: str | None) -> list[InventoryTarget]:
        if not isinstance(value, list):
            self.at(key, "'targets' must be a list of targets")
            return []
        found = [self.target(item, (*key, i), parents, group) for i, item in enumerate(value)]
        return [t for t in found if t is not None]


def _compose(path: Path, what: str) -> tuple[YamlLoader, Any]:
    file = str(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise InventoryError([Problem(file, 0, 0, f"cannot read {what}: {exc.strerror or exc}")]) from None
    except UnicodeDecodeError:
        raise InventoryError([Problem(file, 1, 1, f"{what} is not UTF-8 text")]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise InventoryError([Problem(file, line, column, f"YAML syntax: {exc.problem}")]) from None
    if node is None:
        raise InventoryError([Problem(file, 1, 1, f"{what} is empty")])
    loader = YamlLoader(file)
    return loader, loader.convert(node, ())


def _groups(reader: _Reader, groups: Any, defaults: _Scope) -> list[InventoryTarget]:
    if not isinstance(groups, Mapping):
        reader.at(("groups",), "'groups' must be a mapping of group name to its settings and targets")
        return []
    targets: list[InventoryTarget] = []
    for name, group in groups.items():
        key: Key = ("groups", name)
        if not isinstance(group, Mapping):
            reader.at(key, f"group {name!r} must be a mapping of settings and 'targets'")
            continue
        reader.keys(group, _GROUP_KEYS, key, "group")
        scope = reader.scope(group, key)
        if "targets" not in group:
            reader.at(key, f"group {name!r} has no 'targets'")
        targets += reader.targets(group.get("targets", []), (*key, "targets"), (scope, defaults), name)
    return targets


def load_inventory(path: Path) -> Inventory:
    """Read and check an inventory whole (not its packs: see ``plan``); raises InventoryError with every problem."""
    loader, data = _compose(path, "inventory")
    reader = _Reader(loader, path.parent)
    targets: list[InventoryTarget] = []
    if not isinstance(data, Mapping):
        reader.at((), "an inventory is a mapping with 'targets' (and optionally 'defaults' and 'groups')")
    else:
        reader.keys(data, _TOP_KEYS, (), "inventory")
        defaults = _Scope(key=("defaults",))
        if "defaults" in data:
            if isinstance(data["defaults"], Mapping):
                reader.keys(data["defaults"], _SETTING_KEYS, ("defaults",), "defaults")
                defaults = reader.scope(data["defaults"], ("defaults",))
            else:
                reader.at(("defaults",), "'defaults' must be a mapping of settings")
        targets += _groups(reader, data.get("groups", {}), defaults)
        if "targets" in data:
            targets += reader.targets(data["targets"], ("targets",), (defaults,), None)
        if not targets and not loader.problems:
            reader.at((), "the inventory has no targets")
        seen: dict[str, int] = {}
        for item in targets:
            if item.name in seen:
                loader.problem(
                    (item.line, 1), f"target name {item.name!r} is used twice (first on line {seen[item.name]})"
                )
            seen.setdefault(item.name, item.line)
    if loader.problems:
        raise InventoryError(sorted(loader.problems, key=lambda p: (p.line, p.column)))
    return Inventory(str(path), tuple(targets), dict(loader.positions.values), dict(loader.positions.keys))


def read_targets_file(path: Path | None, text: str | None = None) -> list[Target]:
    """Targets from a plain list, one a line; ``#`` starts a comment. ``path`` None: ``text`` is standard input."""
    file = "<stdin>" if path is None else str(path)
    if text is None and path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InventoryError([Problem(file, 0, 0, f"cannot read targets file: {exc.strerror or exc}")]) from None
        except UnicodeDecodeError:
            raise InventoryError([Problem(file, 1, 1, "targets file is not UTF-8 text")]) from None
    targets, problems = [], []
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.split(" #", 1)[0].split("\t#", 1)[0]
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        column = len(line) - len(line.lstrip()) + 1
        try:
            targets.append(parse_target(stripped))
        except TargetError as exc:
            problems.append(Problem(file, number, column, f"bad target {exc}"))
    if problems:
        raise InventoryError(problems)
    if not targets:
        raise InventoryError([Problem(file, 0, 0, "the targets list names no target")])
    return targets


# --- planning: packs, parameters, connection options --------------------------------------------------------


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
    from scanner.probe.credentials import CredentialsError, load_credentials  # noqa: PLC0415 - only with mTLS

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
    return [InventoryTarget(t.input, t, frozenset(), (_Scope(key=()),)) for t in targets]


# --- the published JSON Schema --------------------------------------------------------------------------------


def _settings_properties() -> dict[str, Any]:
    path = {"type": "string", "minLength": 1}
    return {
        "packs": {
            "description": "Built-in pack ids or pack files (relative to the inventory); replaces, never adds to, "
            "the packs of the group, the defaults and --pack.",
            "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}],
        },
        "params": {
            "description": "Pack parameters: NAME (every pack of the target declaring it) or PACK.NAME to a value.",
            "type": "object",
            "propertyNames": {"pattern": "^([a-z0-9][a-z0-9._-]*\\.)?[a-z][a-z0-9_]*$"},
        },
        "timeout": {"type": "number", "minimum": 0.1, "maximum": 300, "description": "Seconds per connect and read."},
        "sni": {"type": "string", "minLength": 1, "description": "Send this SNI instead of the host name."},
        "no_sni": {"type": "boolean", "description": "Send no SNI at all."},
        "connect": {"type": "string", "description": "Connect to this IP address; the host name stays the SNI."},
        "starttls": {"enum": [p.value for p in StartTls], "description": "Upgrade this plaintext protocol first."},
        "name_check": {
            "type": "boolean",
            "description": "false: judge trust by the chain alone, not for the host name (peers identified by DN).",
        },
        "client": {
            "description": "Client certificate for mTLS: file paths and the NAME of the password's variable, "
            "never a password.",
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "cert": path,
                "key": path,
                "p12": path,
                "password_env": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                "password_file": path,
            },
        },
        "tags": {
            "description": "Names for --tag; they add up over defaults, the group (its name is a tag too), the target.",
            "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string", "minLength": 1}}],
        },
    }


def inventory_schema() -> dict[str, Any]:
    settings = _settings_properties()
    target = {
        "description": "A target: 'target' (host:port or URL) or 'host' and 'port', and its own settings.",
        "oneOf": [
            {"type": "string", "description": "host, host:port, [ipv6]:port or a URL"},
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1, "description": "Unique; the target's name in reports."},
                    "target": {"type": "string", "minLength": 1},
                    "host": {"type": "string", "minLength": 1},
                    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                    **settings,
                },
                "oneOf": [{"required": ["target"]}, {"required": ["host"]}],
            },
        ],
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": INVENTORY_SCHEMA_ID,
        "title": "tlsgate inventory",
        "description": "Targets for `tlsgate scan --inventory FILE`; `tlsgate` itself checks more (pack ids and "
        "parameters, files) and reports file:line:column.",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "defaults": {"$ref": "#/$defs/settings"},
            "groups": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["targets"],
                    "properties": {**settings, "targets": {"$ref": "#/$defs/targets"}},
                },
            },
            "targets": {"$ref": "#/$defs/targets"},
        },
        "$defs": {
            "settings": {"type": "object", "additionalProperties": False, "properties": settings},
            "targets": {"type": "array", "items": {"$ref": "#/$defs/target"}},
            "target": target,
        },
    }
