"""Celery's canvas (signatures, chains, groups, chords, map/starmap/chunks) on qtasks.

A signature is a plain ``dict`` with Celery's wire shape ``{task, args, kwargs, options, subtask_type,
immutable}``, so it travels inside a message unchanged. Every primitive publishes through the compat app's
one publishing path (``app._send``, whose sync face is ``app.send_task``); the workflow state travels in
the message ``extra`` (see the compat design):

- ``chain``: the steps still to run after this task (signature dicts, next first, ids already frozen);
  the worker publishes the next one with this task's result prepended (:func:`apply_callbacks`).
- ``link`` / ``link_error``: callbacks on success / errbacks on failure (:func:`apply_errbacks`).
- ``group_id`` / ``group_index``: membership of a group or a chord header.
- ``chord`` + ``chord_size``: the body of the chord a header task belongs to (for ``request.chord``).

Chords do not depend on backend counters: after publishing the header, the client publishes the built-in
task ``celery.chord_unlock``, which polls the header results, re-publishes itself with a countdown until all
are ready and then publishes the body with the list of results, or fails the body with ``ChordError`` (and
calls its errbacks) when a header task failed or the header is not done within the maximum wait.

The async functions do the work; the sync methods (``apply_async``, ``delay``, ``__call__``) block on them
through the app, as ``Task.apply_async`` does.
"""

from __future__ import annotations

import copy
import functools
import inspect
import logging
import time
import uuid as uuid_mod
from collections.abc import Coroutine, Iterable, Iterator
from typing import Any, ClassVar, TypeVar

T = TypeVar("T")

logger = logging.getLogger("qtasks_compat.canvas")

#: ``celery.chord_unlock`` polls the header at most this often apart unless ``chord(..., interval=)`` or the
#: setting ``result_chord_retry_interval`` says otherwise (Celery's default there is 1 s). It starts at
#: ``CHORD_UNLOCK_FIRST`` and doubles up to that, so short headers do not pay a whole interval.
CHORD_UNLOCK_FIRST = 0.05
CHORD_UNLOCK_INTERVAL = 1.0
#: ...and gives up (failing the body with ``ChordError``) after this many seconds without a finished header,
#: unless ``chord(..., max_wait=)`` or the ``result_chord_unlock_max_wait`` setting says otherwise. Celery
#: would poll forever; a lost header task must not leave the body PENDING for ever here.
CHORD_UNLOCK_MAX_WAIT = 3600.0

# apply_async options that are canvas protocol fields: they travel in the message ``extra``.
_EXTRA_OPTIONS = ("chain", "chord", "chord_size", "group_id", "group_index")
# Options of a chord signature that configure chord_unlock, not a task message.
_CHORD_OPTIONS = ("interval", "max_wait", "max_retries", "header_id")


def _unsupported(feature: str) -> NotImplementedError:
    from qtasks_compat.exceptions import unsupported
    return unsupported(feature)


def _uuid() -> str:
    return str(uuid_mod.uuid4())


def _current_app() -> Any:
    from qtasks_compat.local import get_current_app
    return get_current_app()


def _blocking(app: Any, coro: Coroutine[Any, Any, T]) -> T:
    """Run an async canvas operation from sync code (a sync task's thread, or inside an async task too)."""
    from qtasks_compat.app import run_blocking
    return run_blocking(app, coro)


def _sig_dicts(value: Any) -> list[dict[str, Any]]:
    """``link=`` / ``link_error=`` values (a signature, a dict or a list of them) as wire dicts."""
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise TypeError(f"link/link_error take signatures (task.s(...)), got {item!r}")
        out.append(_wire(item))
    return out


def _wire(sig: dict[str, Any]) -> dict[str, Any]:
    """A plain-dict copy of a signature (nested signatures and tuples included) for a message."""
    return _plain(sig)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------- Signature
