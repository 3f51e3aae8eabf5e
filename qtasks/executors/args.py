"""``ArgMeta``: what the ``task_executor_args_replace`` trigger tells plugins about each argument."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_origin


@dataclass
class ArgMeta:
    name: str
    value: Any
    origin: Any
    raw_type: Any
    annotation: Any
    is_kwarg: bool
    index: int | None = None
    key: str | None = None


def build_args_info(func: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]) -> list[ArgMeta]:
    """One ArgMeta per parameter of ``func``, holding the value this call passes (unlike 1.7.3,
    which reported defaults and None placeholders instead of the actual values)."""
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return []
    out: list[ArgMeta] = []
    pos = 0
    for p in params:
        ann = p.annotation
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.name in kwargs:
            out.append(ArgMeta(p.name, kwargs[p.name], get_origin(ann), ann, ann, True, key=p.name))
        elif p.kind != p.KEYWORD_ONLY and pos < len(args):
            out.append(ArgMeta(p.name, args[pos], get_origin(ann), ann, ann, False, index=pos))
            pos += 1
        else:
            default = None if p.default is p.empty else p.default
            out.append(ArgMeta(p.name, default, get_origin(ann), ann, ann, True, key=p.name))
    return out
