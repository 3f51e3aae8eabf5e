"""Celery's result API (``AsyncResult``, ``EagerResult``, ``ResultSet``, ``GroupResult``) on qtasks records.

Nothing here keeps state of its own: every answer is read from the task's qtasks record (one record per
task id, see "Record conventions" in the compat design), written by the compat worker, ``send_task``,
``update_state`` and ``revoke``. The record's qtasks ``status`` and the optional ``celery_state`` field are
mapped to Celery's state names by :func:`celery_state`; a stored exception is rebuilt by
:func:`rebuild_exception`. Blocking calls go through ``app.qtasks._blocking`` (the async core does the
work), so they work from plain sync code and from sync task threads alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from qtasks.app import BaseQueueTasks
from qtasks.brokers.base import encode_fields
from qtasks.schemas.task import Task as Record
from qtasks_compat import local
from qtasks_compat.exceptions import TaskRevokedError, TimeoutError, exception_from_fields, unsupported
from qtasks_compat.states import (
    EXCEPTION_STATES,
    FAILURE,
    PENDING,
    PROPAGATE_STATES,
    READY_STATES,
    RETRY,
    REVOKED,
    SUCCESS,
)

T = TypeVar("T")

# qtasks record status -> Celery state, when the compat layer wrote no ``celery_state``.
_STATUS_TO_STATE = {"new": PENDING, "process": PENDING, "success": SUCCESS, "error": FAILURE,
                    "cancel": REVOKED, "retry": RETRY}
_WAIT_SLICE = 30.0  # longest single wait on the storage; get(timeout=None) loops over slices
_GROUPS_KEY = "celery_groups"  # GlobalConfig key of saved GroupResults (name = group id)


# ---------------------------------------------------------------- joining inside tasks
# None: decide from the running task; True: allow_join_result(); False: denied_join_result().
_join_allowed: ContextVar[bool | None] = ContextVar("qtasks_compat_join_allowed", default=None)

E_WOULDBLOCK = ("Never call result.get() within a task!\n"
                "See https://docs.celeryq.dev/en/latest/userguide/tasks.html#avoid-launching-synchronous-subtasks\n")


def task_join_will_block() -> bool:
    """True inside a task a worker runs (not an eager one), unless ``allow_join_result()`` is active."""
    allowed = _join_allowed.get()
    if allowed is not None:
        return not allowed
    task = local.get_current_worker_task()
    if task is None:
        return False
    # Celery only blocks joins in worker processes: eager runs (``apply``, always-eager tests) may join.
    return not getattr(getattr(task, "request", None), "is_eager", False)


def assert_will_not_block() -> None:
    if task_join_will_block():
        raise RuntimeError(E_WOULDBLOCK)


@contextlib.contextmanager
def allow_join_result() -> Iterator[None]:
    """Let ``get()`` wait inside a task (it can deadlock a worker whose slots are all waiting)."""
    token = _join_allowed.set(True)
    try:
        yield
    finally:
        _join_allowed.reset(token)


@contextlib.contextmanager
def denied_join_result() -> Iterator[None]:
    """Refuse ``get()`` as inside a worker task (what Celery's test helpers use)."""
    token = _join_allowed.set(False)
    try:
        yield
    finally:
        _join_allowed.reset(token)


# ---------------------------------------------------------------- record <-> Celery mapping (pure)
def celery_state(record_status: str | None, extra: Mapping[str, Any]) -> str:
    """The Celery state of a record: its ``celery_state`` field, else its qtasks ``status`` mapped
    (new/process -> PENDING, success -> SUCCESS, error -> FAILURE, cancel -> REVOKED, retry -> RETRY)."""
    explicit = extra.get("celery_state")
    if explicit not in (None, ""):
        return str(explicit)
    return _STATUS_TO_STATE.get(record_status or "", PENDING)


def rebuild_exception(extra: Mapping[str, Any], traceback: str | None) -> BaseException:
    """The exception a record describes (``exc_module``/``exc_type``/``exc_args``), with its original type.

    Rebuilt by :func:`qtasks_compat.exceptions.exception_from_fields` (Celery's rules: classes of already
    imported modules, else a synthetic class of that name). A plain qtasks failure (no ``exc_type``) is
    rebuilt from the last line of its traceback. On Python 3.11+ the remote traceback is attached as a note.
    """
    qualname, module, args = extra.get("exc_type"), extra.get("exc_module"), extra.get("exc_args")
    if isinstance(args, str):
        with contextlib.suppress(ValueError):
            args = json.loads(args)
    if not qualname:
        last = (traceback or "").strip().splitlines()[-1:] or ["Exception"]
        head, _, msg = last[0].partition(": ")
        module, _, qualname = head.strip().rpartition(".")
        module, qualname, args = module or "builtins", qualname or "Exception", [msg] if msg else []
    if not isinstance(args, (list, tuple)):
        args = [] if args in (None, "") else [args]
    exc = exception_from_fields(str(module) if module else None, str(qualname), list(args))
    if traceback and hasattr(exc, "add_note"):
        exc.add_note("Remote traceback:\n" + traceback.rstrip())
    return exc


@dataclass(frozen=True)
class _Meta:
    """What one read of a task's record says, in Celery's terms."""

    state: str
    result: Any = None
    traceback: str | None = None
    date_done: dt.datetime | None = None
    name: str | None = None
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None
    retries: int | None = None
    children: list[Any] | None = None
    worker: str | None = None
    queue: str | None = None
    exists: bool = False

    def as_dict(self, task_id: str) -> dict[str, Any]:
        """The shape Celery hands to ``on_message`` callbacks."""
        return {"task_id": task_id, "status": self.state, "result": self.result, "traceback": self.traceback,
                "children": self.children, "date_done": self.date_done}


_UNKNOWN = _Meta(state=PENDING)


def _meta_from_record(record: Record | None) -> _Meta:
    if record is None:
        return _UNKNOWN
    extra = record.extra
    state = celery_state(record.status, extra)
    result: Any
    if state == SUCCESS:
        result = record.returning
    elif state == REVOKED and not extra.get("exc_type"):  # cancelled by plain qtasks (``ctx.cancel``)
        result = TaskRevokedError(extra.get("cancel_reason") or "revoked")
    elif state in PROPAGATE_STATES or (state == RETRY and extra.get("exc_type")):
        result = rebuild_exception(extra, record.traceback)
    else:  # STARTED and custom states carry their meta dict
        result = extra.get("celery_meta")
        result = None if result == "" else result
    retries = extra.get("retries")
    queue, worker = extra.get("queue"), extra.get("worker_id")
    return _Meta(
        state=state, result=result,
        traceback=record.traceback if state in EXCEPTION_STATES else None,
        date_done=(dt.datetime.fromtimestamp(record.updated_at.timestamp(), dt.timezone.utc)
                   if state in READY_STATES else None),
        name=record.task_name or None, args=list(record.args), kwargs=dict(record.kwargs),
        retries=retries if isinstance(retries, int) else 0,
        children=list(extra.get("celery_children") or []),
        worker=str(worker) if worker is not None else None,
        queue=str(queue) if queue is not None else None, exists=True)


# ---------------------------------------------------------------- the async core
def _core_of(app: Any) -> BaseQueueTasks:
    core = getattr(app, "qtasks", app)
    if not isinstance(core, BaseQueueTasks):
        raise TypeError(f"results need a qtasks_compat Celery app (with a .qtasks qtasks app), got {app!r}")
    return core


def _revoked_fields() -> dict[str, str]:
    return encode_fields({"status": "cancel", "celery_state": REVOKED, "exc_type": "TaskRevokedError",
                          "exc_module": "qtasks_compat.exceptions", "exc_args": ["revoked"],
                          "updated_at": repr(time.time())})


async def revoke_records(core: BaseQueueTasks, ids: Sequence[str]) -> list[str]:
    """Mark queued (or retry-waiting) tasks REVOKED; returns the ids marked.

    A revoked queued task is then acknowledged without running (qtasks never runs a task whose record
    is final). Finished and running tasks are left as they are, as on Celery (a running task is not
    interrupted and its end state is stored). Unknown ids are ignored (they stay PENDING).
    """
    storage = core.broker.storage
    marked: list[str] = []
    for task_id in ids:
        record = await storage.get(task_id)
        if record is not None and record.status in ("new", "retry"):
            marked.append(str(task_id))
    if marked:
        fields = _revoked_fields()
        await storage.save_results([(i, fields) for i in marked])
    await _broadcast_revoke(core, [str(i) for i in ids])
    return marked


async def _broadcast_revoke(core: BaseQueueTasks, ids: list[str]) -> None:
    """In Celery's protocol (``qtasks_celery_protocol``) also send Celery's revoke broadcast: a Celery worker
    holding the message (an eta task) or receiving it later reads no record, only its revoked set."""
    import sys

    from qtasks.brokers.multi import MultiQueueBroker

    # Loaded already whenever such a broker exists (and kombu may not be installed otherwise).
    module = sys.modules.get("qtasks.brokers.celery_protocol")
    broker = core.broker
    if isinstance(broker, MultiQueueBroker):
        broker = broker.for_queue(None)
    if module is not None and isinstance(broker, module.CeleryProtocolBroker) and ids:
        await broker.broadcast_revoke(ids)


async def _wait_step(core: BaseQueueTasks, task_id: str, timeout: float, poll: float) -> Record | None:
    """Wait at most ``timeout`` for the task to become ready; returns the latest record read.

    Completions are announced, so most waits end on that news. ``wait_for_change`` answers at once for
    a missing record, one in ``retry`` and an ended one whose Celery state is not ready (an ignored
    result reads PENDING): nothing more will be announced for those, so they are polled every ``poll``.
    """
    storage = core.broker.storage
    loop = asyncio.get_running_loop()
    start = loop.time()
    record = await storage.wait_for_change(task_id, timeout)
    if record is not None and celery_state(record.status, record.extra) in READY_STATES:
        return record
    left = timeout - (loop.time() - start)
    if left > 0:
        await asyncio.sleep(min(poll, left))
    return await storage.get(task_id)


class _ResultReader:
    """The read API shared by AsyncResult and EagerResult; subclasses provide ``_meta()``."""

    id: str
    parent: Any = None

    def _meta(self) -> _Meta:
        raise NotImplementedError

    @property
    def task_id(self) -> str:
        return self.id

    @property
    def state(self) -> str:
        return self._meta().state

    status = state

    @property
    def result(self) -> Any:
        """The return value, the exception instance (FAILURE/RETRY/REVOKED) or a custom state's meta."""
        return self._meta().result

    info = result

    @property
    def traceback(self) -> str | None:
        return self._meta().traceback

    @property
    def date_done(self) -> dt.datetime | None:
        """When the task became ready (UTC), None before."""
        return self._meta().date_done

    @property
    def name(self) -> str | None:
        return self._meta().name

    @property
    def args(self) -> list[Any] | None:
        return self._meta().args

    @property
    def kwargs(self) -> dict[str, Any] | None:
        return self._meta().kwargs

    @property
    def retries(self) -> int | None:
        return self._meta().retries

    @property
    def worker(self) -> str | None:
        return self._meta().worker

    @property
    def queue(self) -> str | None:
        return self._meta().queue

    @property
    def children(self) -> list[Any] | None:
        children = self._meta().children
        if children is None:
            return None
        return [result_from_tuple(c, getattr(self, "_app", None)) for c in children]

    def ready(self) -> bool:
        return self.state in READY_STATES

    def successful(self) -> bool:
        return self.state == SUCCESS

    def failed(self) -> bool:
        return self.state == FAILURE

    def maybe_throw(self, propagate: bool = True, callback: Callable[[str, Any], Any] | None = None) -> Any:
        meta = self._meta()
        if propagate and meta.state in PROPAGATE_STATES and isinstance(meta.result, BaseException):
            raise meta.result
        if callback is not None:
            callback(self.id, meta.result)
        return meta.result

    maybe_reraise = maybe_throw

    def as_tuple(self) -> tuple[Any, None]:
        parent = self.parent
        return (self.id, parent and parent.as_tuple()), None

    def as_list(self) -> list[str]:
        return [self.id, *(self.parent.as_list() if self.parent is not None else [])]

    def then(self, callback: Any, on_error: Any = None, weak: bool = False) -> Any:
        raise unsupported("AsyncResult.then() (promise callbacks)")

    def build_graph(self, *args: Any, **kwargs: Any) -> Any:
        raise unsupported("AsyncResult.build_graph()")

    def __str__(self) -> str:
        return str(self.id)

    def __hash__(self) -> int:
        return hash(self.id)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _ResultReader):
            return other.id == self.id
        if isinstance(other, str):
            return other == self.id
        return NotImplemented

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.id}>"