class Signature(dict):
    """A task call that can be passed around: ``add.s(2, 2)``, ``signature("tasks.add", (2, 2))``.

    Keys: ``task`` (name), ``args``, ``kwargs``, ``options`` (apply_async options), ``subtask_type`` (None,
    ``"chain"``, ``"group"`` or ``"chord"``) and ``immutable`` (True: the parent's result is not prepended).
    """

    TYPES: ClassVar[dict[str, type[Signature]]] = {}
    _app: Any = None
    _type: Any = None

    @classmethod
    def register_type(cls, name: str | None = None) -> Any:
        def _inner(sub: type[Signature]) -> type[Signature]:
            cls.TYPES[name or sub.__name__] = sub
            return sub
        return _inner

    @classmethod
    def from_dict(cls, d: dict[str, Any], app: Any = None) -> Signature:
        typ = d.get("subtask_type")
        if typ:
            target = cls.TYPES.get(typ)
            if target is None:
                raise ValueError(f"unknown signature subtask_type {typ!r}")
            return target.from_dict(d, app=app)
        return Signature(d, app=app)

    def __init__(self, task: Any = None, args: Any = None, kwargs: Any = None, options: Any = None,
                 type: Any = None, subtask_type: str | None = None, immutable: bool = False,
                 app: Any = None, **ex: Any) -> None:
        self._app = app
        if isinstance(task, dict):
            # A signature (or its wire form) received from a message: take it as it is.
            super().__init__(task)
            self.setdefault("args", ())
            self.setdefault("kwargs", {})
            self.setdefault("options", {})
            self.setdefault("subtask_type", None)
            self.setdefault("immutable", False)
            return
        if isinstance(task, str) or task is None:
            name = task
        else:
            name = getattr(task, "name", None)
            if not isinstance(name, str):
                raise TypeError(f"signature() takes a task name or a task, got {task!r}")
            self._type = task
        if args is not None and not isinstance(args, (list, tuple)):
            raise TypeError(f"signature args must be a list or tuple, got {type_name(args)}")
        if kwargs is not None and not isinstance(kwargs, dict):
            raise TypeError(f"signature kwargs must be a dict, got {type_name(kwargs)}")
        super().__init__(task=name, args=tuple(args or ()), kwargs=dict(kwargs or {}),
                         options=dict(options or {}, **ex), subtask_type=subtask_type, immutable=bool(immutable))

    # -- dict fields as attributes (Celery's names)
    @property
    def task(self) -> Any:
        return self["task"]

    name = task

    @property
    def args(self) -> tuple[Any, ...]:
        return tuple(self["args"] or ())

    @args.setter
    def args(self, value: Any) -> None:
        self["args"] = tuple(value or ())

    @property
    def kwargs(self) -> dict[str, Any]:
        return self["kwargs"]

    @kwargs.setter
    def kwargs(self, value: dict[str, Any]) -> None:
        self["kwargs"] = value

    @property
    def options(self) -> dict[str, Any]:
        return self["options"]

    @options.setter
    def options(self, value: dict[str, Any]) -> None:
        self["options"] = value

    @property
    def subtask_type(self) -> str | None:
        return self.get("subtask_type")

    @property
    def immutable(self) -> bool:
        return bool(self.get("immutable"))

    @immutable.setter
    def immutable(self, value: bool) -> None:
        self["immutable"] = bool(value)

    @property
    def id(self) -> str | None:
        return self.options.get("task_id")

    @property
    def app(self) -> Any:
        if self._type is not None and getattr(self._type, "app", None) is not None:
            return self._type.app
        if self._app is None:
            self._app = _current_app()
        return self._app

    @property
    def type(self) -> Any:
        """The registered task this signature calls (raises NotRegistered for an unknown name)."""
        if self._type is None:
            tasks = self.app.tasks
            try:
                self._type = tasks[self.task]
            except KeyError:
                from qtasks_compat.exceptions import NotRegistered
                raise NotRegistered(self.task) from None
        return self._type

    def _type_or_none(self) -> Any:
        if self._type is not None:
            return self._type
        task = self.app.tasks.get(self.task)
        if task is not None:
            self._type = task
        return task

    def AsyncResult(self, task_id: str) -> Any:
        return self.app.AsyncResult(task_id)

    # -- building
    def _merge(self, args: Any = None, kwargs: Any = None, options: dict[str, Any] | None = None,
               force: bool = False) -> tuple[tuple[Any, ...], dict[str, Any], dict[str, Any]]:
        """Partial arguments: call args go first, call kwargs win; an immutable signature keeps its own."""
        new_options = dict(self.options, **options) if options else dict(self.options)
        if self.immutable and not force:
            return self.args, dict(self.kwargs), new_options
        new_args = tuple(args) + self.args if args else self.args
        new_kwargs = dict(self.kwargs, **kwargs) if kwargs else dict(self.kwargs)
        return new_args, new_kwargs, new_options

    def _copy_with(self, args: tuple[Any, ...], kwargs: dict[str, Any], options: dict[str, Any]) -> Signature:
        sig = Signature(dict(self, args=args, kwargs=kwargs, options=options), app=self._app)
        sig._type = self._type
        return sig

    def clone(self, args: Any = None, kwargs: Any = None, **opts: Any) -> Signature:
        """A copy with partial ``args`` prepended, ``kwargs`` merged and ``opts`` set (unless immutable)."""
        a, k, o = self._merge(args, kwargs, opts)
        return self._copy_with(a, copy.deepcopy(k), copy.deepcopy(o))

    partial = clone

    def set(self, immutable: bool | None = None, **options: Any) -> Signature:
        """Set apply_async options (``countdown``, ``queue``, ...) in place; returns the signature."""
        if immutable is not None:
            self.set_immutable(immutable)
        self.options.update(options)
        return self

    def set_immutable(self, immutable: bool) -> None:
        self.immutable = immutable

    def freeze(self, _id: str | None = None, group_id: str | None = None, chord: Any = None,
               root_id: str | None = None, parent_id: str | None = None, group_index: int | None = None) -> Any:
        """Fix the task id now (an existing ``task_id`` option wins) and return its AsyncResult."""
        opts = self.options
        tid = opts.get("task_id") or _id or _uuid()
        opts["task_id"] = tid
        for key, value in (("group_id", group_id), ("chord", chord), ("root_id", root_id),
                           ("parent_id", parent_id), ("group_index", group_index)):
            if value is not None:
                opts[key] = value
        return self.AsyncResult(tid)

    def append_to_list_option(self, key: str, value: Any) -> Any:
        items = self.options.setdefault(key, [])
        if not isinstance(items, list):
            items = self.options[key] = list(items) if isinstance(items, tuple) else [items]
        if value not in items:
            items.append(value)
        return value

    def extend_list_option(self, key: str, value: Any) -> None:
        for v in value if isinstance(value, (list, tuple)) else [value]:
            self.append_to_list_option(key, v)

    def link(self, callback: dict[str, Any]) -> Any:
        """Run ``callback`` with this task's result when it succeeds; returns the callback."""
        return self.append_to_list_option("link", maybe_signature(callback, app=self._app))

    def link_error(self, errback: dict[str, Any]) -> Any:
        """Run ``errback`` when this task fails; returns the errback."""
        return self.append_to_list_option("link_error", maybe_signature(errback, app=self._app))

    def on_error(self, errback: dict[str, Any]) -> Signature:
        """``link_error`` that returns the signature itself (for fluent building)."""
        self.link_error(errback)
        return self

    def flatten_links(self) -> list[Signature]:
        out: list[Signature] = [self]
        for link in self.options.get("link") or []:
            out += maybe_signature(link, app=self._app).flatten_links()  # type: ignore[union-attr]
        return out

    # -- composing
    def __or__(self, other: Any) -> Any:
        if isinstance(other, Signature):
            return chain(self, other, app=self._app)
        return NotImplemented

    def __ior__(self, other: Any) -> Any:
        # dict's in-place merge operator would silently merge the two dicts: compose instead, as Celery does.
        return self.__or__(other)

    def __deepcopy__(self, memo: dict[int, Any]) -> Signature:
        clone = type(self).from_dict(copy.deepcopy(dict(self), memo), app=self._app)
        clone._type = self._type
        return clone

    def __reduce__(self) -> tuple[Any, ...]:
        return signature, (_plain(dict(self)),)

    def __json__(self) -> dict[str, Any]:
        return _plain(dict(self))

    def __repr__(self) -> str:
        return self.reprcall()

    def reprcall(self, *args: Any, **kwargs: Any) -> str:
        a, k, _ = self._merge(args, kwargs, {}, force=True)
        parts = [repr(x) for x in a] + [f"{key}={value!r}" for key, value in k.items()]
        return f"{self.task}({', '.join(parts)})"

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(self.id) if self.id else id(self)

    # -- running
    def __call__(self, *partial_args: Any, **partial_kwargs: Any) -> Any:
        """Run the task here, inline (no message), with partial arguments merged."""
        args, kwargs, _ = self._merge(partial_args, partial_kwargs, None)
        return self.type(*args, **kwargs)

    def delay(self, *partial_args: Any, **partial_kwargs: Any) -> Any:
        return self.apply_async(partial_args, partial_kwargs)

    def apply_async(self, args: Any = None, kwargs: Any = None, route_name: str | None = None,
                    **options: Any) -> Any:
        """Publish (``args`` prepended to the stored ones, ``kwargs`` merged); returns the result handle."""
        options = {k: v for k, v in options.items() if v is not None}
        app = self.app
        if _always_eager(app):
            return self.apply(args, kwargs, **options)
        return _blocking(app, self._publish(tuple(args or ()), dict(kwargs or {}), options))

    async def _publish(self, args: tuple[Any, ...], kwargs: dict[str, Any], options: dict[str, Any]) -> Any:
        a, k, o = self._merge(args, kwargs, options)
        return await _send(self.app, self.task, a, k, o, task=self._type_or_none())

    def apply(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        """Run here and now (eager), returning an EagerResult."""
        a, k, o = self._merge(tuple(args or ()), dict(kwargs or {}), options)
        for key in (*_EXTRA_OPTIONS, *_CHORD_OPTIONS):
            o.pop(key, None)
        return self.type.apply(a, k, **o)

    def __invert__(self) -> Any:
        return self.apply_async().get()

    def election(self) -> Any:
        raise _unsupported("Signature.election")

    def stamp(self, visitor: Any = None, append_stamps: bool = False, **headers: Any) -> Any:
        raise _unsupported("canvas stamping (Signature.stamp)")

    def stamp_links(self, visitor: Any = None, append_stamps: bool = False, **headers: Any) -> Any:
        raise _unsupported("canvas stamping (Signature.stamp_links)")


def type_name(value: Any) -> str:
    return type(value).__name__


def _always_eager(app: Any) -> bool:
    conf = getattr(app, "conf", None)
    return bool(conf is not None and conf.get("task_always_eager"))


async def _send(app: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], options: dict[str, Any],
                task: Any = None) -> Any:
    """Publish one task message: the canvas fields go to ``_compat_extra``, the rest to the app's send path."""
    opts = {k: v for k, v in options.items() if v is not None}
    extra: dict[str, Any] = {}
    for key in _EXTRA_OPTIONS:
        value = opts.pop(key, None)
        if value is None:
            continue
        if key == "chain":
            value = [_wire(s) for s in value]
            if not value:
                continue
        elif key == "chord":
            value = _wire(value)
        extra[key] = value
    for key in _CHORD_OPTIONS:
        opts.pop(key, None)
    link = _sig_dicts(opts.pop("link", None))
    link_error = _sig_dicts(opts.pop("link_error", None))
    if task is not None and _overrides_apply_async(task):
        # A Task class with its own apply_async (adding headers, say) is called, as Celery's canvas does.
        import asyncio
        import contextvars
        ctx = contextvars.copy_context()
        return await asyncio.to_thread(ctx.run, lambda: task.apply_async(
            list(args), dict(kwargs), link=link or None, link_error=link_error or None, _compat_extra=extra,
            **opts))
    if task is not None:
        # What Task.apply_async adds before it sends: the task's own defaults and the argument check.
        task._check_arguments(args, kwargs)
        opts = {**task._exec_options(), **opts}
        if task.ignore_result is not None:
            opts.setdefault("ignore_result", task.ignore_result)
        opts["_task"] = task
    task_id = await app._send(name, list(args), dict(kwargs), link=link or None, link_error=link_error or None,
                              _compat_extra=extra, **opts)
    return app.AsyncResult(task_id, task_name=name)


