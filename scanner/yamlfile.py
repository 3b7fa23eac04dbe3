"""YAML read with the position of every key and value, so a rule pack, a waivers file or an inventory can point
at each of its problems as ``file:line:column`` and report them all at once."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

import yaml


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"

    def as_line(self) -> str:
        """What the command line prints: line 0 means the file itself (unreadable), with no position to point at."""
        return str(self) if self.line else f"{self.file}: {self.message}"


Key = tuple[str | int, ...]


@dataclass
class _Positions:
    values: dict[Key, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Key, tuple[int, int]] = field(default_factory=dict)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class YamlLoader:
    """Turns a composed YAML node into plain data, remembering where each key and value stood; ``at`` records a
    problem at a key path, so a checker can report every problem of a file at once."""

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

    def where(self, key: Key, *, on_key: bool = False) -> tuple[int, int]:
        """Line and column of a value (or of its key), else of the nearest enclosing value, else 1:1."""
        found = (self.positions.keys.get(key) if on_key else None) or self.positions.values.get(key)
        while found is None and key:
            key = key[:-1]
            found = self.positions.values.get(key)
        return found or (1, 1)

    def at(self, key: Key, message: str, *, on_key: bool = False) -> None:
        self.problem(self.where(key, on_key=on_key), message)


def did_you_mean(name: str, choices: set[str] | list[str]) -> str:
    close = difflib.get_close_matches(name, sorted(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