class AsyncResult(_ResultReader):
    """A task's result, read from its qtasks record; PENDING while there is none."""

    def __init__(self, id: str, backend: Any = None, task_name: str | None = None, app: Any = None,
                 parent: Any = None) -> None:
        if id is None:
            raise ValueError(f"AsyncResult requires valid id, not {type(id)}")
        self.id = str(id)
        # ``backend`` is accepted for Celery's signature; results always come from the app's storage.
        self.backend = backend
        self._app = app
        self.parent = parent
        self._cache: _Meta | None = None
        #: Set for ``ignore_result`` tasks: ``get()`` then returns None at once, as on Celery.
        self.ignored = False

    @property
    def app(self) -> Any:
        """The app given, else the current one (resolved on first use, as Celery's default app)."""
        if self._app is None:
            self._app = local.get_current_app()
        return self._app

    def _core(self) -> BaseQueueTasks:
        return _core_of(self.app)

    def _blocking(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._core()._blocking(coro)

    def _remember(self, record: Record | None) -> _Meta:
        meta = _meta_from_record(record)
        if meta.state in READY_STATES:  # a ready record never changes again: read it once, like Celery
            self._cache = meta
        return meta

    def _meta(self) -> _Meta:
        if self._cache is not None:
            return self._cache
        return self._remember(self._blocking(self._core().broker.storage.get(self.id)))

    def exists(self) -> bool:
        """True when a record exists for this id (a truly pending task, not an unknown or forgotten one)."""
        return self._meta().exists

    def get(self, timeout: float | None = None, propagate: bool = True, interval: float = 0.5,
            no_ack: bool = True, follow_parents: bool = True, callback: Callable[[str, Any], Any] | None = None,
            on_message: Callable[[dict[str, Any]], Any] | None = None, on_interval: Callable[[], Any] | None = None,
            disable_sync_subtasks: bool = True) -> Any:
        """Wait until the task is ready (through RETRY) and return its result, or raise its exception.

        Raises ``qtasks_compat.exceptions.TimeoutError`` after ``timeout`` seconds. ``interval`` is how
        often a missing or retrying record is re-read (finished tasks are announced, not polled);
        ``on_message`` gets every state seen while waiting, ``on_interval`` is called between waits.
        """
        if self.ignored:
            return None
        if disable_sync_subtasks:
            assert_will_not_block()
        if follow_parents and propagate and self.parent is not None:
            self._reraise_parent_error()
        deadline = None if timeout is None else time.monotonic() + max(0.0, float(timeout))
        poll = max(0.01, float(interval))
        meta = self._meta()
        seen: _Meta | None = None
        while True:
            if on_message is not None and meta != seen:
                on_message(meta.as_dict(self.id))
                seen = meta
            if meta.state in READY_STATES:
                break
            left = _WAIT_SLICE if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("The operation timed out.")
            # Celery re-checks the parents every interval: a failed chain step ends the wait on its last step.
            watch_parents = follow_parents and propagate and self.parent is not None
            step = min(left, _WAIT_SLICE, poll if (on_message or on_interval or watch_parents) else _WAIT_SLICE)
            meta = self._remember(self._blocking(_wait_step(self._core(), self.id, step, poll)))
            if on_interval is not None:
                on_interval()
            if watch_parents and meta.state not in READY_STATES:
                self._reraise_parent_error()
        return self.maybe_throw(propagate=propagate, callback=callback)

    wait = get

    def _reraise_parent_error(self) -> None:
        parents = []
        node = self.parent
        while node is not None:
            parents.append(node)
            node = getattr(node, "parent", None)
        for node in reversed(parents):
            node.maybe_throw()

    def forget(self) -> None:
        """Delete the task's record (and its parents'); the id then reads as PENDING."""
        self._cache = None
        if self.parent is not None:
            self.parent.forget()
        self._blocking(self._core().broker.storage.delete([self.id]))

    def revoke(self, connection: Any = None, terminate: bool = False, signal: Any = None, wait: bool = False,
               timeout: float | None = None) -> None:
        """Revoke the task if it has not started yet (see :func:`revoke_records`)."""
        if terminate:
            raise unsupported("revoke(terminate=True) (stopping a running task)")
        self._blocking(revoke_records(self._core(), [self.id]))

    def collect(self, intermediate: bool = False, **kwargs: Any) -> Iterator[tuple[Any, Any]]:
        raise unsupported("AsyncResult.collect()")

    def get_leaf(self) -> Any:
        raise unsupported("AsyncResult.get_leaf()")

    def __copy__(self) -> AsyncResult:
        return type(self)(self.id, self.backend, None, self._app, self.parent)

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.id, None, None, None, self.parent)


