"""Reading inventories and plain target lists, every problem at once as ``file:line:column: message``.

Plain target lists (``--targets-file``) are one target per line, ``#`` comments and blank lines ignored.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from scanner.policy.operators import duration
from scanner.probe.connect.starttls import StartTls
from scanner.targets.inventory import ClientSpec, Inventory, InventoryError, InventoryTarget, Scope, Setting
from scanner.targets.parse import Target, TargetError, parse_target
from scanner.yamlfile import Key, Problem, YamlLoader, decode_utf8, did_you_mean, is_file, read_bytes, read_yaml

_TOP_KEYS = ("defaults", "groups", "targets")
_SETTING_KEYS = (
    "packs", "params", "timeout", "sni", "no_sni", "connect", "starttls", "name_check", "client", "tags", "every",
    "zone",
)  # fmt: skip
_GROUP_KEYS = (*_SETTING_KEYS, "targets")
_TARGET_KEYS = ("name", "target", "host", "port", *_SETTING_KEYS)
ZONE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")  # a network zone; a Dask resource name: zone-NAME
MIN_EVERY, MAX_EVERY = 1.0, 365 * 86400.0  # `every`: seconds between the scans of `tlsgate watch`
_CLIENT_KEYS = ("cert", "key", "p12", "password_env", "password_file")
_INLINE_REFUSAL = (
    "a password is never written in an inventory (files get committed and shared): name the environment "
    "variable that holds it with 'password_env', or a file with 'password_file'"
)


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
        if must_exist and not is_file(path):
            self.at(
                key, f"{name} file {text!r} does not exist" + (f" (looked for {path})" if text != str(path) else "")
            )
            return None
        return path

    def scope(self, data: Mapping[str, Any], key: Key) -> Scope:
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
        if "every" in data:
            seconds = duration(data["every"], "seconds")
            if seconds is None or not MIN_EVERY <= seconds <= MAX_EVERY:
                self.at((*key, "every"), "'every' must be a duration such as 30m, 6h or 1d (from 1s to 365d)")
            else:
                kwargs["every"] = seconds
        return Scope(key=key, **kwargs)

    def connection(self, data: Mapping[str, Any], key: Key, kwargs: dict[str, Any]) -> None:
        """sni, no_sni, connect, starttls, name_check and zone (where it is reachable from), into ``kwargs``."""
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
        if "zone" in data:
            value = data["zone"]
            if isinstance(value, str) and ZONE_NAME.fullmatch(value):
                kwargs["zone"] = value
            else:
                self.at((*key, "zone"), "'zone' must be a name of letters, digits, '.', '_' or '-' (e.g. dmz)")
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

    def target(self, item: Any, key: Key, parents: tuple[Scope, ...], group: str | None) -> InventoryTarget | None:
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

    def targets(self, value: Any, key: Key, parents: tuple[Scope, ...], group: str | None) -> list[InventoryTarget]:
        if not isinstance(value, list):
            self.at(key, "'targets' must be a list of targets")
            return []
        found = [self.target(item, (*key, i), parents, group) for i, item in enumerate(value)]
        return [t for t in found if t is not None]


def _groups(reader: _Reader, groups: Any, defaults: Scope) -> list[InventoryTarget]:
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
    loader, data = read_yaml(path, "inventory", InventoryError)
    reader = _Reader(loader, path.parent)
    targets: list[InventoryTarget] = []
    if not isinstance(data, Mapping):
        reader.at((), "an inventory is a mapping with 'targets' (and optionally 'defaults' and 'groups')")
    else:
        reader.keys(data, _TOP_KEYS, (), "inventory")
        defaults = Scope(key=("defaults",))
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
        text = decode_utf8(file, read_bytes(path, "targets file", InventoryError), "targets file", InventoryError)
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
