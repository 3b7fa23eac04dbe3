"""The JSON Schemas in reports/schema are the ones the models generate."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from scanner.policy.pack import builtin_pack_files
from scanner.schemas import SCHEMAS, schema_dir, schema_text


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_committed_schema_is_current(name):
    """A model change without `make schemas` fails here instead of publishing a stale schema."""
    committed = (schema_dir() / name).read_text(encoding="utf-8")
    assert committed == schema_text(SCHEMAS[name]()), f"run `make schemas` to regenerate {name}"


def test_facts_schema_names_every_version():
    """The facts schema enumerates SSLv2 to TLSv1.3 as protocol versions."""
    schema = json.loads((schema_dir() / "facts.schema.json").read_text())
    assert schema["$defs"]["ProtocolVersion"]["enum"] == [
        "SSLv2",
        "SSLv3",
        "TLSv1.0",
        "TLSv1.1",
        "TLSv1.2",
        "TLSv1.3",
    ]


def test_builtin_packs_validate_against_the_pack_schema():
    """Every built-in pack is valid against the published pack JSON Schema (what editors and linters use)."""
    schema = json.loads((schema_dir() / "pack.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    files = list(builtin_pack_files())
    assert files
    for file in files:
        jsonschema.validate(yaml.safe_load(file.read_text()), schema)


def test_pack_schema_rejects_an_unknown_operator():
    """The schema is generated from the operator tables: an unknown operator is not a valid rule."""
    schema = json.loads((schema_dir() / "pack.schema.json").read_text())
    pack = yaml.safe_load(
        "id: x\ntitle: x\nversion: '1'\nrules:\n  - {id: R-1, title: t, severity: low, fact: protocols, eq: 1}\n"
    )
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(pack, schema)