class EagerResult(AsyncResult):
    """The result of a task run in this process (``apply()``, ``task_always_eager``): already known."""

    def __init__(self, id: str, ret_value: Any, state: str, traceback: str | None = None,
                 name: str | None = None) -> None:
        super().__init__(id)
        self._result, self._state, self._traceback, self._name = ret_value, state, traceback, name

    def _meta(self) -> _Meta:
        return _Meta(state=self._state, result=self._result, traceback=self._traceback, name=self._name,
                     exists=True)

    def ready(self) -> bool:
        return True

    def get(self, timeout: float | None = None, propagate: bool = True, interval: float = 0.5,
            no_ack: bool = True, follow_parents: bool = True, callback: Callable[[str, Any], Any] | None = None,
            on_message: Callable[[dict[str, Any]], Any] | None = None, on_interval: Callable[[], Any] | None = None,
            disable_sync_subtasks: bool = True) -> Any:
        """The stored value, or raise the stored exception (no waiting: an eager task has ended)."""
        if disable_sync_subtasks:
            assert_will_not_block()
        if self._state in PROPAGATE_STATES and propagate:
            raise self._result if isinstance(self._result, BaseException) else Exception(self._result)
        return self._result

    wait = get

    def forget(self) -> None:
        """Nothing is stored for an eager result."""

    def revoke(self, *args: Any, **kwargs: Any) -> None:
        # What a worker stores for a revoked task (Celery 5.7 does the same for eager results).
        self._state, self._result, self._traceback = REVOKED, TaskRevokedError("revoked"), None

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.id, self._result, self._state, self._traceback, self._name)

    def __copy__(self) -> EagerResult:
        return type(self)(self.id, self._result, self._state, self._traceback, self._name)

    def __repr__(self) -> str:
        return f"<EagerResult: {self.id}>"


