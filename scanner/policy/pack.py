"""Rule packs: YAML data, validated whole at load time with file:line:column for every problem.

A pack that has any problem is rejected entirely; it is never half-applied.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml

from scanner.policy.factpaths import PathType, UnknownPath, resolve_type, scalar_name
from scanner.policy.operators import LIST_OPERATORS, VALUE_OPERATORS, FieldMatcher, Matcher
from scanner.resources import builtin_rules_dir

Severity = Literal["critical", "high", "medium", "low", "info"]
SEVERITIES: tuple[str, ...] = get_args(Severity)
_PACK_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_RULE_ID = re.compile(r"^[A-Z0-9][A-Z0-9._-]*$")
_PACK_KEYS = {"id", "title", "version", "source", "description", "rules"}
_PACK_REQUIRED = ("id", "title", "version", "rules")
_SOURCE_KEYS = {"document", "section", "url", "date", "note"}
_RULE_KEYS = {"id", "title", "severity", "fact", "where", "rationale", "remediation", "references"}
_RULE_REQUIRED = ("id", "title", "severity", "fact")
_CHECK_KEYS = set(LIST_OPERATORS) | set(VALUE_OPERATORS)


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class PackError(Exception):
    """A pack could not be loaded; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: Severity
    fact: str
    operator: str
    argument: Any  # FieldMatcher, Matcher, or list of values: compiled from ``expected``
    expected: Any  # the constraint as written, for evidence
    where: FieldMatcher | None = None
    where_spec: Any = None
    rationale: str = ""
    remediation: str = ""
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class RulePack:
    id: str
    title: str
    version: str
    rules: tuple[Rule, ...]
    path: str
    sha256: str
    description: str = ""
    source: Mapping[str, str] = field(default_factory=dict)


# --- YAML with positions ---------------------------------------------------------------------------

Key = tuple[str | int, ...]


@dataclass
class _Positions:
    values: dict[Key, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Key, tuple[int, int]] = field(default_factory=dict)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Loader:
    def __init__(self, file: str) -> None:
        self.file = file
        self.positions = _Positions()
        self.problems: list[Problem] = []
        self._constructor = yaml.constructor.SafeConstructor()
        self._open: set[int] = set()  # collection nodes being converted, to catch `&a [*a]`

    def construct(self, node: yaml.Node) -> tuple[bool, Any]:
        """(True, value), or (False, None) and a problem for an unknown tag or a value such as 2021-02-30."""
        try:
            return True, self._constructor.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            self.problem(_mark(node), f"YAML value: {exc.problem}")
        except ValueError as exc:
            self.problem(_mark(node), f"YAML value {node.value!r}: {exc}")
        return False, None

    def convert(self, node: yaml.Node, key: Key) -> Any:
        self.positions.values[key] = _mark(node)
        if not isinstance(node, yaml.CollectionNode):
            return self.construct(node)[1]
        if id(node) in self._open:
            self.problem(_mark(node), "YAML alias refers to a node that contains it")
            return None
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.convert(item, (*key, i)) for i, item in enumerate(node.value)]
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                constructed, name = self.construct(key_node)
                if not constructed:
                    continue
                if not isinstance(name, str):
                    self.problem(_mark(key_node), f"keys must be strings, not {name!r}")
                    continue
                if name in result:
                    self.problem(_mark(key_node), f"duplicate key {name!r}")
                self.positions.keys[(*key, name)] = _mark(key_node)
                result[name] = self.convert(value_node, (*key, name))
            return result
        finally:
            self._open.discard(id(node))

    def problem(self, where: tuple[int, int], message: str) -> None:
        self.problems.append(Problem(self.file, where[0], where[1], message))


