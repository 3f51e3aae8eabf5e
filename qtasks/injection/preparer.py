"""Turn a task's delivered ``(args, kwargs)`` into the call of its function.

Parameters of three kinds are filled here; every other parameter takes the
caller's arguments as Python would bind them:

- ``Depends``: a default value ``db=Depends(f)`` or the metadata of
  ``Annotated[T, Depends(f)]`` (a bare ``db: Depends(f)`` annotation works too);
- a State: annotated with a subclass of ``AsyncState``/``SyncState`` (plain or ``Annotated``);
- a pydantic model: annotated with a ``BaseModel`` subclass (also in ``Annotated``/``Optional``).

The analysis of each function's signature is cached, and a function with none
of these parameters costs one dictionary lookup.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from qtasks.exc import TaskArgumentsError
from qtasks.injection.depends import Depends
from qtasks.injection.models import field_keys, model_of, strip_annotated, validate
from qtasks.injection.scopes import TaskScope
from qtasks.injection.states import BaseState

_P = inspect.Parameter
_POSITIONAL = (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD)
_MISSING: Any = object()


@dataclass(frozen=True)
class ParamPlan:
    name: str
    kind: Any  # inspect._ParameterKind
    required: bool
    depends: Depends | None = None
    state_cls: type[BaseState] | None = None
    model: type[BaseModel] | None = None
    allows_none: bool = False

    @property
    def plain(self) -> bool:
        return self.depends is None and self.state_cls is None and self.model is None


@dataclass(frozen=True)
class CallPlan:
    params: tuple[ParamPlan, ...]
    special: bool
    """False when no parameter is injected or assembled: the arguments pass through untouched."""


_plans: weakref.WeakKeyDictionary[Any, CallPlan] = weakref.WeakKeyDictionary()


def _signature(func: Callable[..., Any]) -> inspect.Signature:
    try:
        return inspect.signature(func, eval_str=True)
    except Exception:  # a string annotation naming something not importable from the module: keep strings
        return inspect.signature(func)


def _param_plan(p: inspect.Parameter) -> ParamPlan:
    required = p.default is _P.empty
    ann = p.annotation
    inner, meta = strip_annotated(ann)
    dep = p.default if isinstance(p.default, Depends) else None
    if dep is None:
        dep = next((m for m in reversed(meta) if isinstance(m, Depends)), None)
    if dep is None and isinstance(ann, Depends):
        dep = ann
    if dep is not None:
        return ParamPlan(p.name, p.kind, required, depends=dep)
    if isinstance(inner, type) and issubclass(inner, BaseState):
        return ParamPlan(p.name, p.kind, required, state_cls=inner)
    model, allows_none = model_of(ann)
    return ParamPlan(p.name, p.kind, required, model=model, allows_none=allows_none)


def analyze(func: Callable[..., Any]) -> CallPlan:
    """The cached parameter plan of ``func``."""
    try:
        return _plans[func]
    except (KeyError, TypeError):
        pass
    params = tuple(_param_plan(p) for p in _signature(func).parameters.values())
    plan = CallPlan(params, special=any(not p.plain for p in params))
    try:
        _plans[func] = plan
    except TypeError:  # not weak-referenceable: analysed on every call
        pass
    return plan


async def prepare_arguments(func: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any], *,
                            scope: TaskScope, app: Any = None,
                            name: str | None = None) -> tuple[list[Any], dict[str, Any]]:
    """The ``(args, kwargs)`` to call ``func`` with: dependencies resolved in ``scope``, States made
    for ``app``, pydantic models built. ``name`` (the task name) is used in error messages.

    Raises :class:`~qtasks.exc.TaskArgumentsError` when a model does not validate or the caller
    passed a value for an injected parameter; a dependency's own exception propagates as is.
    """
    plan = analyze(func)
    if not plan.special:
        return list(args), dict(kwargs)
    task = name or str(getattr(func, "__qualname__", None) or repr(func))
    binder = _Binder(plan, list(args), dict(kwargs), task)
    return await binder.bind(scope, app)


class _Binder:
    """One walk over the parameters in order, consuming positional arguments as Python would,
    except that injected parameters consume none."""

    def __init__(self, plan: CallPlan, args: list[Any], kwargs: dict[str, Any], task: str) -> None:
        self.plan = plan
        self.pending = args
        self.kw = kwargs
        self.task = task
        self.out_args: list[Any] = []
        self.out_kw: dict[str, Any] = {}
        self.used: set[str] = set()  # keyword arguments consumed as model fields
        self.positional = True  # False once a positional parameter was skipped: later values go by name
        self.names = {p.name for p in plan.params}

    async def bind(self, scope: TaskScope, app: Any) -> tuple[list[Any], dict[str, Any]]:
        for i, p in enumerate(self.plan.params):
            if p.kind is _P.VAR_POSITIONAL:
                self.out_args.extend(self.pending)
                self.pending = []
            elif p.kind is _P.VAR_KEYWORD:
                continue
            elif p.depends is not None or p.state_cls is not None:
                if p.name in self.kw:
                    what = "Depends" if p.depends is not None else "a State"
                    raise TaskArgumentsError(f"task {self.task!r}: parameter {p.name!r} is injected ({what}) "
                                             f"and cannot be passed by the caller")
                if p.depends is not None:
                    self._place(p, await scope.resolve(p.depends))
                elif p.state_cls is not None:
                    self._place(p, p.state_cls(app))
            elif p.model is not None:
                value = self._model(i, p, p.model)
                if value is _MISSING:
                    self.positional = False  # left to its default
                else:
                    self._place(p, value)
            elif self.pending and p.kind in _POSITIONAL:
                self.out_args.append(self.pending.pop(0))
            else:
                self.positional = False
        self.out_args.extend(self.pending)  # too many: Python's own TypeError says so
        self.out_kw.update((k, v) for k, v in self.kw.items() if k not in self.used)
        return self.out_args, self.out_kw

    def _place(self, p: ParamPlan, value: Any) -> None:
        if p.kind in _POSITIONAL and self.positional:
            self.out_args.append(value)
        elif p.kind is _P.POSITIONAL_ONLY:
            raise TaskArgumentsError(f"task {self.task!r}: positional-only parameter {p.name!r} cannot be filled "
                                     f"after an earlier positional parameter was left to its default")
        else:
            self.out_kw[p.name] = value

    def _check(self, p: ParamPlan, model: type[BaseModel], value: Any) -> Any:
        if value is None and p.allows_none:
            return None
        return validate(model, value, task=self.task, param=p.name)

    def _model(self, i: int, p: ParamPlan, model: type[BaseModel]) -> Any:
        if p.name in self.kw:  # the whole model by name: t.add_task(m={...})
            return self._check(p, model, self.kw.pop(p.name))
        fields = field_keys(model)
        data: dict[str, Any] = {}
        for _, keys in fields:
            for k in keys:
                if k in self.kw and k not in self.names:
                    data[k] = self.kw[k]
                    self.used.add(k)
                    break
        head = self.pending[0] if self.pending else _MISSING
        if not data and (isinstance(head, (dict, model)) or (head is None and p.allows_none)):
            return self._check(p, model, self.pending.pop(0))  # the whole model at its position
        # Fields not given by name come from positional arguments in field order, leaving enough
        # arguments for the required positional parameters after this one.
        missing = [f for f, keys in fields if not keys & data.keys()]
        take = max(0, min(len(missing), len(self.pending) - self._reserved_after(i)))
        for f in missing[:take]:
            data[f] = self.pending.pop(0)
        if not data and not p.required:
            return _MISSING
        return self._check(p, model, data)

    def _reserved_after(self, i: int) -> int:
        return sum(1 for q in self.plan.params[i + 1:]
                   if q.plain and q.kind in _POSITIONAL and q.required and q.name not in self.kw)
