"""``BaseBroker``: enqueue, the fetch loop, leases and acknowledgement.

The base class owns the delivery semantics — claim only as many tasks as the
worker has free slots, mark them ``process``, renew the leases of running
tasks, store results *before* acknowledging (at-least-once), dead-letter
malformed messages, back off while the server is unreachable, hand unfinished
tasks back on shutdown. A backend implements the ``_``-prefixed primitives.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import time
import uuid as uuidlib
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import UUID

from qtasks import codec
from qtasks.brokers.message import Message
from qtasks.configs.base import decode_value
from qtasks.configs.config import QueueConfig
from qtasks.exc import MalformedMessageError
from qtasks.logs import Logger
from qtasks.plugins.host import PluginHost
from qtasks.schemas.counts import QueueCounts
from qtasks.schemas.task import Task
from qtasks.storages.base import BaseStorage

if TYPE_CHECKING:
    from qtasks.schemas.task_exec import TaskPrioritySchema
    from qtasks.workers.base import BaseWorker

Handle = str | bytes
"""A backend's token for one delivery (what ``_ack``/``_renew`` take)."""

NOT_MARKED = "!"
"""``Claimed.prev`` when the backend did not set status ``process`` itself (the base class then does)."""


class Claimed(NamedTuple):
    handle: Handle
    payload: str
    prev: str | None = NOT_MARKED
    """The task's status before the claim (None: no record), or NOT_MARKED."""
    error: str | None = None
    """Set when the message could not even be read (e.g. not UTF-8); it is dead-lettered."""


def encode_fields(mapping: dict[str, Any]) -> dict[str, str]:
    """Stored records hold strings: keep text, JSON-encode everything else."""
    return {k: (v if isinstance(v, str) else codec.dumps(v, what=f"field {k!r}")) for k, v in mapping.items()}


