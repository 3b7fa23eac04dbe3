"""The JSON Schemas in reports/schema are the ones the models generate."""

from __future__ import annotations

import json

import pytest

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
