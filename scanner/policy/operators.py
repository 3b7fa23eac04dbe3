"""Constraint operators, dispatched by name through two tables.

*Value operators* judge one scalar (``equals``, ``in``, ``min`` ...). *List operators* judge the list a
rule's fact names (``each``, ``some``, ``only`` ...). A pack names operators; adding one here makes it
available to every pack, and the pack stays data.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import regex
from pydantic import BaseModel

Plain = Any  # a JSON-compatible value


def plain(value: Any) -> Plain:
    """JSON-compatible form of a fact value, for comparison and for evidence."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# name -> (predicate(value, argument), validation of the argument -> error text or None, words for messages)
ValuePredicate = Callable[[Plain, Any], bool]
ArgCheck = Callable[[Any], str | None]


def _is_list(arg: Any) -> str | None:
    return None if isinstance(arg, list) else "expects a list"


def _is_number(arg: Any) -> str | None:
    return None if _number(arg) else "expects a number"


def _is_regex(arg: Any) -> str | None:
    if not isinstance(arg, str):
        return "expects a regular expression string"
    try:  # the syntax documented is re's; regex (which runs it) must take it too
        re.compile(arg)
        regex.compile(arg)
    except (re.error, regex.error) as exc:
        return f"invalid regular expression: {exc}"
    return None


# A pack's pattern runs against server text: one with nested quantifiers (``(a|aa)+$``) backtracks exponentially
# and would hold the run. mrab-regex (Python's ``re`` syntax, VERSION0) stops a match after this many seconds; a
# real pattern takes microseconds. A pattern cannot be judged catastrophic before it meets its text, so the
# rule is judged ``error`` on that target (PatternTimeout), the run goes on.
MATCH_SECONDS = 1.0


class PatternTimeout(Exception):
    """A ``matches`` pattern did not finish on a value within MATCH_SECONDS."""

    def __init__(self, pattern: str, length: int) -> None:
        super().__init__(
            f"the pattern {pattern!r} did not finish within {MATCH_SECONDS:g}s on a value of {length} characters "
            "(it backtracks without end: nested quantifiers such as (a+)+); the rule cannot be judged"
        )


def _matches(value: Any, pattern: str) -> bool:
    if value is None:
        return False
    text = str(value)
    try:
        return regex.fullmatch(pattern, text, timeout=MATCH_SECONDS) is not None
    except TimeoutError:
        raise PatternTimeout(pattern, len(text)) from None


def as_datetime(value: Any) -> dt.datetime | None:
    """A fact or constraint value as an aware datetime: datetimes, dates (midnight UTC) and ISO 8601 strings."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if isinstance(value, str):
        try:
            return as_datetime(dt.datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


# A date operator's argument that stands for the moment the facts were observed (the scan's start; when a
# certificate file was read): "not yet valid" and "expired" are judged against it, so re-judging saved facts
# later (`tlsgate evaluate`) gives the verdict of the scan, as the days_remaining fact does.
SCAN_TIME = "scan_time"
DATE_OPERATORS = frozenset({"before", "after"})


def _is_date(arg: Any) -> str | None:
    if arg == SCAN_TIME or as_datetime(arg) is not None:
        return None
    return f"expects a date such as 2026-03-15 (or an ISO 8601 time, or {SCAN_TIME})"


def _before(value: Any, arg: Any) -> bool:
    moment, limit = as_datetime(value), as_datetime(arg)
    return moment is not None and limit is not None and moment < limit


def _on_or_after(value: Any, arg: Any) -> bool:
    moment, limit = as_datetime(value), as_datetime(arg)
    return moment is not None and limit is not None and moment >= limit


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w|y)\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def duration(text: Any, unit: str) -> float | None:
    """``3y``, ``30d``, ``300s``, ``12h``, ``5m``, ``2w`` in ``unit`` (days or seconds); a year is 365 days."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        return None
    seconds = float(match.group(1)) * _SECONDS[match.group(2)]
    return seconds / 86400 if unit == "days" else seconds


def _is_bool(arg: Any) -> str | None:
    return None if isinstance(arg, bool) else "expects true or false"


def _any_arg(_arg: Any) -> str | None:
    return None