class BaseBroker(PluginHost, abc.ABC):
    plugin_component = "broker"
    connection_errors: tuple[type[BaseException], ...] = (ConnectionError, OSError)

    def __init__(self, storage: BaseStorage, name: str | None = None, log: Logger | None = None,
                 config: QueueConfig | None = None, events: Any = None) -> None:
        self.name = name or storage.name
        self.storage = storage
        self.config = config or storage.config
        self.log = (log or Logger(self.name)).with_subname("Broker")
        self.events = events
        self.plugins: dict[str, list[Any]] = {}
        # uuid -> handles of its deliveries in flight (oldest first): a task re-queued under its own id
        # (a Celery-style retry) can be claimed again before the first delivery is acknowledged.
        self._inflight: dict[str, list[Handle]] = {}
        self._done: list[tuple[str, dict[str, Any] | None, asyncio.Future[None]]] = []
        self._done_event: asyncio.Event | None = None
        self._stopping: asyncio.Event | None = None
        self._helpers: list[asyncio.Task[None]] = []
        self._lease_lock: asyncio.Lock | None = None
        self._listening: asyncio.Future[None] | None = None
        self.is_listening = False

    def update_config(self, config: QueueConfig) -> None:
        self.config = config
        self.storage.update_config(config)

    # ------------------------------------------------------------------ client side
    async def add(self, task_name: str, priority: int = 0, extra: dict[str, Any] | None = None,
                  args: tuple[Any, ...] | list[Any] | None = None, kwargs: dict[str, Any] | None = None,
                  *, uuid: UUID | str | None = None, delay: float = 0.0, status: str = "new") -> Task:
        """Store a record (status ``new``, or ``status``) and queue the task; returns that record.

        ``status="retry"`` with the ``uuid`` of a running task re-queues it under its own id (Celery-style
        retries): the record shows ``retry`` until the new delivery starts.
        """
        task_uuid = str(uuid or uuidlib.uuid4())
        args_list = list(args or ())
        kwargs_d = dict(kwargs or {})
        if self.plugins or self.storage.plugins:
            return await self._add_with_plugins(task_uuid, task_name, priority, extra, args_list, kwargs_d, delay,
                                                status)
        args_json = codec.dumps(args_list, what=f"arguments of task {task_name!r}")
        kwargs_json = codec.dumps(kwargs_d, what=f"keyword arguments of task {task_name!r}")
        now = time.time()
        record = {"status": status, "task_name": task_name, "priority": str(priority),
                  "args": args_json, "kwargs": kwargs_json, "created_at": repr(now)}
        extra_json = None
        if extra:
            record.update(encode_fields(extra))
            extra_json = codec.dumps(extra, what=f"extra fields of task {task_name!r}")
        # The message reuses the JSON just validated, so it carries exactly what the record holds.
        msg = Message.from_json_parts(task_uuid, task_name, priority, args_list, args_json, kwargs_d,
                                      kwargs_json, now, extra, extra_json)
        await self._push_new(record, msg, max(0.0, float(delay)))
        created = datetime.fromtimestamp(now)
        return Task(status=status, uuid=UUID(task_uuid), priority=int(priority), task_name=task_name,
                    args=tuple(args_list), kwargs=kwargs_d, created_at=created, updated_at=created,
                    extra={k: v for k, v in (extra or {}).items()})

    async def _add_with_plugins(self, task_uuid: str, task_name: str, priority: int, extra: dict[str, Any] | None,
                                args: list[Any], kwargs: dict[str, Any], delay: float, status: str) -> Task:
        """``add`` when plugins may rewrite the record: the message is rebuilt from what they return."""
        now = time.time()
        record = {"status": status, "task_name": task_name, "priority": str(priority),
                  "args": codec.dumps(args, what=f"arguments of task {task_name!r}"),
                  "kwargs": codec.dumps(kwargs, what=f"keyword arguments of task {task_name!r}"),
                  "created_at": repr(now), **encode_fields(extra or {})}
        record = (await self._plugin_trigger("broker_add_before", broker=self, storage=self.storage,
                                             model=record)).get("model", record)
        got = await self.storage._plugin_trigger("storage_add", storage=self.storage, uuid=task_uuid,
                                                 task_status=record)
        task_uuid, record = str(got.get("uuid", task_uuid)), got.get("task_status", record)
        record = encode_fields(record)
        core = ("status", "task_name", "priority", "args", "kwargs", "created_at")
        # Extra fields travel in the message decoded the way the record stores them.
        extra = {k: decode_value(v) for k, v in record.items() if k not in core} or None
        try:
            msg = Message(uuid=task_uuid, task_name=record["task_name"], priority=int(record["priority"]),
                          args=codec.loads(record["args"]), kwargs=codec.loads(record["kwargs"]),
                          created_at=float(record["created_at"]), extra=extra or {})
        except (KeyError, ValueError) as e:
            raise ValueError(f"a broker_add_before/storage_add plugin returned an unusable record: {e}") from e
        await self._push_new(record, msg, max(0.0, float(delay)))
        await self._plugin_trigger("broker_add_after", broker=self, storage=self.storage, model=record)
        created = datetime.fromtimestamp(msg.created_at)
        return Task(status=str(record["status"]), uuid=UUID(task_uuid), priority=msg.priority, task_name=msg.task_name,
                    args=tuple(msg.args), kwargs=dict(msg.kwargs), created_at=created, updated_at=created,
                    extra=dict(extra or {}))

    async def _push_new(self, record: dict[str, str], msg: Message, delay: float) -> None:
        """Create the record, then queue the message (a backend may do both in one round trip)."""
        await self.storage.add(msg.uuid, record)
        await self._push(msg, delay)

    async def get(self, uuid: UUID | str) -> Task | None:
        task = await self.storage.get(uuid)
        if self.storage.plugins:
            got = await self.storage._plugin_trigger("storage_get", storage=self.storage, result=task)
            task = got.get("result", task)
        if self.plugins:
            task = (await self._plugin_trigger("broker_get", broker=self, task=task)).get("task", task)
        return task

    async def get_all(self) -> list[Task]:
        tasks = await self.storage.get_all()
        if self.storage.plugins:
            got = await self.storage._plugin_trigger("storage_get_all", storage=self.storage, results=tasks)
            tasks = got.get("results", tasks)
        return tasks

    async def update(self, **kwargs: Any) -> None:
        if self.plugins:
            kwargs = (await self._plugin_trigger("broker_update", broker=self, kw=kwargs)).get("kw", kwargs)
        await self.storage.update(**kwargs)

    async def flush_all(self) -> None:
        await self._plugin_trigger("broker_flush_all", broker=self)
        await self._purge()
        await self.storage._plugin_trigger("storage_flush_all", storage=self.storage)
        await self.storage.flush_all()

    # ------------------------------------------------------------------ worker side
    def prepare_listen(self) -> None:
        """Arm the stop signal before ``start`` runs, so a stop during start-up is never lost."""
        self._stopping = asyncio.Event()
        self._listening = asyncio.get_running_loop().create_future()
        self.is_listening = False

    async def start(self, worker: BaseWorker | None = None) -> None:
        """Start storage (which starts the global config), run start-up maintenance, then listen."""
        if worker is not None and self._stopping is None:
            self.prepare_listen()
        try:
            await self._plugin_trigger("broker_start", broker=self, worker=worker)
            await self.storage.start()
            if worker is None:
                return
            await self._startup_maintenance(worker)
        except BaseException:
            if self._listening is not None and not self._listening.done():
                self._listening.set_result(None)
            raise
        await self.listen(worker)

    async def _startup_maintenance(self, worker: BaseWorker) -> None:
        if self.config.delete_finished_tasks and not self._stop_requested():
            n = await self.storage.delete_finished_tasks()
            self.log.info("deleted %d finished task records", n)
        if self.config.running_older_tasks and not self._stop_requested():
            await self.requeue_orphans(worker)

    def _stop_requested(self) -> bool:
        return self._stopping is not None and self._stopping.is_set()

    async def requeue_orphans(self, worker: BaseWorker | None = None) -> int:
        """Queue again the ``new``/``process`` tasks that no queue and no lease holds."""
        await self._plugin_trigger("broker_running_older_tasks", broker=self, worker=worker)
        held = await self._held_uuids()
        n = 0
        for u, rec in await self.storage.unfinished_records():
            if u in held:
                continue
            try:
                msg = Message(uuid=u, task_name=rec["task_name"], priority=int(float(rec.get("priority", 0))),
                              args=codec.loads(rec.get("args") or "[]"),
                              kwargs=codec.loads(rec.get("kwargs") or "{}"),
                              created_at=float(rec.get("created_at") or 0.0))
            except (KeyError, ValueError) as e:
                self.log.warning("cannot requeue orphaned task %s: %s", u, e)
                continue
            if self.storage.plugins:
                kw: dict[str, Any] = {"task_name": msg.task_name, "uuid": u, "priority": msg.priority,
                      "created_at": msg.created_at, "args": msg.args, "kw": msg.kwargs}
                kw.update(await self.storage._plugin_trigger("storage_running_older_tasks", storage=self.storage,
                                                             worker=worker, **kw))
                msg = Message(uuid=u, task_name=kw["task_name"], priority=int(kw["priority"]), args=list(kw["args"]),
                              kwargs=dict(kw["kw"]), created_at=float(kw["created_at"]))
            await self._push(msg, 0.0)
            n += 1
        if n:
            self.log.info("re-queued %d orphaned tasks", n)
        return n

    async def listen(self, worker: BaseWorker) -> None:
        """Fetch loop: claim up to the worker's free slots, hand tasks over, block when idle."""
        if self._stopping is None or self._listening is None or self._listening.done():
            self.prepare_listen()
        assert self._stopping is not None and self._listening is not None
        self._done_event = asyncio.Event()
        self._lease_lock = asyncio.Lock()
        self._helpers = [asyncio.create_task(self._renew_loop(), name="qtasks-lease-renewal"),
                         asyncio.create_task(self._flush_loop(), name="qtasks-result-flush")]
        delay = 0.1
        await self._plugin_trigger("broker_listen_start", broker=self, worker=worker)
        self.is_listening = True
        try:
            while not self._stopping.is_set():
                free = worker.free_slots or await self._race(worker.wait_for_capacity())
                if not free:
                    break
                try:
                    # Brokers sharing a worker (one per queue) claim one at a time, so together they
                    # never hold more tasks than the worker has free slots.
                    async with worker.claim_lock:
                        free = worker.free_slots
                        batch = await self._claim(free, worker.worker_id) if free else []
                        if batch:
                            await self._dispatch(batch, worker)
                    if not free:
                        continue
                    if not batch:
                        await self._race(self._wait(self.config.broker_poll_interval))
                        continue
                    delay = 0.1
                except self.connection_errors as e:
                    self.log.warning("broker unreachable (%s); retrying in %.1fs", e, delay)
                    await self._race(asyncio.sleep(delay))
                    delay = min(delay * 2, self.config.reconnect_max_delay)
                except Exception:
                    # Never let one bad reply end the worker: log it, back off, keep serving.
                    self.log.exception("unexpected error in the fetch loop; retrying in %.1fs", delay)
                    await self._race(asyncio.sleep(delay))
                    delay = min(delay * 2, self.config.reconnect_max_delay)
        finally:
            self.is_listening = False
            if not self._listening.done():
                self._listening.set_result(None)

    async def _race(self, coro: Any) -> Any:
        """Await ``coro`` unless a stop is requested first (then cancel it and return None)."""
        assert self._stopping is not None
        if self._stopping.is_set():
            coro.close()
            return None
        work = asyncio.ensure_future(coro)
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if work.done():
            return work.result()
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError, *self.connection_errors):
            await work
        return None

    async def _dispatch(self, batch: list[Claimed], worker: BaseWorker) -> None:
        good: list[tuple[Handle, Message]] = []
        prev: dict[str, str | None] = {}
        unmarked: list[str] = []
        for c in batch:
            try:
                if c.error:
                    raise MalformedMessageError(c.error)
                msg = Message.decode(c.payload)
            except MalformedMessageError as e:
                self.log.error("malformed message moved to the dead-letter queue: %s: %.200r", e, c.payload)
                await self._dead_letter(c.handle, c.payload, str(e))
                continue
            good.append((c.handle, msg))
            if c.prev == NOT_MARKED:
                unmarked.append(msg.uuid)
            else:
                prev[msg.uuid] = c.prev
        if unmarked:
            prev.update(await self.storage.mark_process(unmarked, worker.worker_id))
        if self.storage.plugins and good:
            await self.storage._plugin_trigger("storage_add_process", storage=self.storage,
                                               uuids=[m.uuid for _, m in good], worker_id=worker.worker_id)
        finished: list[Handle] = []
        for handle, msg in good:
            if self.storage.is_final(prev.get(msg.uuid)):
                # Redelivered after its result was stored (the worker died before acking): done already.
                finished.append(handle)
                continue
            self._inflight.setdefault(msg.uuid, []).append(handle)
            if self.plugins:
                kw: dict[str, Any] = {"task_name": msg.task_name, "uuid": msg.uuid, "priority": msg.priority,
                                      "args": msg.args,
                      "kw": msg.kwargs, "created_at": msg.created_at}
                kw.update(await self._plugin_trigger("broker_add_worker", broker=self, worker=worker, **kw))
                if str(kw["uuid"]) != msg.uuid:  # keep the lease findable under the new id
                    self._take_handle(msg.uuid)
                    self._inflight.setdefault(str(kw["uuid"]), []).append(handle)
                await worker.add(kw["task_name"], kw["uuid"], kw["priority"], kw["created_at"], kw["args"],
                                 kw["kw"], extra=msg.extra)
                continue
            await worker.add(msg.task_name, msg.uuid, msg.priority, msg.created_at, msg.args, msg.kwargs,
                             extra=msg.extra)
        if finished:
            await self._ack(finished)

    async def remove_finished_task(self, task_broker: TaskPrioritySchema, model: dict[str, Any] | None) -> None:
        """Store a task's end state, then acknowledge it; returns once both are durable.

        Completions are batched: one storage write and one ack for everything
        that finished since the last flush.
        """
        if self.plugins and model is not None:
            model = (await self._plugin_trigger("broker_remove_finished_task", broker=self, storage=self.storage,
                                                model=model)).get("model", model)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._done.append((str(task_broker.uuid), model, fut))
        if self._done_event is None:  # used outside listen(): flush inline
            await self._flush_once()
        else:
            self._done_event.set()
        await fut
        if self.storage.plugins and model is not None:
            await self.storage._plugin_trigger("storage_remove_finished_task", storage=self.storage,
                                               task_broker=task_broker, model=model)

    async def _flush_loop(self) -> None:
        assert self._done_event is not None
        while True:
            await self._done_event.wait()
            self._done_event.clear()
            await self._flush_once()

    async def _flush_once(self, give_up_after: float | None = None) -> None:
        batch, self._done = self._done, []
        if not batch:
            return
        delay = 0.1
        deadline = None if give_up_after is None else time.monotonic() + give_up_after
        # A None model (the task was re-queued under its own id) is acknowledged without a write.
        results = [(u, m) for u, m, _ in batch if m is not None]
        handles = [h for h in (self._peek_handle(u, i, batch) for i, (u, _, _) in enumerate(batch)) if h is not None]
        try:
            while True:
                try:
                    # Not while a renewal is in flight: it would count these just-acknowledged leases as lost.
                    async with self._lease_lock or contextlib.nullcontext():
                        lost = await self._finish(results, handles)
                    if lost:
                        self.log.warning("%d leases had expired before the ack (tasks may run twice)", lost)
                    for u, _, _ in batch:
                        self._take_handle(u)
                    break
                except self.connection_errors as e:
                    if deadline is not None and time.monotonic() > deadline:
                        # Not acknowledged, so not lost: delivered again once their leases expire.
                        self.log.error("gave up storing %d results (%s); those tasks will run again", len(batch), e)
                        break
                    # Nothing is dropped: keep the batch and try again once the server is back.
                    self.log.warning("cannot store results (%s); retrying in %.1fs", e, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.config.reconnect_max_delay)
        except asyncio.CancelledError:
            self._done[:0] = batch  # cancelled mid-flush (shutdown): the final flush takes it over
            raise
        for _, _, fut in batch:
            if not fut.done():
                fut.set_result(None)

    def _peek_handle(self, uuid: str, index: int, batch: list[tuple[str, Any, Any]]) -> Handle | None:
        """The handle the ``index``-th entry of ``batch`` acknowledges: the oldest deliveries of a uuid go first."""
        nth = sum(1 for u, _, _ in batch[:index] if u == uuid)
        held = self._inflight.get(uuid, [])
        return held[nth] if nth < len(held) else None

    def _take_handle(self, uuid: str) -> None:
        held = self._inflight.get(uuid)
        if held:
            held.pop(0)
            if not held:
                del self._inflight[uuid]

    async def _finish(self, results: list[tuple[str, dict[str, Any]]], handles: list[Handle]) -> int:
        """Store end states, then acknowledge; both idempotent, so a retry after an outage is safe."""
        await self.storage.save_results(results)
        return await self._ack(handles) if handles else 0

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.lease_timeout / 3)
            if self._lease_lock is None:
                continue
            async with self._lease_lock:
                # Read under the lock: a flush that just acknowledged some handles has removed them.
                handles = [h for hs in self._inflight.values() for h in hs]
                if not handles:
                    continue
                try:
                    lost = await self._renew(handles)
                except self.connection_errors as e:
                    self.log.warning("cannot renew leases (%s)", e)
                    continue
            if lost:
                self.log.warning("%d running tasks lost their lease and may be delivered again", lost)

    async def stop_listening(self) -> None:
        """Stop claiming new tasks; running ones continue."""
        if self._stopping is not None:
            self._stopping.set()
        if self._listening is not None:
            await self._listening
        self._stopping = self._listening = None

    async def stop(self) -> None:
        """Flush pending results, hand back tasks still held, stop storage."""
        await self.stop_delivery()
        await self.storage.stop()

    async def stop_delivery(self) -> None:
        """``stop`` without stopping the storage (brokers that share one storage stop it once)."""
        await self.stop_listening()
        for t in self._helpers:
            t.cancel()
        for t in self._helpers:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._helpers = []
        await self._flush_once(give_up_after=self.config.shutdown_timeout)
        await self._plugin_trigger("broker_stop", broker=self)
        if self._inflight:
            handles = [h for hs in self._inflight.values() for h in hs]
            try:
                await self._requeue(handles)
                for u in self._inflight:
                    await self.storage.update_task(u, {"status": "new", "updated_at": repr(time.time())})
                self.log.info("handed %d unfinished tasks back to the queue", len(handles))
            except self.connection_errors as e:
                self.log.warning("cannot hand back %d tasks (%s); their leases will expire", len(handles), e)
            self._inflight.clear()

    async def check_connection(self) -> None:
        """Raise one of ``connection_errors`` when the server cannot be reached."""

    async def counts(self) -> QueueCounts:
        """Messages ready / delayed / leased / dead-lettered, for ``qtasks.stats``; None where unknown."""
        return QueueCounts()

    # ------------------------------------------------------------------ primitives
    @abc.abstractmethod
    async def _push(self, message: Message, delay: float) -> None:
        """Queue a message (after ``delay`` seconds when > 0), honouring its priority."""

    @abc.abstractmethod
    async def _claim(self, n: int, worker_id: str) -> list[Claimed]:
        """Take up to ``n`` due messages under a lease of ``lease_timeout``; never block."""

    @abc.abstractmethod
    async def _wait(self, timeout: float) -> None:
        """Block until something may be claimable, or ``timeout`` seconds pass."""

    @abc.abstractmethod
    async def _ack(self, handles: list[Handle]) -> int:
        """Forget delivered messages; return how many were no longer leased."""

    @abc.abstractmethod
    async def _renew(self, handles: list[Handle]) -> int:
        """Extend the leases; return how many were already lost."""

    @abc.abstractmethod
    async def _requeue(self, handles: list[Handle]) -> None:
        """Put leased messages back in the queue now."""

    @abc.abstractmethod
    async def _dead_letter(self, handle: Handle, payload: str, reason: str) -> None:
        """Move a message that cannot be processed aside (and release its lease)."""

    @abc.abstractmethod
    async def dead_letters(self) -> list[dict[str, Any]]:
        """Messages moved aside, each ``{"payload": str, "reason": str, "at": float}``."""

    @abc.abstractmethod
    async def _held_uuids(self) -> set[str]:
        """Uuids of every message queued, delayed or leased."""

    @abc.abstractmethod
    async def _purge(self) -> None:
        """Drop every queued message."""
