"""The JSON Schema for rule packs, generated from the operator tables so it can never lag behind the engine.

It is for editors and CI linters (YAML language servers read JSON Schema); ``tlsgate rules validate`` checks
more than a schema can (fact paths, field names, enumerated values, parameters, cycles) with file:line:column.
"""

from __future__ import annotations

from typing import Any

from scanner.findings import SEVERITIES
from scanner.policy.operators import LIST_OPERATORS, VALUE_OPERATORS

PACK_SCHEMA_ID = "https://tlsgate.dev/schema/pack-1.json"


def _closed_object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    """An object with these properties and no others (a pack's keys are checked whole), ``required`` among them."""
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        schema["required"] = required
    return schema


_PARAM_REF = _closed_object({"param": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"}}, ["param"])
_VALUE = {"description": "A value, or {param: NAME} for a pack parameter."}


def _matcher() -> dict[str, Any]:
    return {
        "description": "A plain value (equals) or value operators, all of which must hold.",
        "anyOf": [
            {"type": ["string", "number", "boolean", "null"]},
            _PARAM_REF,
            _closed_object(dict.fromkeys(VALUE_OPERATORS, _VALUE)) | {"minProperties": 1},
        ],
    }


def _constraints() -> dict[str, Any]:
    properties: dict[str, Any] = dict.fromkeys(VALUE_OPERATORS, _VALUE)
    for name, operator in LIST_OPERATORS.items():
        if operator.takes == "values":
            properties[name] = {"anyOf": [{"type": "array"}, _PARAM_REF]}
        else:
            properties[name] = {
                "anyOf": [
                    {"type": "object", "additionalProperties": {"$ref": "#/$defs/matcher"}},
                    {"$ref": "#/$defs/matcher"},
                ]
            }
    return properties


def pack_schema() -> dict[str, Any]:
    constraint_names = sorted({*VALUE_OPERATORS, *LIST_OPERATORS})
    one_constraint = {"oneOf": [{"required": [name]} for name in constraint_names]}
    condition = _closed_object(
        {"fact": {"type": "string"}, "param": {"type": "string"}, "where": {"type": "object"}} | _constraints()
    ) | {"allOf": [{"oneOf": [{"required": ["fact"]}, {"required": ["param"]}]}, one_constraint]}
    rule_properties = {
        "id": {"type": "string", "pattern": "^[A-Z0-9][A-Z0-9._-]*$"},
        "title": {"type": "string"},
        "severity": {"enum": list(SEVERITIES)},
        "fact": {
            "type": "string",
            "description": "Dotted path into the facts model (reports/schema/facts.schema.json).",
        },
        "where": {"type": "object", "additionalProperties": {"$ref": "#/$defs/matcher"}},
        "when": {"anyOf": [{"$ref": "#/$defs/condition"}, {"type": "array", "items": {"$ref": "#/$defs/condition"}}]},
        "deployments": {
            "enum": ["every", "any"],
            "description": "A certificate rule: every certificate the server serves must pass it (default), or any.",
        },
        "rationale": {"type": "string"},
        "remediation": {"type": "string"},
        "references": {"type": "array", "items": {"type": "string"}},
        "section": {
            "type": "string",
            "description": "Where in the pack's source document the rule comes from, e.g. '3.3.1.2' or 'Table 3-1'.",
        },
    } | _constraints()
    rule = _closed_object(rule_properties, ["id", "title", "severity", "fact"]) | {"allOf": [one_constraint]}
    pack_properties = {
        "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]*$"},
        "title": {"type": "string"},
        "version": {"type": ["string", "number"]},
        "description": {"type": "string"},
        "source": _closed_object(
            {k: {"type": ["string", "number"]} for k in ("document", "section", "url", "date", "note")}
        ),
        "extends": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "params": {
            "type": "object",
            "propertyNames": {"pattern": "^[a-z][a-z0-9_]*$"},
            "additionalProperties": _closed_object({"default": {}, "description": {"type": "string"}}, ["default"]),
        },
        "rules": {"type": "array", "items": {"$ref": "#/$defs/rule"}},
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": PACK_SCHEMA_ID,
        "title": "tlsgate rule pack",
        **_closed_object(pack_properties, ["id", "title", "version", "rules"]),
        "$defs": {"rule": rule, "condition": condition, "matcher": _matcher()},
    }
