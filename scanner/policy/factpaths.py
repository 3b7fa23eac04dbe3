"""Fact paths: dotted names into the facts model, checked against the model's types at pack load time."""

from __future__ import annotations

import types
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from scanner.facts import Facts, Observed

Kind = Literal["object", "list_of_objects", "list_of_scalars", "scalar"]


@dataclass(frozen=True)
class PathType:
    kind: Kind
    model: type[BaseModel] | None = None  # the object's or the list element's model
    scalar: Any = None  # the scalar's Python type, for type checks of constraint values
    unit: str | None = None  # "days" or "seconds" for durations such as 3y or 300s


def _unwrap_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def type_of(annotation: Any) -> PathType:
    annotation = _unwrap_optional(annotation)
    if isinstance(annotation, type) and issubclass(annotation, Observed):
        # Observed[T] is transparent to rules: the path names the value; the engine checks the status.
        return type_of(annotation.model_fields["value"].annotation)
    if get_origin(annotation) is list:
        (element,) = get_args(annotation)
        element = _unwrap_optional(element)
        if isinstance(element, type) and issubclass(element, BaseModel):
            return PathType("list_of_objects", model=element)
        return PathType("list_of_scalars", scalar=element)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return PathType("object", model=annotation)
    return PathType("scalar", scalar=annotation)


class UnknownPath(LookupError):
    def __init__(self, path: str, missing: str, known: list[str]) -> None:
        super().__init__(path)
        self.path, self.missing, self.known = path, missing, known


def _unit(info: Any) -> str | None:
    extra = info.json_schema_extra
    return extra.get("unit") if isinstance(extra, dict) else None


def resolve_type(path: str, root: type[BaseModel] = Facts) -> PathType:
    """The type a dotted path names within ``root``; raises UnknownPath with the names that exist there.

    A path may go through a list of objects (``protocols.cipher_suites``, ``certificate.chain.public_key``): the
    result is then the flattened list of what each element holds, so "every suite of every version" is one path.
    """
    current = PathType("object", model=root)
    through_list = False
    for part in path.split("."):
        if current.kind == "list_of_objects" and current.model is not None:
            through_list = True
        elif current.kind != "object" or current.model is None:
            raise UnknownPath(path, part, [])
        fields = current.model.model_fields
        if part not in fields:
            raise UnknownPath(path, part, sorted(fields))
        current = type_of(fields[part].annotation)
        current = PathType(current.kind, current.model, current.scalar, _unit(fields[part]))
    if through_list and current.kind == "scalar":
        return PathType("list_of_scalars", scalar=current.scalar, unit=current.unit)
    if through_list and current.kind == "object":
        return PathType("list_of_objects", model=current.model)
    return current


def scalar_name(scalar: Any) -> str:
    if isinstance(scalar, type) and issubclass(scalar, Enum):
        return "one of " + ", ".join(str(m.value) for m in scalar)
    if get_origin(scalar) is Literal:
        return "one of " + ", ".join(str(a) for a in get_args(scalar))
    return getattr(scalar, "__name__", str(scalar))