def split_dn(text: str) -> list[tuple[str, str]]:
    """RFC 4514 string -> [(attribute, value)], honouring backslash escapes; attribute names upper-cased."""
    parts: list[tuple[str, str]] = []
    current, escaped = "", False
    for char in text + ",":
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",+":
            name, sep, value = current.partition("=")
            if sep:
                parts.append((name.strip().upper(), value.strip()))
            elif current.strip():
                raise ValueError(f"{current.strip()!r} is not ATTRIBUTE=value")
            current = ""
        else:
            current += char
    return parts


def dn_matches(dn: Any, pattern: str) -> bool:
    """Every ``ATTR=glob`` of the pattern matches some value of that attribute in the DN (case-insensitive)."""
    if not isinstance(dn, str):
        return False
    try:
        observed = split_dn(dn)
    except ValueError:
        return False
    return all(
        any(name == wanted_name and fnmatch.fnmatchcase(value.casefold(), glob.casefold()) for name, value in observed)
        for wanted_name, glob in split_dn(pattern)
    )


def _is_dn_pattern(arg: Any) -> str | None:
    if not isinstance(arg, str):
        return "expects a DN pattern string such as 'CN=*.partner.example, O=Partner Ltd'"
    try:
        parts = split_dn(arg)
    except ValueError as exc:
        return f"invalid DN pattern: {exc}"
    return None if parts else "expects at least one ATTRIBUTE=value"


@dataclass(frozen=True)
class ValueOperator:
    predicate: ValuePredicate
    check_arg: ArgCheck
    words: str  # "is at least", used as "<value> must <words> <arg>"


VALUE_OPERATORS: dict[str, ValueOperator] = {
    "equals": ValueOperator(lambda v, a: v == a, _any_arg, "equal"),
    "not_equals": ValueOperator(lambda v, a: v != a, _any_arg, "differ from"),
    "in": ValueOperator(lambda v, a: v in a, _is_list, "be one of"),
    "not_in": ValueOperator(lambda v, a: v not in a, _is_list, "not be one of"),
    "min": ValueOperator(lambda v, a: _number(v) and v >= a, _is_number, "be at least"),
    "max": ValueOperator(lambda v, a: _number(v) and v <= a, _is_number, "be at most"),
    "less_than": ValueOperator(lambda v, a: _number(v) and v < a, _is_number, "be less than"),
    "greater_than": ValueOperator(lambda v, a: _number(v) and v > a, _is_number, "be greater than"),
    "before": ValueOperator(_before, _is_date, "be before"),
    "after": ValueOperator(_on_or_after, _is_date, "be on or after"),
    "matches": ValueOperator(_matches, _is_regex, "match"),
    "exists": ValueOperator(lambda v, a: (v is not None) == a, _is_bool, "exist:"),
    "dn_matches": ValueOperator(dn_matches, _is_dn_pattern, "match the DN pattern"),
}


@dataclass(frozen=True)
class Matcher:
    """A conjunction of value operators: ``{min: 2048, max: 8192}``; a bare literal means ``equals``."""

    terms: tuple[tuple[str, Any], ...]

    @staticmethod
    def from_spec(spec: Any) -> Matcher:
        if isinstance(spec, Mapping):
            return Matcher(tuple(spec.items()))
        return Matcher((("equals", spec),))

    def test(self, value: Plain) -> bool:
        return all(VALUE_OPERATORS[name].predicate(value, arg) for name, arg in self.terms)

    def at(self, scan_time: dt.datetime) -> Matcher:
        """This matcher with ``scan_time`` arguments of date operators replaced by the moment given."""
        if not any(name in DATE_OPERATORS and arg == SCAN_TIME for name, arg in self.terms):
            return self
        return Matcher(
            tuple((name, scan_time if name in DATE_OPERATORS and arg == SCAN_TIME else arg) for name, arg in self.terms)
        )

    def describe(self) -> str:
        return " and ".join(f"{VALUE_OPERATORS[name].words} {_short(arg)}" for name, arg in self.terms)


