"""YAML read with the position of every key and value, so a rule pack, a waivers file or an inventory can point
at each of its problems as ``file:line:column`` and report them all at once."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
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


class FileProblems(Exception):
    """A file that cannot be used; carries every problem found (``line`` 0: the whole file). Each kind of file
    (pack, waivers, inventory) raises its own subclass, so callers catch only the files they read."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


Key = tuple[str | int, ...]
# What a reader raises with the problems that stop it: FileProblems or a subclass, or any exception built alike.
ProblemsError = Callable[[list[Problem]], Exception]


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

    def unknown_keys(self, data: Mapping[str, Any], allowed: Collection[str], key: Key, what: str) -> None:
        """A problem on each key of ``data`` (the ``what`` at ``key``) not in ``allowed``, with a near miss."""
        for name in data:
            if name not in allowed:
                self.at((*key, name), f"unknown {what} key {name!r}{did_you_mean(name, allowed)}", on_key=True)


def did_you_mean(name: str, choices: Collection[str]) -> str:
    close = difflib.get_close_matches(name, sorted(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def read_bytes(path: Path, what: str, error: ProblemsError) -> bytes:
    """The file's bytes; an unreadable file is one problem about the whole file, ``what`` naming its kind."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise error([Problem(str(path), 0, 0, f"cannot read {what}: {exc.strerror or exc}")]) from None


def compose(file: str, raw: bytes, what: str, error: ProblemsError, empty_hint: str = "") -> tuple[YamlLoader, Any]:
    """The loader and the plain data of one YAML document; a file that is not UTF-8, not YAML or empty raises
    ``error`` with its one problem, since nothing in it can be checked further."""
    try:
        node = yaml.compose(raw.decode("utf-8"), Loader=yaml.SafeLoader)
    except UnicodeDecodeError:
        raise error([Problem(file, 1, 1, f"{what} is not UTF-8 text")]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise error([Problem(file, line, column, f"YAML syntax: {exc.problem}")]) from None
    if node is None:
        raise error([Problem(file, 1, 1, f"{what} is empty{empty_hint}")])
    loader = YamlLoader(file)
    return loader, loader.convert(node, ())


def read_yaml(path: Path, what: str, error: ProblemsError, empty_hint: str = "") -> tuple[YamlLoader, Any]:
    """``compose`` of the file at ``path``."""
    return compose(str(path), read_bytes(path, what, error), what, error, empty_hint)
