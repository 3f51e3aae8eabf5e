"""Pydantic parameters: find the model class in an annotation, and validate with readable errors."""

from __future__ import annotations

import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from qtasks.exc import TaskArgumentsError


def strip_annotated(annotation: Any) -> tuple[Any, tuple[Any, ...]]:
    """``Annotated[T, *meta]`` -> ``(T, meta)``; anything else -> ``(annotation, ())``."""
    if get_origin(annotation) is Annotated:
        inner, *meta = get_args(annotation)
        return inner, tuple(meta)
    return annotation, ()


def model_of(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The BaseModel class behind ``M``, ``Annotated[M, ...]``, ``M | None`` or ``Optional[M]``,
    and whether None is allowed; ``(None, False)`` for anything else (unions of several types too)."""
    ann, _ = strip_annotated(annotation)
    allows_none = False
    if get_origin(ann) is Union or isinstance(ann, types.UnionType):
        members = get_args(ann)
        rest = [a for a in members if a is not type(None)]
        if len(rest) != 1:
            return None, False
        allows_none = len(rest) < len(members)
        ann, _ = strip_annotated(rest[0])
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann, allows_none
    return None, False


def field_keys(model: type[BaseModel]) -> list[tuple[str, frozenset[str]]]:
    """Each field in declaration order with the keyword names that fill it (its name and string aliases)."""
    out = []
    for name, info in model.model_fields.items():
        keys = {name}
        for alias in (info.alias, info.validation_alias):
            if isinstance(alias, str):
                keys.add(alias)
        out.append((name, frozenset(keys)))
    return out


def readable(e: ValidationError) -> str:
    parts = []
    for err in e.errors(include_url=False):
        loc = ".".join(str(x) for x in err["loc"]) or "(model)"
        msg = f"{loc}: {err['msg']}"
        if err["type"] != "missing":
            msg += f" (got {err['input']!r})"
        parts.append(msg)
    return "; ".join(parts)


def validate(model: type[BaseModel], value: Any, *, task: str, param: str) -> BaseModel:
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(value)
    except ValidationError as e:
        raise TaskArgumentsError(f"task {task!r}: argument {param!r} is not a valid {model.__name__}: "
                                 f"{readable(e)}") from e