class ResultSet:
    """Several results handled together (``join`` returns their values in order)."""

    def __init__(self, results: list[Any] | None, app: Any = None, **kwargs: Any) -> None:
        self.results: list[Any] = list(results or [])
        self._app = app

    @property
    def app(self) -> Any:
        if self._app is None:
            self._app = self.results[0].app if self.results else local.get_current_app()
        return self._app

    def add(self, result: Any) -> None:
        if result not in self.results:
            self.results.append(result)

    def remove(self, result: Any) -> None:
        if isinstance(result, str):
            result = AsyncResult(result, app=self._app)
        try:
            self.results.remove(result)
        except ValueError:
            raise KeyError(result) from None

    def discard(self, result: Any) -> None:
        with contextlib.suppress(KeyError):
            self.remove(result)

    def update(self, results: Sequence[Any]) -> None:
        self.results.extend(r for r in results if r not in self.results)

    def clear(self) -> None:
        self.results[:] = []

    def successful(self) -> bool:
        return all(r.successful() for r in self.results)

    def failed(self) -> bool:
        return any(r.failed() for r in self.results)

    def ready(self) -> bool:
        return all(r.ready() for r in self.results)

    def waiting(self) -> bool:
        return any(not r.ready() for r in self.results)

    def completed_count(self) -> int:
        """How many finished successfully (Celery counts only SUCCESS as complete)."""
        return sum(1 for r in self.results if r.successful())

    def maybe_throw(self, callback: Callable[[str, Any], Any] | None = None, propagate: bool = True) -> None:
        for r in self.results:
            r.maybe_throw(callback=callback, propagate=propagate)

    maybe_reraise = maybe_throw

    def forget(self) -> None:
        for r in self.results:
            r.forget()

    def revoke(self, connection: Any = None, terminate: bool = False, signal: Any = None, wait: bool = False,
               timeout: float | None = None) -> None:
        if terminate:
            raise unsupported("revoke(terminate=True) (stopping a running task)")
        if self.results:
            _core_of(self.app)._blocking(revoke_records(_core_of(self.app), [r.id for r in self.results]))

    def join(self, timeout: float | None = None, propagate: bool = True, interval: float = 0.5,
             callback: Callable[[str, Any], Any] | None = None, no_ack: bool = True, on_message: Any = None,
             disable_sync_subtasks: bool = True, on_interval: Callable[[], Any] | None = None) -> list[Any]:
        """The results' values in order; ``timeout`` bounds the whole join. With ``callback`` each
        ``(id, value)`` goes to it instead and the list is empty."""
        if disable_sync_subtasks:
            assert_will_not_block()
        if on_message is not None:
            raise unsupported("ResultSet.join(on_message=...)")
        start = time.monotonic()
        values = []
        for r in self.results:
            left = None if timeout is None else max(0.0, timeout - (time.monotonic() - start))
            value = r.get(timeout=left, propagate=propagate, interval=interval, no_ack=no_ack,
                          on_interval=on_interval, disable_sync_subtasks=disable_sync_subtasks)
            if callback is not None:
                callback(r.id, value)
            else:
                values.append(value)
        return values

    get = join
    join_native = join

    def then(self, callback: Any, on_error: Any = None, weak: bool = False) -> Any:
        raise unsupported("ResultSet.then() (promise callbacks)")

    def iter_native(self, *args: Any, **kwargs: Any) -> Any:
        raise unsupported("ResultSet.iter_native()")

    @property
    def supports_native_join(self) -> bool:
        return False

    def __iter__(self) -> Iterator[Any]:
        return iter(self.results)

    def __getitem__(self, index: int) -> Any:
        return self.results[index]

    def __len__(self) -> int:
        return len(self.results)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ResultSet):
            return other.results == self.results
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: [{', '.join(r.id for r in self.results)}]>"


