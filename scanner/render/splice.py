"""Streaming a JSON document whose big lists are written one item at a time.

The document is dumped (``indent=2``) with a placeholder string standing for each long list; ``splice`` then
yields the text with each placeholder replaced by its items, dumped one at a time and indented as the whole
document would indent them: the same text as dumping the document with the lists in it, without ever holding
them.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

Dump = Callable[[Any], str]


def dumps(value: Any) -> str:
    """``json.dumps`` as the SARIF log is written: two spaces, text outside ASCII as is."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def splice(document: str, lists: Mapping[str, Iterable[Any]], dump: Dump = dumps) -> Iterator[str]:
    """``document`` (dumped with ``indent=2``) with each ``["PLACEHOLDER"]`` of ``lists`` replaced by its items.

    A placeholder is a string no other value of the document holds (``mark``); JSON strings hold no raw line
    breaks, so every line of an item's dump is indented as the list nests it."""
    rest = document
    while lists:
        pattern = "|".join(re.escape(json.dumps(name)) for name in lists)
        found = re.search(rf"\[\n( *)(?:{pattern})\n( *)\]", rest)
        if found is None:
            raise ValueError("a placeholder is missing from the document")
        inner, outer = found.group(1), found.group(2)
        name = json.loads(found.group(0)[1:-1].strip())
        yield rest[: found.start()]
        yield from _items(lists[name], inner, outer, dump)
        rest = rest[found.end() :]
        lists = {key: value for key, value in lists.items() if key != name}
    yield rest


def _items(items: Iterable[Any], inner: str, outer: str, dump: Dump) -> Iterator[str]:
    separator = "[\n"
    for item in items:
        yield separator + inner + dump(item).replace("\n", "\n" + inner)
        separator = ",\n"
    yield "[]" if separator == "[\n" else "\n" + outer + "]"


def mark(name: str) -> str:
    """A placeholder no text of a report can hold: drawn at random for each rendering."""
    return f"tlsgate-splice-{name}-{secrets.token_hex(16)}"