def _overrides_apply_async(task: Any) -> bool:
    from qtasks_compat.task import Task
    method = getattr(type(task), "apply_async", None)
    return method is not None and method is not Task.apply_async


# ---------------------------------------------------------------------------------------------- chain
def _unroll(sig: Signature) -> Signature:
    """A one-member group behaves as its member (Celery's ``maybe_unroll_group``)."""
    if isinstance(sig, group) and len(sig.tasks) == 1:
        return sig.tasks[0].clone()
    return sig


def _append_step(steps: list[Signature], other: Signature, app: Any) -> None:
    """Add ``other`` to a chain's steps with Celery's upgrades: group then task -> chord."""
    if isinstance(other, _chain):
        for t in other.unchain_tasks():
            _append_step(steps, t, app)
        return
    other = _unroll(other)
    if steps and isinstance(steps[-1], group):
        # A group followed by anything becomes a chord: the next step receives the list of results.
        upgraded = _chord(steps.pop(), other, app=app)
        before = steps[-1] if steps else None
        if isinstance(before, _chord):
            # Two chords in a row: the second one runs as (part of) the first one's body.
            steps[-1] = _with_body(before, upgraded)
        else:
            steps.append(upgraded)
        return
    if steps and isinstance(steps[-1], _chord) and not isinstance(other, _chord):
        steps[-1] = _with_body(steps[-1], other)
        return
    steps.append(other)


def _with_body(sig: _chord, then: Signature) -> _chord:
    """A copy of chord ``sig`` whose body continues with ``then`` (the caller's chord is left as it was)."""
    out = sig.clone()
    assert isinstance(out, _chord)
    out.body = out.body | then
    return out


class _Compound(Signature):
    """A chain or group: its ``tasks`` live in ``kwargs``; its app is the first member's."""

    @property
    def tasks(self) -> list[Signature]:
        return self.kwargs["tasks"]

    @property
    def app(self) -> Any:
        if self._app is None:
            for t in self.tasks:
                if t._type is not None or t._app is not None:
                    self._app = t.app
                    break
        return super().app


