"""Rule packs: YAML data, validated whole at load time with file:line:column for every problem.

A pack that has any problem is rejected entirely; it is never half-applied.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from scanner.findings import SEVERITIES, Severity
from scanner.policy.factpaths import PathType, UnknownPath, resolve_type, scalar_name
from scanner.policy.operators import (
    LIST_OPERATORS,
    VALUE_OPERATORS,
    FieldMatcher,
    Matcher,
    duration,
    names_scan_time,
)
from scanner.resources import builtin_rules_dir
from scanner.yamlfile import (
    FileProblems,
    Key,
    Problem,
    YamlLoader,
    compose,
    did_you_mean,
    exists,
    is_file,
    read_bytes,
)

_PACK_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_RULE_ID = re.compile(r"^[A-Z0-9][A-Z0-9._-]*$")
_PACK_KEYS = {"id", "title", "version", "source", "description", "extends", "params", "rules"}
_PACK_REQUIRED = ("id", "title", "version", "rules")
_SOURCE_KEYS = {"document", "section", "url", "date", "note"}
_RULE_KEYS = {
    "id", "title", "severity", "fact", "where", "when", "deployments", "rationale", "remediation", "references",
    "section",
}  # fmt: skip
Deployments = Literal["every", "any"]
DEPLOYMENTS: tuple[str, ...] = get_args(Deployments)
_PARAM_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_PARAM_KEYS = {"default", "description"}
_RULE_REQUIRED = ("id", "title", "severity", "fact")
_CHECK_KEYS = set(LIST_OPERATORS) | set(VALUE_OPERATORS)
_NUMERIC = ("min", "max", "less_than", "greater_than")


class PackError(FileProblems):
    """A pack could not be loaded; carries every problem found."""


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    description: str
    value: Any  # the default, or the value given for this run (--param, a child pack's default)


@dataclass(frozen=True)
class Condition:
    """One ``when`` condition: a fact (or a parameter's value) and one constraint on it."""

    operator: str
    argument: Any
    expected: Any
    fact: str | None = None  # None: ``value`` is a parameter's value, known at load time
    value: Any = None
    param: str | None = None
    where: FieldMatcher | None = None


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
    when: tuple[Condition, ...] = ()
    section: str = ""  # where in the pack's source document the rule comes from, e.g. "3.3.1.2"
    # A certificate rule judges each certificate the server serves: "every" must pass it, or "any" one suffices.
    deployments: Deployments = "every"

    @cached_property
    def names_scan_time(self) -> bool:
        """Whether a constraint of the rule compares a date with ``scan_time``: only such a rule is fixed to each
        target's scan time (asked for each rule of each target, hence cached)."""
        constraints = [self.argument, self.where, *(x for c in self.when for x in (c.argument, c.where))]
        return any(names_scan_time(c) for c in constraints)

    @cached_property  # asked for each rule of each target
    def on_certificate(self) -> bool:
        """Whether the rule (or a condition of it) reads the certificate: judged once per certificate deployment."""
        facts = [self.fact, *(c.fact for c in self.when if c.fact is not None)]
        return any(is_certificate_fact(f) for f in facts)


def is_certificate_fact(path: str) -> bool:
    return path.split(".", 1)[0] == "certificate"


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
    params: Mapping[str, Param] = field(default_factory=dict)
    extends: tuple[str, ...] = ()


# --- validation --------------------------------------------------------------------------------------


class _Validator:
    def __init__(self, loader: YamlLoader) -> None:
        self.loader = loader
        self.params: dict[str, Param] = {}

    def at(self, key: Key, message: str, *, on_key: bool = False) -> None:
        self.loader.at(key, message, on_key=on_key)

    def text(self, data: Mapping[str, Any], name: str, key: Key) -> str:
        value = data.get(name)
        if value is None:
            return ""
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            self.at((*key, name), f"{name!r} must be text")
            return ""
        return str(value)

    def matcher(self, spec: Any, scalar: Any, key: Key, unit: str | None = None) -> dict[str, Any]:
        """Check a value constraint; return it normalised (durations such as 3y converted to the fact's unit)."""
        if isinstance(spec, Mapping) and not spec:
            # an empty conjunction matches everything: a rule that can never fail
            self.at(key, "expects at least one operator, e.g. {min: 2048}, or a plain value")
            return {}
        terms = spec.items() if isinstance(spec, Mapping) else [("equals", spec)]
        normal: dict[str, Any] = {}
        for name, given in terms:
            arg = given
            op = VALUE_OPERATORS.get(name)
            if op is None:
                hint = did_you_mean(name, set(VALUE_OPERATORS)) or f"; operators: {', '.join(VALUE_OPERATORS)}"
                self.at((*key, name), f"unknown operator {name!r}{hint}", on_key=True)
                continue
            where = (*key, name) if isinstance(spec, Mapping) else key
            if name in _NUMERIC and isinstance(arg, str) and unit:
                converted = duration(arg, unit)
                if converted is None:
                    self.at(where, f"{name!r} expects a number or a duration such as 30d, 3y, 300s ({unit})")
                    continue
                arg = converted
            error = op.check_arg(arg)
            if error:
                self.at(where, f"{name!r} {error}")
                continue
            self.allowed_values(arg if name in ("in", "not_in") else [arg], scalar, name, where)
            normal[name] = arg
        return normal

    def allowed_values(self, values: list[Any], scalar: Any, op: str, key: Key) -> None:
        """Catch typos such as ``TLSv1.4`` against enumerated fact values."""
        if op in ("exists", "matches", "dn_matches", "before", "after") or op in _NUMERIC:
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
            return FieldMatcher.for_scalars(self.matcher(spec, path_type.scalar, key, path_type.unit))
        if path_type.model is None or not isinstance(spec, Mapping) or not spec:
            self.at(key, "expects a mapping of field names to constraints, e.g. {version: TLSv1.3}")
            return None
        normal: dict[str, Any] = {}
        for name, sub in spec.items():
            try:
                field_type = resolve_type(name, path_type.model)
            except UnknownPath as exc:
                self.at((*key, name), f"unknown field {exc.missing!r}{did_you_mean(exc.missing, exc.known)}; "
                        f"fields here: {', '.join(exc.known)}", on_key=True)  # fmt: skip
                continue
            if field_type.kind != "scalar":
                self.at((*key, name), f"field {name!r} is not a single value; constraints apply to values")
                continue
            normal[name] = self.matcher(sub, field_type.scalar, (*key, name), field_type.unit)
        return FieldMatcher.for_objects(normal)

    def rule(self, data: Any, key: Key) -> Rule | None:
        if not isinstance(data, Mapping):
            self.at(key, "a rule must be a mapping")
            return None
        for name in _RULE_REQUIRED:
            if name not in data:
                self.at(key, f"rule is missing {name!r}")
        checks = [k for k in data if k in _CHECK_KEYS]
        self.loader.unknown_keys(data, _RULE_KEYS | _CHECK_KEYS, key, "rule")
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
        when = self.conditions(data.get("when"), (*key, "when")) if "when" in data else ()
        deployments = self.deployments(data, fact, when, key)
        if severity not in SEVERITIES or argument is None or when is None or deployments not in DEPLOYMENTS:
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
            when=when,
            deployments=deployments,
            section=self.text(data, "section", key).strip(),
        )

    def deployments(self, data: Mapping[str, Any], fact: str, when: tuple[Condition, ...] | None, key: Key) -> Any:
        """``deployments``: every (the default) or any; only on a rule that reads the certificate."""
        deployments = data.get("deployments", "every")
        if deployments not in DEPLOYMENTS:
            self.at((*key, "deployments"), f"'deployments' is every or any, not {deployments!r}")
        elif "deployments" in data and when is not None:
            facts = [fact, *(c.fact for c in when if c.fact is not None)]
            if not any(is_certificate_fact(f) for f in facts):
                self.at((*key, "deployments"), "'deployments' applies to rules on certificate facts only")
        return deployments

    def conditions(self, spec: Any, key: Key) -> tuple[Condition, ...] | None:
        """``when``: one condition or a list; every one must hold for the rule to apply."""
        items = spec if isinstance(spec, list) else [spec]
        keys = [(*key, i) for i in range(len(items))] if isinstance(spec, list) else [key]
        found: list[Condition] = []
        ok = True
        for item, item_key in zip(items, keys, strict=True):
            condition = self.condition(item, item_key)
            ok = ok and condition is not None
            if condition is not None:
                found.append(condition)
        return tuple(found) if ok else None

    def condition(self, item: Any, key: Key) -> Condition | None:
        if not isinstance(item, Mapping):
            self.at(key, "a 'when' condition is a mapping: {fact: PATH, OPERATOR: VALUE} or {param: NAME, ...}")
            return None
        self.loader.unknown_keys(item, {"fact", "param", "where"} | _CHECK_KEYS, key, "condition")
        checks = [k for k in item if k in _CHECK_KEYS]
        if len(checks) != 1:
            self.at(key, "a 'when' condition needs exactly one constraint")
            return None
        operator, expected = checks[0], item[checks[0]]
        if "param" in item:
            name = item["param"]
            if name not in self.params:
                self.at((*key, "param"), f"unknown parameter {name!r}{did_you_mean(str(name), set(self.params))}")
                return None
            value = self.params[name].value
            value_type = PathType("list_of_scalars" if isinstance(value, list) else "scalar", scalar=type(value))
            argument = self.constraint(operator, expected, value_type, (*key, operator))
            if argument is None:
                return None
            return Condition(operator, argument, expected, value=value, param=name)
        path_type = self.fact_type(item, key)
        if path_type is None:
            if "fact" not in item:
                self.at(key, "a 'when' condition names a 'fact' or a 'param'")
            return None
        argument = self.constraint(operator, expected, path_type, (*key, operator))
        where = None
        if "where" in item and path_type.kind == "list_of_objects":
            where = self.field_matcher(item["where"], path_type, (*key, "where"))
        if argument is None:
            return None
        return Condition(operator, argument, expected, fact=item["fact"], where=where)

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
            hint = did_you_mean(exc.missing, exc.known)
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
        return Matcher.from_spec(self.matcher({operator: expected}, path_type.scalar, key[:-1], path_type.unit))

    def declared_params(self, data: Mapping[str, Any]) -> dict[str, tuple[Any, str]]:
        """The ``params`` block: name -> (default, description)."""
        spec = data.get("params", {})
        if not isinstance(spec, Mapping):
            self.at(("params",), "'params' must be a mapping: NAME: {default: VALUE, description: TEXT}")
            return {}
        declared: dict[str, tuple[Any, str]] = {}
        for name, body in spec.items():
            key: Key = ("params", name)
            if not _PARAM_NAME.fullmatch(name):
                self.at(key, f"parameter name {name!r} must be lower case letters, digits and '_'", on_key=True)
                continue
            if not isinstance(body, Mapping) or "default" not in body:
                self.at(key, f"parameter {name!r} needs a 'default' (and a 'description')")
                continue
            self.loader.unknown_keys(body, _PARAM_KEYS, key, "parameter")
            declared[name] = (body["default"], self.text(body, "description", key).strip())
        return declared

    def set_params(
        self, inherited: Mapping[str, Param], declared: Mapping[str, tuple[Any, str]], overrides: Mapping[str, Any]
    ) -> None:
        params = dict(inherited)
        for name, (default, description) in declared.items():
            params[name] = Param(
                name, default, description or params.get(name, Param(name, None, "", None)).description, default
            )
        for name, value in overrides.items():
            if name not in params:
                continue  # the caller reports overrides no pack in the chain declares
            default = params[name].default
            if not _same_kind(default, value):
                self.at(("params", name), f"parameter {name!r} takes {_kind(default)}, not {value!r}")
                continue
            params[name] = Param(name, default, params[name].description, value)
        self.params = params

    def substitute(self, value: Any, key: Key) -> Any:
        """Replace ``{param: NAME}`` anywhere in a rule by the parameter's value for this run."""
        if isinstance(value, Mapping):
            if set(value) == {"param"}:
                name = value["param"]
                if name not in self.params:
                    self.at(key, f"unknown parameter {name!r}{did_you_mean(str(name), set(self.params))}")
                    return value
                return self.params[name].value
            return {k: (v if k == "param" else self.substitute(v, (*key, k))) for k, v in value.items()}
        if isinstance(value, list):
            return [self.substitute(v, (*key, i)) for i, v in enumerate(value)]
        return value

    def pack(
        self,
        data: Any,
        path: Path,
        sha256: str,
        parents: list[RulePack] | None = None,
        overrides: Mapping[str, Any] | None = None,
        declared: Mapping[str, tuple[Any, str]] | None = None,
    ) -> RulePack | None:
        if not isinstance(data, Mapping):
            self.at((), "a rule pack must be a YAML mapping with id, title, version and rules")
            return None
        parents = parents or []
        inherited: dict[str, Param] = {}
        for parent in parents:
            inherited.update(parent.params)
        self.set_params(inherited, declared or {}, overrides or {})
        for name in _PACK_REQUIRED:
            if name not in data:
                self.at((), f"pack is missing {name!r}")
        self.loader.unknown_keys(data, _PACK_KEYS, (), "pack")
        pack_id = self.text(data, "id", ())
        if pack_id and not _PACK_ID.fullmatch(pack_id):
            self.at(("id",), f"pack id {pack_id!r} must be lower case letters, digits and '-'")
        source = data.get("source", {})
        if not isinstance(source, Mapping):
            self.at(("source",), "'source' must be a mapping (document, section, url, date)")
            source = {}
        self.loader.unknown_keys(source, _SOURCE_KEYS, ("source",), "source")
        rules_data = data.get("rules", [])
        if not isinstance(rules_data, list) or ("rules" in data and not rules_data and "extends" not in data):
            self.at(("rules",), "'rules' must be a non-empty list")
            rules_data = []
        rules_data = [self.substitute(r, ("rules", i)) for i, r in enumerate(rules_data)]
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
            rules=_merge_rules(parents, rules),
            path=str(path),
            sha256=sha256,
            description=self.text(data, "description", ()).strip(),
            source={str(k): str(v) for k, v in source.items()},
            params=self.params,
            extends=tuple(p.id for p in parents),
        )