def _short(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def get_field(element: Plain, dotted: str) -> Plain:
    current = element
    for part in dotted.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


@dataclass(frozen=True)
class FieldMatcher:
    """``{version: TLSv1.3, status: accepted}`` over objects, or a plain Matcher over scalars."""

    fields: tuple[tuple[str, Matcher], ...]
    scalar: Matcher | None

    @staticmethod
    def for_objects(spec: Mapping[str, Any]) -> FieldMatcher:
        return FieldMatcher(tuple((k, Matcher.from_spec(v)) for k, v in spec.items()), None)

    @staticmethod
    def for_scalars(spec: Any) -> FieldMatcher:
        return FieldMatcher((), Matcher.from_spec(spec))

    def test(self, element: Plain) -> bool:
        if self.scalar is not None:
            return self.scalar.test(element)
        return all(m.test(get_field(element, f)) for f, m in self.fields)

    def at(self, scan_time: dt.datetime) -> FieldMatcher:
        scalar = self.scalar.at(scan_time) if self.scalar is not None else None
        return FieldMatcher(tuple((f, m.at(scan_time)) for f, m in self.fields), scalar)

    def describe(self) -> str:
        if self.scalar is not None:
            return self.scalar.describe()
        return ", ".join(f"{f} must {m.describe()}" for f, m in self.fields)


def names_scan_time(argument: Any) -> bool:
    """Whether a compiled constraint has a date operator whose argument is ``scan_time`` (what at_scan_time fixes)."""
    if isinstance(argument, Matcher):
        return any(name in DATE_OPERATORS and arg == SCAN_TIME for name, arg in argument.terms)
    if isinstance(argument, FieldMatcher):
        return names_scan_time(argument.scalar) or any(names_scan_time(m) for _, m in argument.fields)
    return False


def at_scan_time(argument: Any, scan_time: dt.datetime) -> Any:
    """A compiled constraint (a matcher, a list operator's values, or None) as it applies to facts observed then."""
    if isinstance(argument, Matcher | FieldMatcher):
        return argument.at(scan_time)
    return argument


@dataclass(frozen=True)
class ListOutcome:
    passed: bool
    offending: list[Plain]  # elements that break the rule (or, for require_*, the values missing)
    summary: str  # one line, for terminals and report tables


def label(element: Plain) -> str:
    """A short name for a list element in messages: its version, name or subject if it has one."""
    if isinstance(element, dict):
        for key in ("version", "name", "subject", "id"):
            if key in element:
                return str(element[key])
    return str(element)


def _labels(elements: list[Plain]) -> str:
    return ", ".join(label(e) for e in elements)


def list_each(items: list[Plain], m: FieldMatcher) -> ListOutcome:
    bad = [e for e in items if not m.test(e)]
    return ListOutcome(not bad, bad, f"{_labels(bad)}: {m.describe()}" if bad else "all match")


def list_some(items: list[Plain], m: FieldMatcher) -> ListOutcome:
    ok = any(m.test(e) for e in items)
    return ListOutcome(ok, [], "at least one matches" if ok else f"none found where {m.describe()}")


def list_none(items: list[Plain], m: FieldMatcher) -> ListOutcome:
    bad = [e for e in items if m.test(e)]
    return ListOutcome(not bad, bad, f"forbidden: {_labels(bad)}" if bad else "none match")


def list_only(items: list[Plain], allowed: list[Any]) -> ListOutcome:
    bad = [e for e in items if e not in allowed]
    return ListOutcome(not bad, bad, f"not allowed: {_labels(bad)}" if bad else "all allowed")


def list_forbid(items: list[Plain], forbidden: list[Any]) -> ListOutcome:
    bad = [e for e in items if e in forbidden]
    return ListOutcome(not bad, bad, f"forbidden: {_labels(bad)}" if bad else "none forbidden")


def list_require_any(items: list[Plain], wanted: list[Any]) -> ListOutcome:
    ok = any(e in wanted for e in items)
    return ListOutcome(ok, [] if ok else list(wanted), "present" if ok else f"none of {_short(wanted)} present")


def list_require_all(items: list[Plain], wanted: list[Any]) -> ListOutcome:
    missing = [w for w in wanted if w not in items]
    return ListOutcome(not missing, missing, f"missing: {_short(missing)}" if missing else "all present")


@dataclass(frozen=True)
class ListOperator:
    takes: str  # "matcher": a (field) matcher; "values": a list of values
    scalars_only: bool
    run: Callable[[list[Plain], Any], ListOutcome]


LIST_OPERATORS: dict[str, ListOperator] = {
    "each": ListOperator("matcher", False, list_each),
    "some": ListOperator("matcher", False, list_some),
    "none": ListOperator("matcher", False, list_none),
    "only": ListOperator("values", True, list_only),
    "forbid": ListOperator("values", True, list_forbid),
    "require_any": ListOperator("values", True, list_require_any),
    "require_all": ListOperator("values", True, list_require_all),
}
