"""YAML read with the position of every key and value, so a rule pack, a waivers file or an inventory can point
at each of its problems as ``file:line:column`` and report them all at once.

These files arrive in pull requests, so they are read as hostile: at most ``MAX_FILE_BYTES``, strict UTF-8 with
no control characters (the position of the first bad byte is the problem), and a document that would be
converted into more than ``MAX_NODES`` values or nested deeper than ``MAX_DEPTH`` (counting what its aliases
repeat: an alias bomb) is refused while it is composed, before anything is expanded.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scanner.boundedfile import Unreadable, read_limited


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


# Far above any real pack, waivers file or inventory (the largest built-in pack is ~320 values, a 10,000-target
# inventory ~80,000 in ~600 KB). PyYAML composes pure Python: a document at the limits takes seconds and ~150 MB
# (a bomb is refused at the alias that passes MAX_NODES, having composed a few dozen nodes).
MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_NODES = 250_000
MAX_DEPTH = 64

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


def is_file(path: Path) -> bool:
    """Whether ``path`` names a file; a name the system refuses (too long, a NUL byte from an escape in a YAML
    string) names none, rather than raising."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def exists(path: Path) -> bool:
    """Whether anything is at ``path``, with ``is_file``'s care for names the system refuses."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def read_bytes(path: Path, what: str, error: ProblemsError, limit: int = MAX_FILE_BYTES) -> bytes:
    """The file's bytes; an unreadable file (missing, a directory, a name too long, a FIFO or device that never
    ends) or one over ``limit`` bytes is one problem about the whole file, ``what`` naming its kind. Never reads
    more than ``limit`` + 1 bytes (``scanner.boundedfile``)."""
    try:
        return read_limited(path, limit)
    except Unreadable as exc:
        message = f"{what} is {exc.reason}; refused" if exc.too_large else f"cannot read {what}: {exc.reason}"
        raise error([Problem(str(path), 0, 0, message)]) from None


def _position(text: str, index: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def decode_utf8(file: str, raw: bytes, what: str, error: ProblemsError) -> str:
    """``raw`` as strict UTF-8; the first byte that is not raises ``error`` with its line and column."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        good = raw[: exc.start].decode("utf-8")
        line, column = _position(good, len(good))
        problem = Problem(file, line, column, f"{what} is not UTF-8 text: byte 0x{raw[exc.start]:02x} cannot be here")
        raise error([problem]) from None


# C0 controls but tab, line feed and carriage return; DEL; C1 controls (NEL too: YAML 1.1 would break a line at
# it, where no editor shows one); the noncharacters U+FFFE and U+FFFF.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")


def check_text(file: str, text: str, what: str, error: ProblemsError) -> None:
    """Raises ``error`` at the first control character of ``text`` (only tab and line breaks are text)."""
    bad = _CONTROL.search(text)
    if bad is not None:
        line, column = _position(text, bad.start())
        message = f"{what} holds the control character U+{ord(bad.group()):04X}; only tab and line breaks may be in it"
        raise error([Problem(file, line, column, message)])


class _Refused(yaml.MarkedYAMLError):
    """A document past a limit, at the node or alias that passed it."""


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe composer, counting what the document will be converted into: every node once, and for an
    alias every node of what it repeats again (an alias is shared when composed, repeated when converted), so a
    billion laughs is refused at its first alias that passes ``MAX_NODES`` after composing a few dozen nodes."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._nodes = 0  # values the document converts into so far
        self._depth = 0  # nesting of the node being composed
        self._reach = 0  # the deepest nesting reached so far, aliases expanded
        self._sizes: dict[int, tuple[int, int]] = {}  # an anchored node's (values, height)

    def _count(self, nodes: int, depth: int, mark: Any) -> None:
        self._nodes += nodes
        self._reach = max(self._reach, depth)
        if self._nodes > MAX_NODES:
            raise _Refused(
                problem=f"has more than {MAX_NODES:,} values (counting what aliases repeat); refused", problem_mark=mark
            )
        if depth > MAX_DEPTH:
            raise _Refused(
                problem=f"is nested deeper than {MAX_DEPTH} levels (counting what aliases repeat); refused",
                problem_mark=mark,
            )

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]  # the stubs leave it untyped
        if isinstance(event, yaml.AliasEvent):
            node = super().compose_node(parent, index)
            # an alias to a node still being composed (``&a [*a]``) is a cycle: converting reports it
            nodes, height = self._sizes.get(id(node), (1, 1))
            self._count(nodes, self._depth + height, event.start_mark)
            return node
        start, outer_reach = self._nodes, self._reach
        self._depth += 1
        self._reach = 0
        self._count(1, self._depth, event.start_mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if getattr(event, "anchor", None) is not None:
            self._sizes[id(node)] = (self._nodes - start, self._reach - self._depth)
        self._reach = max(outer_reach, self._reach)
        return node


def load_value(text: str) -> Any:
    """One YAML value from a short text (a ``--param`` value), within the same limits as a file; raises
    yaml.YAMLError."""
    return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader, only counting what it composes


def compose(file: str, raw: bytes, what: str, error: ProblemsError, empty_hint: str = "") -> tuple[YamlLoader, Any]:
    """The loader and the plain data of one YAML document; a file that is not UTF-8 text, not YAML, past a limit or
    empty raises ``error`` with its one problem, since nothing in it can be checked further."""
    text = decode_utf8(file, raw, what, error)
    check_text(file, text, what, error)
    composer = _BoundedLoader(text)
    try:
        node = composer.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        prefix = f"{what} " if isinstance(exc, _Refused) else "YAML syntax: "
        raise error([Problem(file, line, column, f"{prefix}{exc.problem}")]) from None
    except yaml.YAMLError as exc:  # the reader's own check of characters, which check_text makes unreachable
        raise error([Problem(file, 1, 1, f"YAML: {exc}")]) from None
    finally:
        composer.dispose()
    if node is None:
        raise error([Problem(file, 1, 1, f"{what} is empty{empty_hint}")])
    loader = YamlLoader(file)
    return loader, loader.convert(node, ())


def read_yaml(path: Path, what: str, error: ProblemsError, empty_hint: str = "") -> tuple[YamlLoader, Any]:
    """``compose`` of the file at ``path``."""
    return compose(str(path), read_bytes(path, what, error), what, error, empty_hint)
