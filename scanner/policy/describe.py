"""A rule pack in plain words, for people reviewing what a policy demands (``tlsgate rules show``).

This is rendering: it reads a loaded pack and returns lines; it decides nothing and prints nothing.
"""

from __future__ import annotations

import textwrap
from typing import Any

import yaml

from scanner.policy.operators import LIST_OPERATORS
from scanner.policy.pack import Condition, Rule, RulePack


def _value(value: Any) -> str:
    """A value as it would be written in a pack (YAML flow style)."""
    try:
        text = yaml.safe_dump(value, default_flow_style=True, width=10_000, allow_unicode=True)
    except yaml.YAMLError:
        return str(value)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _values(values: Any) -> str:
    if isinstance(values, list | tuple):
        return "[" + ", ".join(str(v) for v in values) + "]"
    return _value(values)


def _describe(argument: Any) -> str:
    describe = getattr(argument, "describe", None)
    return str(describe()) if callable(describe) else _values(argument)


# Words for the list operators; {d} is the matcher's own describe(), {w} the where filter.
_ELEMENT_WORDS = {
    "each": ("every element{w} must satisfy: {d}", "every element{w} must {d}"),
    "some": ("at least one element{w} must satisfy: {d}", "at least one element{w} must {d}"),
    "none": ("no element{w} may satisfy: {d}", "no element{w} may {d}"),
}
_VALUES_WORDS = {
    "only": "must contain only values from {v}",
    "forbid": "must contain none of {v}",
    "require_any": "must contain at least one of {v}",
    "require_all": "must contain all of {v}",
}


def constraint_words(subject: str, operator: str, argument: Any, where: Any = None) -> str:
    """``fact protocols: every element (of those where status must equal accepted) must satisfy: ...``."""
    if operator in _VALUES_WORDS:
        return f"{subject} {_VALUES_WORDS[operator].format(v=_values(argument))}"
    if operator in _ELEMENT_WORDS:
        on_objects, on_values = _ELEMENT_WORDS[operator]
        plain_values = getattr(argument, "scalar", None) is not None
        w = f" (of those where {_describe(where)})" if where is not None else ""
        return f"{subject}: " + (on_values if plain_values else on_objects).format(w=w, d=_describe(argument))
    if operator in LIST_OPERATORS:  # an operator added to the table after these words were written
        return f"{subject} {operator}: {_describe(argument)}"
    return f"{subject} must {_describe(argument)}"


def _condition_words(condition: Condition) -> str:
    if condition.fact is not None:
        return constraint_words(f"fact {condition.fact}", condition.operator, condition.argument, condition.where)
    subject = f"parameter {condition.param} (= {_value(condition.value)})"
    return constraint_words(subject, condition.operator, condition.argument)


_DEPLOYMENT_WORDS = {
    "every": "every certificate the server serves (one that fails it fails the rule)",
    "any": "any certificate the server serves (one that meets it is enough)",
}


def describe_rule(rule: Rule, width: int) -> list[str]:
    indent = "    "

    def para(label: str, text: str) -> list[str]:
        if not text:
            return []
        head = f"{indent}{label}: " if label else indent
        return textwrap.wrap(
            " ".join(text.split()),
            width,
            initial_indent=head,
            subsequent_indent=indent + "  ",
            break_on_hyphens=False,
            break_long_words=False,
        )

    lines = textwrap.wrap(
        f"[{rule.severity}] {rule.id} {rule.title}", width, subsequent_indent="  ", break_long_words=False
    )
    lines += para("", constraint_words(f"fact {rule.fact}", rule.operator, rule.argument, rule.where))
    for condition in rule.when:
        lines += para("only when", _condition_words(condition))
    if rule.on_certificate:
        lines += para("judged on", _DEPLOYMENT_WORDS[rule.deployments])
    lines += para("Rationale", rule.rationale)
    lines += para("Remediation", rule.remediation)
    if rule.section:
        lines += para("Section", rule.section)
    if rule.references:
        lines.append(f"{indent}References:")
        lines += [f"{indent}  {ref}" for ref in rule.references]
    return lines


def describe_pack(pack: RulePack, width: int = 88) -> list[str]:
    """The whole pack in plain words, for people reviewing what a policy demands."""

    def wrapped(text: str, indent: str = "  ") -> list[str]:
        return textwrap.wrap(
            " ".join(text.split()), width, initial_indent=indent, subsequent_indent=indent, break_long_words=False
        )

    lines = [pack.title, "=" * min(len(pack.title), width), ""]
    fields = [("id", pack.id), ("version", pack.version), ("file", pack.path), ("sha256", pack.sha256)]
    if pack.extends:
        fields.insert(2, ("extends", ", ".join(pack.extends)))
    lines += [f"{name + ':':9}{value}" for name, value in fields]
    if pack.source:
        lines += ["", "Source"]
        order = ["document", "section", "url", "date", "note"]
        names = [n for n in order if n in pack.source] + [n for n in pack.source if n not in order]
        for name in names:
            lines += textwrap.wrap(
                " ".join(str(pack.source[name]).split()),
                width,
                initial_indent=f"  {name + ':':10}",
                subsequent_indent=" " * 12,
                break_on_hyphens=False,
                break_long_words=False,
            )
    if pack.description:
        lines += ["", "Description", *wrapped(pack.description)]
    params = pack.params
    if params:
        lines += ["", "Parameters (set with --param NAME=VALUE or --param PACK.NAME=VALUE)"]
        for name, param in params.items():
            run = f" (this run: {_value(param.value)})" if param.value != param.default else ""
            lines += textwrap.wrap(
                f"{name} = {_value(param.default)}{run}",
                width,
                initial_indent="  ",
                subsequent_indent="        ",
                break_long_words=False,
                break_on_hyphens=False,
            )
            lines += wrapped(param.description, "      ")
    count = len(pack.rules)
    lines += ["", f"Rules ({count})"]
    for rule in pack.rules:
        lines += ["", *describe_rule(rule, width)]
    return lines