@Signature.register_type("chain")
class _chain(_Compound):
    """``chain(a, b, c)`` / ``a | b | c``: each result is prepended to the next step's arguments."""

    @classmethod
    def from_dict(cls, d: dict[str, Any], app: Any = None) -> Signature:
        tasks = [maybe_signature(t, app=app) for t in (d.get("kwargs") or {}).get("tasks") or []]
        sig = cls(*tasks, app=app, **(d.get("options") or {}))
        if d.get("args"):
            sig["args"] = tuple(d["args"])
        sig["immutable"] = bool(d.get("immutable"))
        return sig

    def __init__(self, *tasks: Any, app: Any = None, **options: Any) -> None:
        if len(tasks) == 1 and not isinstance(tasks[0], dict) and isinstance(tasks[0], Iterable):
            tasks = tuple(tasks[0])
        steps: list[Signature] = []
        for t in tasks:
            sig = maybe_signature(t, app=app)
            if not isinstance(sig, Signature):
                raise TypeError(f"chain() takes signatures, got {t!r}")
            _append_step(steps, sig, app)
        super().__init__("celery.chain", (), {"tasks": steps}, options, subtask_type="chain", app=app)

    def _copy_with(self, args: tuple[Any, ...], kwargs: dict[str, Any], options: dict[str, Any]) -> Signature:
        sig = _chain(*[t.clone() for t in kwargs["tasks"]], app=self._app, **options)
        sig["args"], sig["immutable"] = args, self.immutable
        return sig

    def __or__(self, other: Any) -> Any:
        if isinstance(other, Signature):
            return chain(*self.unchain_tasks(), other, app=self._app)
        return NotImplemented

    def unchain_tasks(self) -> list[Signature]:
        """Cloned steps; the chain's links go to its last step and its errbacks to every step."""
        tasks = [t.clone() for t in self.tasks]
        for sig in self.options.get("link") or []:
            tasks[-1].link(sig)
        for sig in self.options.get("link_error") or []:
            for t in tasks:
                t.link_error(sig)
        return tasks

    def _prepared(self, args: tuple[Any, ...], kwargs: dict[str, Any], options: dict[str, Any]
                  ) -> tuple[list[Signature], list[Any], dict[str, Any]]:
        """Steps with partial arguments on the first, ids frozen, and the options for the first step."""
        if not self.tasks:
            raise ValueError("cannot apply an empty chain")
        opts = {**{k: v for k, v in self.options.items() if k not in ("link", "link_error")}, **options}
        steps = self.unchain_tasks()
        args = tuple(args) + self.args if not self.immutable else self.args
        if args or kwargs:
            steps[0] = steps[0].clone(args, kwargs)
        last = steps[-1]
        # The chain's result is its last step's: task_id / group membership belong there (as on Celery).
        for key in ("task_id", "group_id", "group_index"):
            if key in opts:
                last.options[key] = opts.pop(key)
        results: list[Any] = []
        for step in steps:
            res = step.freeze()
            if results and getattr(res, "parent", None) is None:
                res.parent = results[-1]
            results.append(res)
        return steps, results, opts

    async def _publish(self, args: tuple[Any, ...], kwargs: dict[str, Any], options: dict[str, Any]) -> Any:
        steps, results, opts = self._prepared(args, kwargs, options)
        rest = [*steps[1:], *(maybe_signature(s, app=self._app) for s in opts.pop("chain", None) or [])]
        if rest:
            opts["chain"] = rest
        first = await steps[0]._publish((), {}, opts)
        return first if len(steps) == 1 else results[-1]

    def freeze(self, _id: str | None = None, group_id: str | None = None, chord: Any = None,
               root_id: str | None = None, parent_id: str | None = None, group_index: int | None = None) -> Any:
        last = self.tasks[-1]
        res = None
        for t in self.tasks[:-1]:
            prev, res = res, t.freeze()
            if prev is not None and getattr(res, "parent", None) is None:
                res.parent = prev
        out = last.freeze(_id, group_id=group_id, group_index=group_index)
        if res is not None and getattr(out, "parent", None) is None:
            out.parent = res
        return out

    @property
    def id(self) -> str | None:
        return self.tasks[-1].id if self.tasks else None

    def link(self, callback: dict[str, Any]) -> Any:
        return self.append_to_list_option("link", maybe_signature(callback, app=self._app))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)

    def apply(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        last: Any = None
        fargs, fkwargs = tuple(args or ()), dict(kwargs or {})
        for i, task in enumerate(self.unchain_tasks()):
            partial = (last.get(),) if last is not None else ()
            step = task.clone(fargs, fkwargs) if i == 0 and (fargs or fkwargs) else task
            res = step.apply(partial, **(options if i == 0 else {}))
            if last is not None and getattr(res, "parent", None) is None:
                res.parent = last
            last = res
        return last

    def __repr__(self) -> str:
        return " | ".join(repr(t) for t in self.tasks) if self.tasks else "celery.chain()"


class chain(_chain):
    """``chain(a, b, c)`` — build a chain.

    As on Celery, steps that fold into one group or chord (``chain(group, task)`` is a chord) give that
    signature itself rather than a one-step chain.
    """

    def __new__(cls, *tasks: Any, app: Any = None, **options: Any) -> Any:
        built = _chain(*tasks, app=app, **options)
        if not options and len(built.tasks) == 1 and isinstance(built.tasks[0], (group, _chord)):
            return built.tasks[0]
        return built  # a ``_chain``, as Celery's ``chain(...)`` gives (so __init__ is not run again)


# ---------------------------------------------------------------------------------------------- group
def _group_members(tasks: tuple[Any, ...], app: Any) -> list[Signature]:
    if len(tasks) == 1:
        only = tasks[0]
        if isinstance(only, group):
            return [t.clone() for t in only.tasks]
        if not isinstance(only, dict) and isinstance(only, Iterable):
            tasks = tuple(only)
    out = []
    for t in tasks:
        sig = maybe_signature(t, app=app)
        if not isinstance(sig, Signature):
            raise TypeError(f"group() takes signatures, got {t!r}")
        out.append(sig)
    return out


@Signature.register_type("group")
class group(_Compound):
    """``group(a, b)`` / ``group(iterable)``: run the members in parallel; applying it returns a GroupResult."""

    @classmethod
    def from_dict(cls, d: dict[str, Any], app: Any = None) -> Signature:
        tasks = [maybe_signature(t, app=app) for t in (d.get("kwargs") or {}).get("tasks") or []]
        sig = cls(tasks, app=app, **(d.get("options") or {}))
        sig["immutable"] = bool(d.get("immutable"))
        if d.get("args"):
            sig["args"] = tuple(d["args"])
        return sig

    def __init__(self, *tasks: Any, app: Any = None, **options: Any) -> None:
        super().__init__("celery.group", (), {"tasks": _group_members(tasks, app)}, options,
                         subtask_type="group", app=app)

    def _copy_with(self, args: tuple[Any, ...], kwargs: dict[str, Any], options: dict[str, Any]) -> Signature:
        sig = group([t.clone() for t in kwargs["tasks"]], app=self._app, **options)
        sig["args"], sig["immutable"] = args, self.immutable
        return sig

    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self) -> Iterator[Signature]:
        return iter(self.tasks)

    def link(self, sig: dict[str, Any]) -> Any:
        # As on Celery: the callback is linked (immutable) to the first member only.
        callback = maybe_signature(sig, app=self._app).clone().set(immutable=True)  # type: ignore[union-attr]
        return self.tasks[0].link(callback)

    def link_error(self, sig: dict[str, Any]) -> Any:
        errback = maybe_signature(sig, app=self._app)
        return tuple(t.link_error(errback.clone()) for t in self.tasks)  # type: ignore[union-attr]

    def freeze(self, _id: str | None = None, group_id: str | None = None, chord: Any = None,
               root_id: str | None = None, parent_id: str | None = None, group_index: int | None = None) -> Any:
        from qtasks_compat.result import GroupResult
        gid = self.options.get("task_id") or _id or _uuid()
        self.options["task_id"] = gid
        results = [t.freeze(group_id=gid, group_index=i) for i, t in enumerate(self.tasks)]
        return GroupResult(gid, results, app=self.app)

    async def _publish(self, args: tuple[Any, ...], kwargs: dict[str, Any], options: dict[str, Any]) -> Any:
        from qtasks_compat.result import GroupResult
        opts = {**self.options, **options}
        rest = opts.pop("chain", None)
        if rest:
            # A group with steps after it (reached through a worker callback) is a chord.
            body = chain(*[maybe_signature(s, app=self._app) for s in rest], app=self._app)
            return await chord(self, body, app=self._app)._publish(args, kwargs, opts)
        gid = opts.pop("task_id", None) or _uuid()
        for key in ("group_id", "group_index", "link", "link_error"):
            opts.pop(key, None)
        if not self.immutable:
            args = tuple(args) + self.args
        results = []
        for i, member in enumerate(self.tasks):
            results.append(await member._publish(args, kwargs, {**opts, "group_id": gid, "group_index": i}))
        return GroupResult(gid, results, app=self.app)

    def __call__(self, *partial_args: Any, **options: Any) -> Any:
        return self.apply_async(partial_args, **options)

    def apply(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        from qtasks_compat.result import GroupResult
        gid = self.options.get("task_id") or _uuid()
        results = [t.apply(args, kwargs, **options) for t in self.tasks]
        return GroupResult(gid, results, app=self.app)

    def __or__(self, other: Any) -> Any:
        if isinstance(other, Signature):
            return chain(self, other, app=self._app)
        return NotImplemented

    def __repr__(self) -> str:
        return f"group([{', '.join(repr(t) for t in self.tasks)}])"


# ---------------------------------------------------------------------------------------------- chord
@Signature.register_type("chord")
class _chord(Signature):
    """``chord(header, body)``: run the header group, then the body with the list of header results.

    A header task that fails makes the body fail with ``ChordError`` and calls the body's errbacks.
    """

    @classmethod
    def from_dict(cls, d: dict[str, Any], app: Any = None) -> Signature:
        kw = d.get("kwargs") or {}
        sig = cls(kw.get("header") or [], kw.get("body"), app=app, **(d.get("options") or {}))
        sig["immutable"] = bool(d.get("immutable"))
        if d.get("args"):
            sig["args"] = tuple(d["args"])
        return sig

    def __init__(self, header: Any, body: Any = None, task: str = "celery.chord", args: Any = None,
                 kwargs: Any = None, app: Any = None, **options: Any) -> None:
        header_group = header if isinstance(header, group) else group(header, app=app)
        body_sig = maybe_signature(body, app=app) if body is not None else None
        super().__init__(task, args or (), {"kwargs": dict(kwargs or {}), "header": header_group.tasks,
                                            "body": body_sig}, options, subtask_type="chord", app=app)

    @property
    def tasks(self) -> list[Signature]:
        return self.kwargs["header"]

    @property
    def body(self) -> Signature:
        return self.kwargs["body"]

    @body.setter
    def body(self, value: Signature) -> None:
        self.kwargs["body"] = value

    @property
    def app(self) -> Any:
        if self._app is None:
            for t in [*self.tasks, *([self.body] if self.body is not None else [])]:
                if t._type is not None or t._app is not None:
                    self._app = t.app
                    break
        return super().app

    def _copy_with(self, args: tuple[Any, ...], kwargs: dict[str, Any], options: dict[str, Any]) -> Signature:
        body = kwargs["body"]
        sig = _chord([t.clone() for t in kwargs["header"]], body.clone() if body is not None else None,
                     app=self._app, **options)
        sig["args"], sig["immutable"] = args, self.immutable
        return sig

    @property
    def id(self) -> str | None:
        return self.body.id if self.body is not None else None

    def link(self, callback: dict[str, Any]) -> Any:
        self.body.link(callback)
        return callback

    def link_error(self, errback: dict[str, Any]) -> Any:
        # Celery's default (task_allow_error_cb_on_chord_header=False): the errback goes to the body only.
        self.body.link_error(errback)
        return errback

    def freeze(self, _id: str | None = None, group_id: str | None = None, chord: Any = None,
               root_id: str | None = None, parent_id: str | None = None, group_index: int | None = None) -> Any:
        header = group(self.tasks, app=self._app)
        if "header_id" in self.options:
            header.options["task_id"] = self.options["header_id"]
        header_result = header.freeze()
        self.options["header_id"] = header_result.id
        res = self.body.freeze(_id or self.options.get("task_id"), group_id=group_id or self.options.get("group_id"),
                               group_index=group_index if group_index is not None else self.options.get("group_index"))
        res.parent = header_result
        return res

    async def _publish(self, args: tuple[Any, ...], kwargs: dict[str, Any], options: dict[str, Any]) -> Any:
        from qtasks_compat.result import GroupResult
        opts = {**self.options, **options}
        body = kwargs.pop("body", None) if "body" in kwargs else None
        body = maybe_signature(body, app=self._app) if body is not None else self.body
        if body is None:
            raise ValueError("chord has no body: chord(header, body) or chord(header)(body)")
        rest = opts.pop("chain", None)
        # Steps after the chord (in a chain) run after the body: they become part of it.
        body = chain(body, *[maybe_signature(s, app=self._app) for s in rest], app=self._app) if rest \
            else body.clone()
        app = self.app
        interval = float(opts.pop("interval", None) or _conf(app, "result_chord_retry_interval",
                                                             CHORD_UNLOCK_INTERVAL))
        max_wait = float(opts.pop("max_wait", None) or _conf(app, "result_chord_unlock_max_wait",
                                                             CHORD_UNLOCK_MAX_WAIT))
        max_retries = opts.pop("max_retries", None)
        if max_retries is not None:
            max_wait = min(max_wait, interval * (int(max_retries) + 1))
        # The chord's own id / group membership are those of its body (its result is the body's).
        body_opts = {k: opts.pop(k) for k in ("task_id", "group_id", "group_index") if k in opts}
        gid = opts.pop("header_id", None) or _uuid()
        body_result = body.freeze(body_opts.get("task_id"), group_id=body_opts.get("group_id"),
                                  group_index=body_opts.get("group_index"))
        if not self.immutable:
            args = tuple(args) + self.args
        for key in ("link", "link_error"):
            opts.pop(key, None)
        size = len(self.tasks)
        results = []
        for i, member in enumerate(self.tasks):
            results.append(await member._publish(args, kwargs, {**opts, "group_id": gid, "group_index": i,
                                                                 "chord": body, "chord_size": size}))
        header_result = GroupResult(gid, results, app=app)
        ids = _result_ids(results)
        unlock_opts: dict[str, Any] = {k: opts[k] for k in ("queue", "routing_key", "priority") if k in opts}
        body_queue = body.options.get("queue")
        if body_queue and "queue" not in unlock_opts:
            unlock_opts["queue"] = body_queue
        await _send(app, "celery.chord_unlock", (), {
            "group_id": gid, "callback": _wire(body), "result": ids, "interval": interval,
            "deadline": time.time() + max_wait,
            "step": min(interval, CHORD_UNLOCK_FIRST),
        }, {"countdown": 0 if not ids else min(interval, CHORD_UNLOCK_FIRST), "ignore_result": True, **unlock_opts})
        body_result.parent = header_result
        return body_result

    def __call__(self, body: Any = None, **options: Any) -> Any:
        return self.apply_async((), {"body": body} if body is not None else {}, **options)

    def apply(self, args: Any = None, kwargs: Any = None, propagate: bool = True, **options: Any) -> Any:
        kwargs = dict(kwargs or {})
        body = maybe_signature(kwargs.pop("body", None), app=self._app) or self.body
        header = group(self.tasks, app=self._app).apply(args, kwargs, **options)
        return body.apply((header.get(propagate=propagate),))

    def __repr__(self) -> str:
        return f"%{self.body!r}(({', '.join(repr(t) for t in self.tasks)}))"


class chord(_chord):
    """``chord(header, body)`` — see :class:`_chord`."""


def _result_ids(results: list[Any]) -> list[Any]:
    """Header result ids for chord_unlock: a task id, or ``[group_id, [ids...]]`` for a nested group."""
    out: list[Any] = []
    for r in results:
        members = getattr(r, "results", None)
        out.append([r.id, _result_ids(list(members))] if members is not None else r.id)
    return out


def _conf(app: Any, key: str, default: float) -> float:
    conf = getattr(app, "conf", None)
    try:
        value = conf.get(key) if conf is not None else None
    except Exception:  # an unknown setting name must not break a chord
        value = None
    return float(value) if value not in (None, "") else default


# ---------------------------------------------------------------------------------------------- map/chunks
class xmap(Signature):
    """``task.map(it)``: one message running ``task(item)`` for every item; returns the list of results."""

    _task_name = "celery.map"

    @classmethod
    def from_dict(cls, d: dict[str, Any], app: Any = None) -> Signature:
        return Signature(d, app=app)

    def __init__(self, task: Any, it: Iterable[Any], app: Any = None, **options: Any) -> None:
        sig = maybe_signature(task, app=app)
        if not isinstance(sig, Signature):
            raise TypeError(f"{self._task_name}: expected a signature, got {task!r}")
        super().__init__(self._task_name, (), {"task": sig, "it": list(it)}, options, immutable=True, app=app)


class xstarmap(xmap):
    """``task.starmap(it)``: one message running ``task(*item)`` for every item."""

    _task_name = "celery.starmap"


class chunks(Signature):
    """``task.chunks(it, n)``: the items split into chunks of ``n``; applying it runs a group of starmaps."""

    def __init__(self, task: Any, it: Iterable[Any], n: int, app: Any = None, **options: Any) -> None:
        sig = maybe_signature(task, app=app)
        if not isinstance(sig, Signature):
            raise TypeError(f"chunks: expected a signature, got {task!r}")
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"chunks: n must be a positive int, got {n!r}")
        super().__init__("celery.chunks", (), {"task": sig, "it": list(it), "n": n}, options, immutable=True,
                         app=app)

    def group(self) -> group:
        task = self.kwargs["task"]
        items, n = self.kwargs["it"], self.kwargs["n"]
        parts = [items[i:i + n] for i in range(0, len(items), n)]
        return group([xstarmap(task, part, app=self._app) for part in parts], app=self._app)

    async def _publish(self, args: tuple[Any, ...], kwargs: dict[str, Any], options: dict[str, Any]) -> Any:
        return await self.group()._publish(args, kwargs, {**self.options, **options})

    def __call__(self, **options: Any) -> Any:
        return self.apply_async(**options)

    def apply(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        return self.group().apply(args, kwargs, **options)

    @classmethod
    def apply_chunks(cls, task: Any, it: Iterable[Any], n: int, app: Any = None) -> Any:
        return cls(task, it, n, app=app)()


# ---------------------------------------------------------------------------------------------- functions
def signature(varies: Any, *args: Any, **kwargs: Any) -> Signature:
    """``signature("tasks.add", args=(2, 2), kwargs={}, options={}, immutable=False, app=None)``.

    Also takes a task object, or a signature dict (e.g. received in a message), which becomes the right
    signature type (a ``subtask_type`` of chain/group/chord gives those classes).
    """
    app = kwargs.get("app")
    if isinstance(varies, dict):
        if isinstance(varies, Signature):
            return varies.clone()
        return Signature.from_dict(varies, app=app)
    return Signature(varies, *args, **kwargs)


subtask = signature


def maybe_signature(d: Any, app: Any = None, clone: bool = False) -> Signature | None:
    """None stays None; a dict becomes a Signature (cloned when ``clone``); ``app`` is attached."""
    if d is None:
        return None
    if isinstance(d, Signature):
        if clone:
            d = d.clone()
    elif isinstance(d, dict):
        d = Signature.from_dict(d, app=app)
    else:
        raise TypeError(f"expected a signature or a signature dict, got {d!r}")
    if app is not None and d._app is None:
        d._app = app
    return d


maybe_subtask = maybe_signature


def make_signature(task: Any, args: Any = (), kwargs: Any = None, immutable: bool = False,
                   **options: Any) -> Signature:
    """``Task.s`` / ``Task.si`` / ``Task.signature``: a signature of ``task``."""
    return Signature(task, args, kwargs, options, immutable=immutable, app=getattr(task, "app", None))


# ---------------------------------------------------------------------------------------------- worker side
def _req(request: Any, *names: str) -> Any:
    """A field of a Context, a dict or any request-like object (first name that is set)."""
    for name in names:
        value = request.get(name) if isinstance(request, dict) else getattr(request, name, None)
        if value is not None:
            return value
    return None


async def apply_callbacks(app: Any, request: Any, result: Any) -> None:
    """After a task succeeded: publish its ``link`` callbacks and the next ``chain`` step with ``result``.

    Called by the compat worker (and eager runs) with the finished task's request.
    """
    task_id = _req(request, "id")
    if _eager(app, request):
        # Eager runs apply their callbacks eagerly too (a chain's steps are run by chain.apply itself).
        for cb in _req(request, "callbacks", "link") or []:
            await _apply_eagerly(_sig(cb, app), (result,))
        return
    parent = {"parent_id": task_id, "root_id": _req(request, "root_id") or task_id}
    for cb in _req(request, "callbacks", "link") or []:
        sig = _sig(cb, app)
        try:
            await sig._publish((result,), {}, _with_parent(sig, parent))
        except Exception:
            logger.exception("link callback %r of task %s could not be published", cb, task_id)
            raise
    steps = list(_req(request, "chain") or [])
    if steps:
        nxt = _sig(steps[0], app)
        opts = _with_parent(nxt, parent)
        if steps[1:]:
            opts["chain"] = steps[1:]
        await nxt._publish((result,), {}, opts)


def _eager(app: Any, request: Any) -> bool:
    return _always_eager(app) or bool(_req(request, "is_eager"))


async def _apply_eagerly(sig: Signature, args: tuple[Any, ...]) -> Any:
    """``sig.apply(args)`` off the event loop (the eager task body may block on the app's own loop)."""
    import asyncio
    import contextvars
    ctx = contextvars.copy_context()
    return await asyncio.to_thread(ctx.run, lambda: sig.apply(args))


def _sig(value: Any, app: Any) -> Signature:
    sig = maybe_signature(value, app=app)
    if sig is None:
        raise TypeError("a canvas callback is None")
    return sig


def _with_parent(sig: Signature, parent: dict[str, Any]) -> dict[str, Any]:
    # Callbacks run after the task's context is gone: name the workflow's parent and root explicitly
    # (compound signatures hand these options to the messages they publish).
    return dict(parent)


async def apply_errbacks(app: Any, request: Any, exc: BaseException | None, traceback: Any) -> None:
    """After a task failed: call its ``link_error`` errbacks the way Celery 5 does.

    An errback whose task is a plain (not ``bind=True``) function task taking more than one positional
    argument (after its stored partial arguments) is called here, inline, as ``errback(request, exc,
    traceback)``; any other errback is published as a task with the failed task's id as its argument.
    """
    task_id = _req(request, "id")
    root_id = _req(request, "root_id") or task_id
    publish: list[Signature] = []
    for eb in _req(request, "errbacks", "link_error") or []:
        sig = maybe_signature(eb, app=app)
        assert sig is not None
        task = app.tasks.get(sig.task) if type(sig) is Signature else None
        if task is not None and _takes_request(task, sig):
            try:
                await _call_errback(app, sig, task, request, exc, traceback)
            except Exception:
                logger.exception("errback %s raised an exception", sig.task)
        else:
            publish.append(sig)
    for sig in publish:
        if _eager(app, request):
            await _apply_eagerly(sig, (task_id,))
        else:
            await sig._publish((task_id,), {}, _with_parent(sig, {"parent_id": task_id, "root_id": root_id}))


def _task_function(task: Any) -> tuple[Any, bool] | None:
    """The decorated function of a function-based task and whether it is bound, else None (class-based)."""
    if not getattr(task, "_decorated", False):
        return None
    fun = getattr(task, "__wrapped__", None) or getattr(task, "_orig_run", None) or getattr(task, "run", None)
    if fun is None:
        return None
    return fun, bool(getattr(task, "_bound_run", False))


def _takes_request(task: Any, sig: Signature) -> bool:
    """Celery's rule for new-style errbacks: function task, not bound, arity > 1 after stored args."""
    found = _task_function(task)
    if found is None:
        return False
    fun, bound = found
    if bound:
        return False
    if inspect.ismethod(fun):
        fun = fun.__func__ if not bound else fun

    def arity_greater(f: Any, n: int) -> bool:
        spec = inspect.getfullargspec(f)
        return bool(spec.varargs) or len(spec.args) > n

    try:
        if not sig.immutable and (sig.args or sig.kwargs):
            try:
                return arity_greater(functools.partial(fun, *sig.args, **sig.kwargs), 1)
            except (TypeError, ValueError):
                return arity_greater(fun, 1)
        return arity_greater(fun, 1)
    except TypeError:
        return False


async def _call_errback(app: Any, sig: Signature, task: Any, request: Any, exc: BaseException | None,
                        traceback: Any) -> None:
    args, kwargs, _ = sig._merge((request, exc, traceback), {}, None)
    if inspect.iscoroutinefunction(getattr(task, "_orig_run", None) or task.run):
        value = task(*args, **kwargs)
        if inspect.isawaitable(value):
            await value
        return
    import asyncio
    import contextvars
    ctx = contextvars.copy_context()
    await asyncio.to_thread(ctx.run, lambda: task(*args, **kwargs))


# ---------------------------------------------------------------------------------------------- chord unlock
_READY = ("SUCCESS", "FAILURE", "REVOKED")


class _Pending(Exception):
    """A header task is not ready yet (ends the scan: nothing more needs reading on this poll)."""

    def __init__(self, task_id: str) -> None:
        super().__init__(task_id)
        self.task_id = task_id


async def _header_states(app: Any, ids: list[Any]) -> list[tuple[str, str, Any]]:
    """``(id, state, result)`` of every header task, in order (a nested group gives its list of results).

    Raises ``_Pending`` at the first task that is not ready, so a poll reads only up to there.
    """
    from qtasks_compat.result import _meta_from_record
    storage = app.qtasks.broker.storage
    out: list[tuple[str, str, Any]] = []
    for rid in ids:
        if isinstance(rid, (list, tuple)):
            nested = await _header_states(app, list(rid[1]))
            bad = next((s for _, s, _ in nested if s != "SUCCESS"), "SUCCESS")
            out.append((str(rid[0]), bad, next((r for _, s, r in nested if s != "SUCCESS"),
                                               [r for _, _, r in nested])))
            continue
        meta = _meta_from_record(await storage.get(str(rid)))
        if meta.state not in _READY:
            raise _Pending(str(rid))
        out.append((str(rid), meta.state, meta.result))
    return out


async def chord_unlock(app: Any, group_id: str, callback: dict[str, Any], result: list[Any],
                       interval: float = CHORD_UNLOCK_INTERVAL, deadline: float | None = None,
                       step: float | None = None) -> None:
    """Body of ``celery.chord_unlock``: publish the body once the header is done, or fail it; never hang.

    As on Celery, the body waits for every header task to finish, then fails if any of them failed.
    """
    try:
        states = await _header_states(app, result)
    except _Pending as pending:
        if deadline is not None and time.time() >= deadline:
            await _fail_chord(app, callback, f"chord {group_id}: header task {pending.task_id} not done in time",
                              None)
            return
        body = maybe_signature(callback, app=app)
        queue = body.options.get("queue") if body is not None else None
        nxt = min(float(interval), 2 * float(step)) if step else float(interval)
        await _send(app, "celery.chord_unlock", (), {
            "group_id": group_id, "callback": callback, "result": result, "interval": interval,
            "deadline": deadline, "step": nxt,
        }, {"countdown": nxt, "ignore_result": True, **({"queue": queue} if queue else {})})
        return
    failed = next(((i, r) for i, s, r in states if s != "SUCCESS"), None)
    if failed is not None:
        await _fail_chord(app, callback, f"Dependency {failed[0]} raised {failed[1]!r}", failed[1])
        return
    await _sig(callback, app)._publish(([r for _, _, r in states],), {}, {})


def _body_tasks(sig: Signature) -> list[Signature]:
    """The plain task signatures a chord body will run (a chain's steps, a group's members)."""
    if isinstance(sig, (_chain, group)):
        return [t for s in sig.tasks for t in _body_tasks(s)]
    if isinstance(sig, _chord):
        return [*(t for s in sig.tasks for t in _body_tasks(s)), *_body_tasks(sig.body)]
    return [sig]


async def _fail_chord(app: Any, callback: dict[str, Any], reason: str, cause: Any) -> None:
    """Mark every task of the body FAILURE with ChordError and call the body's errbacks."""
    from qtasks.brokers.base import encode_fields
    from qtasks_compat.exceptions import ChordError
    exc = ChordError(reason)
    if isinstance(cause, BaseException):
        exc.__cause__ = cause
    body = maybe_signature(callback, app=app)
    assert body is not None
    tasks = _body_tasks(body)
    now = repr(time.time())
    fields = encode_fields({"status": "error", "celery_state": "FAILURE", "exc_type": "ChordError",
                            "exc_module": "qtasks_compat.exceptions", "exc_args": [reason],
                            "traceback": f"qtasks_compat.exceptions.ChordError: {reason}\n", "updated_at": now})
    records = [(t.id, {**fields, "task_name": str(t.task)}) for t in tasks if t.id]
    if records:
        await app.qtasks.broker.storage.save_results(records)
    first = tasks[0] if tasks else body
    errbacks = list(first.options.get("link_error") or body.options.get("link_error") or [])
    if errbacks:
        from qtasks_compat.task import Context
        request = Context(id=first.id, task=first.task, args=list(first.args), kwargs=dict(first.kwargs),
                          root_id=first.options.get("root_id") or first.id, errbacks=errbacks,
                          called_directly=False, delivery_info={}, chord=None)
        await apply_errbacks(app, request, exc, None)


# ---------------------------------------------------------------------------------------------- built-ins
def register_builtins(app: Any) -> None:
    """Register Celery's built-in canvas tasks on ``app`` (the compat core calls this for every app)."""
    tasks = app.tasks

    def add(name: str, fun: Any, **opts: Any) -> None:
        if name not in tasks:
            app.task(name=name, **opts)(fun)

    async def unlock_chord(group_id: str, callback: dict[str, Any], result: list[Any],
                           interval: float = CHORD_UNLOCK_INTERVAL, deadline: float | None = None,
                           step: float | None = None,
                           **kwargs: Any) -> None:
        await chord_unlock(app, group_id, callback, result, interval=interval, deadline=deadline, step=step)

    def xmap_task(task: dict[str, Any], it: list[Any]) -> list[Any]:
        t = signature(task, app=app).type
        return [t(item) for item in it]

    def xstarmap_task(task: dict[str, Any], it: list[Any]) -> list[Any]:
        t = signature(task, app=app).type
        return [t(*item) for item in it]

    def chunks_task(task: dict[str, Any], it: list[Any], n: int) -> list[list[Any]]:
        t = signature(task, app=app).type
        items = list(it)
        return [[t(*item) for item in items[i:i + n]] for i in range(0, len(items), n)]

    def accumulate(*args: Any, **kwargs: Any) -> Any:
        index = kwargs.get("index")
        return args[index] if index is not None else args

    def chain_task(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("chain is not a real task")

    async def group_task(tasks: list[dict[str, Any]], partial_args: Any = (), group_id: str | None = None,
                         **kwargs: Any) -> None:
        await group(tasks, app=app)._publish(tuple(partial_args or ()), {}, {"task_id": group_id})

    async def chord_task(header: list[dict[str, Any]], body: dict[str, Any], partial_args: Any = (),
                         **kwargs: Any) -> None:
        await chord(header, body, app=app)._publish(tuple(partial_args or ()), {}, {})

    add("celery.chord_unlock", unlock_chord, ignore_result=True, max_retries=None)
    add("celery.map", xmap_task)
    add("celery.starmap", xstarmap_task)
    add("celery.chunks", chunks_task)
    add("celery.accumulate", accumulate)
    add("celery.chain", chain_task)
    add("celery.group", group_task)
    add("celery.chord", chord_task)


__all__ = [
    "Signature",
    "apply_callbacks",
    "apply_errbacks",
    "chain",
    "chord",
    "chord_unlock",
    "chunks",
    "group",
    "make_signature",
    "maybe_signature",
    "maybe_subtask",
    "register_builtins",
    "signature",
    "subtask",
    "xmap",
    "xstarmap",
]