def _merge_rules(parents: list[RulePack], own: list[Rule]) -> tuple[Rule, ...]:
    """Parents' rules in order, a child's rule replacing the parent rule with its id; new rules after."""
    merged: dict[str, Rule] = {}
    for parent in parents:
        merged.update({rule.id: rule for rule in parent.rules})
    for rule in own:
        merged[rule.id] = rule
    return tuple(merged.values())


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    return "text" if isinstance(value, str) else type(value).__name__


def _same_kind(default: Any, value: Any) -> bool:
    if default is None:
        return True
    return _kind(default) == _kind(value)


def load_pack(path: Path, params: Mapping[str, Any] | None = None) -> RulePack:
    """Load and validate one pack file (and what it extends); raises PackError listing every problem.

    ``params`` override parameter defaults for this run; a name that neither the pack nor a pack it extends
    declares is an error.
    """
    pack = _load(path, dict(params or {}), ())
    declared = set(pack.params)
    unknown = sorted(set(params or {}) - declared)
    if unknown:
        known = ", ".join(sorted(declared)) or "none"
        raise PackError(
            [Problem(str(path), 1, 1, f"pack {pack.id!r} has no parameter {unknown[0]!r} (parameters: {known})")]
        )
    return pack


def _load(path: Path, params: dict[str, Any], stack: tuple[Path, ...]) -> RulePack:
    raw = read_bytes(path, "pack", PackError)
    loader, data = compose(str(path), raw, "pack", PackError)
    validator = _Validator(loader)
    declared = validator.declared_params(data) if isinstance(data, Mapping) else {}
    parents: list[RulePack] = []
    if isinstance(data, Mapping):
        # A child's defaults (and this run's values) reach the rules it inherits.
        inherited_values = {name: default for name, (default, _) in declared.items()} | params
        parents = _parents(data, path, inherited_values, (*stack, path.resolve()), validator)
    pack = validator.pack(data, path, hashlib.sha256(raw).hexdigest(), parents, params, declared)
    if loader.problems or pack is None:
        raise PackError(sorted(loader.problems, key=lambda p: (p.line, p.column)))
    return pack


