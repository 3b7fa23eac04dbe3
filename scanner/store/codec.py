"""Facts and findings to stored documents and back: canonical JSON, SHA-256, zlib.

A scan's facts differ from the last run's only by their times unless the server changed: the start and end of the
probe (kept on the run_target row instead) and each certificate's ``days_remaining`` (recomputed from
``not_after`` when read back). Without them the document is the same run after run, and stored once.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter

from scanner.facts import Facts
from scanner.findings import Finding

_FINDINGS = TypeAdapter(list[Finding])
_LEVEL = 9


def _dumps(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _strip_days(value: Any) -> None:
    if isinstance(value, dict):
        if "not_after" in value and "days_remaining" in value:
            value["days_remaining"] = None
        for item in value.values():
            _strip_days(item)
    elif isinstance(value, list):
        for item in value:
            _strip_days(item)


def _fill_days(value: Any, at: datetime) -> None:
    if isinstance(value, dict):
        if "not_after" in value and "days_remaining" in value and value["days_remaining"] is None:
            end = datetime.fromisoformat(value["not_after"])
            value["days_remaining"] = round((end - at).total_seconds() / 86400, 2)
        for item in value.values():
            _fill_days(item, at)
    elif isinstance(value, list):
        for item in value:
            _fill_days(item, at)


def canonical_facts(facts: Facts) -> bytes:
    """The facts' JSON without their times: equal for equal observations."""
    data = facts.model_dump(mode="json", exclude={"started_at", "finished_at"})
    _strip_days(data)
    return _dumps(data)


def canonical_findings(items: list[Finding]) -> bytes:
    return _dumps(_FINDINGS.dump_python(items, mode="json"))


def digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def compress(raw: bytes) -> bytes:
    return zlib.compress(raw, _LEVEL)


def decode_facts(document: bytes, started: float, finished: float) -> Facts:
    data = json.loads(zlib.decompress(document))
    at = datetime.fromtimestamp(finished, UTC)
    _fill_days(data, at)
    data["started_at"] = datetime.fromtimestamp(started, UTC).isoformat()
    data["finished_at"] = at.isoformat()
    return Facts.model_validate(data)


def decode_findings(document: bytes) -> list[Finding]:
    return _FINDINGS.validate_json(zlib.decompress(document))


def raw_findings(document: bytes) -> list[dict[str, Any]]:
    """The findings as plain JSON (for migrations, which must not depend on today's models)."""
    value: list[dict[str, Any]] = json.loads(zlib.decompress(document))
    return value