class GroupResult(ResultSet):
    """A ResultSet with an id (what ``group(...)()`` returns); ``save``/``restore`` keep it by that id."""

    def __init__(self, id: str | None = None, results: list[Any] | None = None, parent: Any = None,
                 app: Any = None, **kwargs: Any) -> None:
        self.id = id
        self.parent = parent
        super().__init__(results, app=app)

    def _global_config(self, app: Any = None) -> Any:
        gc = _core_of(app or self.app).broker.storage.global_config
        if gc is None:
            raise RuntimeError("GroupResult.save/restore needs a storage with a GlobalConfig")
        return gc

    def save(self, backend: Any = None) -> GroupResult:
        """Store the member ids under the group id (GlobalConfig ``celery_groups``)."""
        if self.id is None:
            raise ValueError("GroupResult.save() needs a group id")
        ids = []
        for r in self.results:
            if not isinstance(r, AsyncResult):
                raise TypeError(f"GroupResult.save() stores task results only, not {r!r}")
            ids.append(r.id)
        _core_of(self.app)._blocking(self._global_config().set(self.id, _GROUPS_KEY, ids))
        return self

    def delete(self, backend: Any = None) -> None:
        """Remove the saved group (its tasks' results stay)."""
        if self.id is not None:
            _core_of(self.app)._blocking(self._global_config()._unset(_GROUPS_KEY, self.id))

    @classmethod
    def restore(cls, id: str, backend: Any = None, app: Any = None) -> GroupResult | None:
        """The group saved under ``id``, or None."""
        app = app if app is not None else local.get_current_app()
        if app is None:
            raise RuntimeError("GroupResult.restore() has no app: pass app=...")
        core = _core_of(app)
        ids = core._blocking(cls(id, [], app=app)._global_config(app).get(_GROUPS_KEY, id))
        if not isinstance(ids, list):
            return None
        return cls(id, [AsyncResult(str(i), app=app) for i in ids], app=app)

    @property
    def children(self) -> list[Any]:
        return self.results

    def as_tuple(self) -> tuple[Any, list[Any]]:
        parent = self.parent
        return (self.id, parent and parent.as_tuple()), [r.as_tuple() for r in self.results]

    def __bool__(self) -> bool:
        return bool(self.id or self.results)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, GroupResult):
            return other.id == self.id and other.results == self.results and other.parent == self.parent
        if isinstance(other, str):
            return other == self.id
        return NotImplemented

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(self.id)

    def __str__(self) -> str:
        return str(self.id)

    def __repr__(self) -> str:
        return f"<GroupResult: {self.id} [{', '.join(r.id for r in self.results)}]>"


def result_from_tuple(r: Any, app: Any = None) -> Any:
    """A result from an id or Celery's ``as_tuple()`` form (as found in ``celery_children``)."""
    if isinstance(r, (_ResultReader, ResultSet)):
        return r
    if isinstance(r, str):
        return AsyncResult(r, app=app)
    res, nodes = r
    task_id, parent = res if isinstance(res, (list, tuple)) else (res, None)
    parent_result = result_from_tuple(parent, app) if parent else None
    if nodes is not None:
        return GroupResult(task_id, [result_from_tuple(c, app) for c in nodes], parent=parent_result, app=app)
    return AsyncResult(task_id, app=app, parent=parent_result)


__all__ = [
    "AsyncResult", "EagerResult", "GroupResult", "ResultSet", "allow_join_result", "assert_will_not_block",
    "celery_state", "denied_join_result", "rebuild_exception", "result_from_tuple", "revoke_records",
    "task_join_will_block",
]
