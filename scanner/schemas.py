"""The JSON Schemas tlsgate publishes, generated from the models and kept in ``reports/schema/``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scanner.diff import diff_schema
from scanner.facts import facts_schema
from scanner.notify.events import event_schema
from scanner.policy.schema import pack_schema
from scanner.report import report_schema
from scanner.resources import reports_dir
from scanner.store.documents import expiring_schema, history_schema
from scanner.targets.schema import inventory_schema

SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {
    "facts.schema.json": facts_schema,
    "report.schema.json": report_schema,
    "pack.schema.json": pack_schema,
    "inventory.schema.json": inventory_schema,
    "diff.schema.json": diff_schema,
    "event.schema.json": event_schema,
    "history.schema.json": history_schema,
    "expiring.schema.json": expiring_schema,
}


def schema_text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def schema_dir() -> Path:
    return reports_dir() / "schema"


def write_schemas(directory: Path | None = None) -> list[Path]:
    directory = directory or schema_dir()
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, build in SCHEMAS.items():
        path = directory / name
        path.write_text(schema_text(build()), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_schemas():
        print(path)
