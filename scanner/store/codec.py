"""Facts and findings to stored documents and back: canonical JSON, SHA-256, zlib.

Facts documents are compressed with a preset dictionary (zdict-1.json: the facts of one loopback scan, shipped
and never changed): most of a facts document is its structure, which the dictionary already holds, so a document
takes a few hundred bytes instead of 2-3 kB. A document's first byte says how it was compressed (0x01: zlib with
dictionary 1; a plain zlib stream starts with 0x78), so a new dictionary can come with a new first byte.

A scan's facts differ from the last run's only by their times unless the server changed: the start and end of the
probe (kept on the run_target row instead) and each certificate's ``days_remaining`` (recomputed from
``not_after`` when read back). Without them the document is the same run after run, and stored once.
"""

from __future__ import annotations

import functools
import hashlib
import json
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from scanner.facts import Facts
from scanner.findings import Finding

_FINDINGS = TypeAdapter(list[Finding])
_LEVEL = 9
_DICTIONARY_1 = b"\x01"


@functools.cache
def _dictionary() -> bytes:
    return (Path(__file__).parent / "zdict-1.json").read_bytes()


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


def compress(raw: bytes, dictionary: bool = False) -> bytes:
    """zlib; with ``dictionary`` (facts), against the shipped dictionary."""
    if not dictionary:
        return zlib.compress(raw, _LEVEL)
    packer = zlib.compressobj(_LEVEL, zdict=_dictionary())
    return _DICTIONARY_1 + packer.compress(raw) + packer.flush()


def decompress(document: bytes) -> bytes:
    if document[:1] == _DICTIONARY_1:
        unpacker = zlib.decompressobj(zdict=_dictionary())
        return unpacker.decompress(document[1:]) + unpacker.flush()
    return zlib.decompress(document)


def decode_facts(document: bytes, started: float, finished: float) -> Facts:
    data = json.loads(decompress(document))
    at = datetime.fromtimestamp(finished, UTC)
    _fill_days(data, at)
    data["started_at"] = datetime.fromtimestamp(started, UTC).isoformat()
    data["finished_at"] = at.isoformat()
    return Facts.model_validate(data)


def decode_findings(document: bytes) -> list[Finding]:
    return _FINDINGS.validate_json(decompress(document))


def raw_findings(document: bytes) -> list[dict[str, Any]]:
    """The findings as plain JSON (for migrations, which must not depend on today's models)."""
    value: list[dict[str, Any]] = json.loads(decompress(document))
    return value