def _parents(
    data: Mapping[str, Any], path: Path, params: dict[str, Any], stack: tuple[Path, ...], validator: _Validator
) -> list[RulePack]:
    """The packs ``extends`` names (by built-in id, or by path relative to this pack), loaded with this run's
    parameters; a cycle or a broken parent is a problem of this pack, at its ``extends`` entry."""
    refs = data.get("extends", [])
    if isinstance(refs, str):
        refs = [refs]
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        validator.at(("extends",), "'extends' is a pack id or path, or a list of them")
        return []
    parents: list[RulePack] = []
    for index, ref in enumerate(refs):
        key: Key = ("extends", index) if isinstance(data.get("extends"), list) else ("extends",)
        try:
            parent_path = _pack_path(ref, path.parent)
        except UnknownPack as exc:
            validator.at(key, str(exc))
            continue
        if parent_path.resolve() in stack:
            chain = " -> ".join(p.name for p in (*stack, parent_path.resolve()))
            validator.at(key, f"cyclic 'extends': {chain}")
            continue
        try:
            parents.append(_load(parent_path, params, stack))
        except PackError as exc:
            first = exc.problems[0]
            validator.at(key, f"extended pack {ref!r} is invalid: {first}")
    return parents


def builtin_pack_files() -> Iterator[Path]:
    yield from sorted(builtin_rules_dir().glob("*.yaml"))


class UnknownPack(LookupError):
    pass


def _pack_path(ref: str, base: Path | None = None) -> Path:
    """A pack file by path (relative to ``base`` when given) or a built-in pack by id."""
    candidate = Path(ref)
    if base is not None and not candidate.is_absolute() and exists(base / candidate):
        candidate = base / candidate
    if candidate.suffix in (".yaml", ".yml") or exists(candidate):
        if not is_file(candidate):
            raise UnknownPack(f"pack file {ref!r} does not exist")
        return candidate
    for file in builtin_pack_files():
        if file.stem == ref:
            return file
    known = [f.stem for f in builtin_pack_files()]
    raise UnknownPack(f"unknown pack {ref!r}{did_you_mean(ref, known)}; built-in packs: {', '.join(known)}")


def resolve_pack(ref: str, params: Mapping[str, Any] | None = None) -> RulePack:
    """A pack by file path, or a built-in pack by id, with this run's parameter values."""
    return load_pack(_pack_path(ref), params)