def _hint(name: str, choices: set[str] | list[str]) -> str:
    close = difflib.get_close_matches(name, sorted(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --- validation --------------------------------------------------------------------------------------


class _Validator:
    def __init__(self, loader: _Loader) -> None:
        self.loader = loader

    def at(self, key: Key, message: str, *, on_key: bool = False) -> None:
        positions = self.loader.positions
        where = (positions.keys.get(key) if on_key else None) or positions.values.get(key)
        while where is None and key:
            key = key[:-1]
            where = positions.values.get(key)
        self.loader.problem(where or (1, 1), message)

    def text(self, data: Mapping[str, Any], name: str, key: Key) -> str:
        value = data.get(name)
        if value is None:
            return ""
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            self.at((*key, name), f"{name!r} must be text")
            return ""
        return str(value)

    def unknown_keys(self, data: Mapping[str, Any], allowed: set[str], key: Key, what: str) -> None:
        for name in data:
            if name not in allowed:
                self.at((*key, name), f"unknown {what} key {name!r}{_hint(name, allowed)}", on_key=True)

    def matcher(self, spec: Any, scalar: Any, key: Key) -> None:
        if isinstance(spec, Mapping) and not spec:
            # an empty conjunction matches everything: a rule that can never fail
            self.at(key, "expects at least one operator, e.g. {min: 2048}, or a plain value")
            return
        terms = spec.items() if isinstance(spec, Mapping) else [("equals", spec)]
        for name, arg in terms:
            op = VALUE_OPERATORS.get(name)
            if op is None:
                hint = _hint(name, set(VALUE_OPERATORS)) or f"; operators: {', '.join(VALUE_OPERATORS)}"
                self.at((*key, name), f"unknown operator {name!r}{hint}", on_key=True)
                continue
            where = (*key, name) if isinstance(spec, Mapping) else key
            error = op.check_arg(arg)
            if error:
                self.at(where, f"{name!r} {error}")
                continue
            self.allowed_values(arg if name in ("in", "not_in") else [arg], scalar, name, where)

    def allowed_values(self, values: list[Any], scalar: Any, op: str, key: Key) -> None:
        """Catch typos such as ``TLSv1.4`` against enumerated fact values."""
        if op in ("exists", "matches", "min", "max"):
            return
        choices: list[Any] | None = None
        if isinstance(scalar, type) and issubclass(scalar, Enum):
            choices = [m.value for m in scalar]
        elif get_origin(scalar) is Literal:
            choices = list(get_args(scalar))
        if choices is None:
            return
        for value in values:
            if value not in choices:
                self.at(key, f"{value!r} can never occur here: expected {scalar_name(scalar)}")

    def field_matcher(self, spec: Any, path_type: PathType, key: Key) -> FieldMatcher | None:
        if path_type.kind == "list_of_scalars":
            self.matcher(spec, path_type.scalar, key)
            return FieldMatcher.for_scalars(spec)
        if path_type.model is None or not isinstance(spec, Mapping) or not spec:
            self.at(key, "expects a mapping of field names to constraints, e.g. {version: TLSv1.3}")
            return None
        for name, sub in spec.items():
            try:
                field_type = resolve_type(name, path_type.model)
            except UnknownPath as exc:
                self.at((*key, name), f"unknown field {exc.missing!r}{_hint(exc.missing, exc.known)}; "
                        f"fields here: {', '.join(exc.known)}", on_key=True)  # fmt: skip
                continue
            if field_type.kind != "scalar":
                self.at((*key, name), f"field {name!r} is not a single value; constraints apply to values")
                continue
            self.matcher(sub, field_type.scalar, (*key, name))
        return FieldMatcher.for_objects(spec)

    def rule(self, data: Any, key: Key) -> Rule | None:
        if not isinstance(data, Mapping):
            self.at(key, "a rule must be a mapping")
            return None
        for name in _RULE_REQUIRED:
            if name not in data:
                self.at(key, f"rule is missing {name!r}")
        checks = [k for k in data if k in _CHECK_KEYS]
        self.unknown_keys(data, _RULE_KEYS | _CHECK_KEYS, key, "rule")
        rule_id = self.text(data, "id", key)
        if rule_id and not _RULE_ID.fullmatch(rule_id):
            self.at((*key, "id"), f"rule id {rule_id!r} must be upper case letters, digits, '.', '_' or '-'")
        severity = data.get("severity")
        if "severity" in data and severity not in SEVERITIES:
            self.at((*key, "severity"), f"severity {severity!r} is not one of {', '.join(SEVERITIES)}")
        if len(checks) != 1:
            self.at(key, "a rule needs exactly one constraint, one of: " + ", ".join(sorted(_CHECK_KEYS))
                    + (f" (found {', '.join(checks)})" if checks else ""))  # fmt: skip
        fact = data.get("fact")
        path_type = self.fact_type(data, key)
        if path_type is None or len(checks) != 1 or not isinstance(fact, str):
            return None
        operator = checks[0]
        expected = data[operator]
        argument = self.constraint(operator, expected, path_type, (*key, operator))
        where = None
        if "where" in data:
            if path_type.kind != "list_of_objects":
                self.at((*key, "where"), "'where' filters lists of objects; this fact is not one")
            else:
                where = self.field_matcher(data["where"], path_type, (*key, "where"))
        references = self.references(data, key)
        if severity not in SEVERITIES or argument is None:
            return None
        return Rule(
            id=rule_id,
            title=self.text(data, "title", key),
            severity=severity,
            fact=fact,
            operator=operator,
            argument=argument,
            expected=expected,
            where=where,
            where_spec=data.get("where"),
            rationale=self.text(data, "rationale", key).strip(),
            remediation=self.text(data, "remediation", key).strip(),
            references=tuple(references),
        )

    def fact_type(self, data: Mapping[str, Any], key: Key) -> PathType | None:
        """The type of the rule's fact path, or None (with a problem unless 'fact' is missing)."""
        fact = data.get("fact")
        if not isinstance(fact, str):
            if "fact" in data:
                self.at((*key, "fact"), "'fact' must be a dotted path such as certificate.leaf.subject")
            return None
        try:
            return resolve_type(fact)
        except UnknownPath as exc:
            names = f"; names here: {', '.join(exc.known)}" if exc.known else ""
            hint = _hint(exc.missing, exc.known)
            self.at((*key, "fact"), f"unknown fact path {fact!r}: no {exc.missing!r}{hint}{names}")
            return None

    def references(self, data: Mapping[str, Any], key: Key) -> list[str]:
        references = data.get("references", [])
        if not isinstance(references, list) or not all(isinstance(r, str) for r in references):
            self.at((*key, "references"), "'references' must be a list of strings")
            return []
        return references

    def constraint(self, operator: str, expected: Any, path_type: PathType, key: Key) -> Any:
        if operator in LIST_OPERATORS:
            list_op = LIST_OPERATORS[operator]
            if path_type.kind not in ("list_of_objects", "list_of_scalars"):
                self.at(key, f"{operator!r} applies to lists; this fact is a single value")
                return None
            if list_op.scalars_only and path_type.kind != "list_of_scalars":
                self.at(key, f"{operator!r} compares plain values; for a list of objects use each/some/none")
                return None
            if list_op.takes == "values":
                if not isinstance(expected, list):
                    self.at(key, f"{operator!r} expects a list of values")
                    return None
                self.allowed_values(expected, path_type.scalar, "in", key)
                return expected
            return self.field_matcher(expected, path_type, key)
        if path_type.kind != "scalar":
            kind = path_type.kind.replace("_", " ")
            lists = "each/some/none/only/forbid/require_any/require_all"
            self.at(key, f"{operator!r} applies to single values; this fact is a {kind} (use {lists})")
            return None
        self.matcher({operator: expected}, path_type.scalar, key[:-1])
        return Matcher.from_spec({operator: expected})

    def pack(self, data: Any, path: Path, sha256: str) -> RulePack | None:
        if not isinstance(data, Mapping):
            self.at((), "a rule pack must be a YAML mapping with id, title, version and rules")
            return None
        for name in _PACK_REQUIRED:
            if name not in data:
                self.at((), f"pack is missing {name!r}")
        self.unknown_keys(data, _PACK_KEYS, (), "pack")
        pack_id = self.text(data, "id", ())
        if pack_id and not _PACK_ID.fullmatch(pack_id):
            self.at(("id",), f"pack id {pack_id!r} must be lower case letters, digits and '-'")
        source = data.get("source", {})
        if not isinstance(source, Mapping):
            self.at(("source",), "'source' must be a mapping (document, section, url, date)")
            source = {}
        self.unknown_keys(source, _SOURCE_KEYS, ("source",), "source")
        rules_data = data.get("rules", [])
        if not isinstance(rules_data, list) or ("rules" in data and not rules_data):
            self.at(("rules",), "'rules' must be a non-empty list")
            rules_data = []
        rules: list[Rule] = []
        seen: dict[str, int] = {}
        for index, rule_data in enumerate(rules_data):
            rule = self.rule(rule_data, ("rules", index))
            if rule is None:
                continue
            if rule.id in seen:
                self.at(
                    ("rules", index, "id"),
                    f"duplicate rule id {rule.id!r} (first at rule {seen[rule.id] + 1})",
                )
            seen.setdefault(rule.id, index)
            rules.append(rule)
        return RulePack(
            id=pack_id,
            title=self.text(data, "title", ()),
            version=self.text(data, "version", ()),
            rules=tuple(rules),
            path=str(path),
            sha256=sha256,
            description=self.text(data, "description", ()).strip(),
            source={str(k): str(v) for k, v in source.items()},
        )


def load_pack(path: Path) -> RulePack:
    """Load and validate one pack file; raises PackError listing every problem."""
    file = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PackError([Problem(file, 0, 0, f"cannot read pack: {exc.strerror}")]) from None
    loader = _Loader(file)
    try:
        node = yaml.compose(raw.decode("utf-8"), Loader=yaml.SafeLoader)
    except UnicodeDecodeError:
        raise PackError([Problem(file, 1, 1, "pack is not UTF-8 text")]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise PackError([Problem(file, line, col, f"YAML syntax: {exc.problem}")]) from None
    if node is None:
        raise PackError([Problem(file, 1, 1, "pack is empty")])
    data = loader.convert(node, ())
    pack = _Validator(loader).pack(data, path, hashlib.sha256(raw).hexdigest())
    if loader.problems or pack is None:
        raise PackError(sorted(loader.problems, key=lambda p: (p.line, p.column)))
    return pack


def builtin_pack_files() -> Iterator[Path]:
    yield from sorted(builtin_rules_dir().glob("*.yaml"))


class UnknownPack(LookupError):
    pass


def resolve_pack(ref: str) -> RulePack:
    """A pack by file path, or a built-in pack by id."""
    candidate = Path(ref)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        if not candidate.is_file():
            raise UnknownPack(f"pack file {ref!r} does not exist")
        return load_pack(candidate)
    for file in builtin_pack_files():
        if file.stem == ref:
            return load_pack(file)
    known = [f.stem for f in builtin_pack_files()]
    raise UnknownPack(f"unknown pack {ref!r}{_hint(ref, known)}; built-in packs: {', '.join(known)}")
