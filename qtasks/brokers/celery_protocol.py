"""A kombu broker that speaks Celery's task protocol on a named Celery queue.

Run side by side with Celery during a migration: an unchanged Celery client's
``delay``/``send_task`` to queue ``Q`` reaches a qtasks worker, and a qtasks
app publishes messages an unchanged Celery worker executes::

    from qtasks import QueueTasks
    from qtasks.brokers.celery_protocol import CeleryProtocolBroker

    app = QueueTasks(broker=CeleryProtocolBroker("redis://localhost:6379/0", queue="qtasks", storage=...))
    app = QueueTasks(broker_url="celery+redis://localhost:6379/0?queue=qtasks", storage_url=...)
    app = QueueTasks(broker_url="celery+amqp://guest:guest@localhost//?queue=qtasks", storage_url=...)

The queue is declared the way Celery declares it (a durable queue bound to a
direct exchange of the same name; on Redis kombu's default priority steps and
separator, and Celery's one-hour visibility timeout, since kombu's ``unacked``
bookkeeping is shared by every consumer of the Redis DB). Messages are
published through kombu's ``Producer`` so the Redis envelope and the AMQP
headers/properties are kombu's own.

Consuming, each message is checked before it reaches the worker:

- unreadable (not JSON, not UTF-8, other content types such as pickle, a v2
  body that is not ``[args, kwargs, embed]``, no task name or id): moved to
  ``{queue}.dead`` unchanged, with a log line; the worker carries on;
- ``expires`` passed: not run, stored as ``cancel`` (reason ``expired``);
- a task this worker does not have: ``unknown_tasks="dead-letter"`` (default)
  moves it to ``{queue}.dead``; ``"requeue"`` puts it back after
  ``unknown_backoff`` seconds (a qtasks worker that knows it takes it then);
- ``eta``/``countdown`` in the future: put back to wait out the delay (Redis:
  the holding queue ``{queue}.delayed``; AMQP: TTL queues that expire back into
  the queue), so it holds no worker slot and is never run early.

Acknowledged only after the result is stored (acks-late, as KombuBroker).
"""

from __future__ import annotations

import asyncio
import time
import uuid as uuidlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from kombu import Exchange, Queue

from qtasks import codec
from qtasks.brokers import _celery_pidbox as pidbox
from qtasks.brokers import _celery_wire as wire
from qtasks.brokers._kombu_session import DEAD_SUFFIX, _Session, _text
from qtasks.brokers.base import Claimed, Handle, encode_fields
from qtasks.brokers.kombu import KombuBroker
from qtasks.brokers.message import Message
from qtasks.configs.config import QueueConfig
from qtasks.exc import MalformedMessageError
from qtasks.logs import Logger
from qtasks.schemas.task import Task
from qtasks.storages.base import BaseStorage

if TYPE_CHECKING:
    from kombu.message import Message as KombuMessage

    from qtasks.workers.base import BaseWorker

UnknownTasks = Literal["dead-letter", "requeue"]
CELERY_VISIBILITY_TIMEOUT = 3600.0
"""Celery's Redis ``visibility_timeout``: every consumer of a Redis DB restores ``unacked`` entries older than
its own value, so ours must not be shorter than the Celery workers' (or we would re-queue their ETA tasks)."""
AMQP_DELAY_STEPS = (3600, 900, 300, 60, 30, 10, 5, 2, 1)
"""A not-yet-due message waits in the TTL queue of the largest step not past its due time, then is checked again:
a handful of queues serve every ETA (one queue per distinct delay would pile up)."""


URL_OPTIONS = ("queue", "max_priority")
"""Query options of a ``celery+...`` URL that are ours (the rest of the query goes to kombu)."""


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """``celery+redis://h/0?queue=q&max_priority=9`` -> (``redis://h/0``, ``{"queue": "q", "max_priority": "9"}``)."""
    if url.startswith("celery+"):
        url = url[len("celery+"):]
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in URL_OPTIONS}
    rest = urlencode([(k, v) for k, v in query if k not in URL_OPTIONS])
    return urlunsplit(parts._replace(query=rest)), ours


@dataclass
class Raw:
    """One received message as the kombu thread read it."""

    handle: str
    body: bytes
    content_type: str | None
    content_encoding: str | None
    headers: Any
    properties: dict[str, Any]


@dataclass
class _CelerySession(_Session):
    """The kombu session with Celery's queue layout (one queue, named exactly, no priority bands)."""

    max_priority: int | None = None

    def options(self) -> dict[str, Any]:
        opts = super().options()
        if self.driver == "redis":
            # kombu's defaults are Celery's: priority steps [0, 3, 6, 9] and the '\x06\x16' separator.
            for key in ("priority_steps", "sep_priorities"):
                if key not in self.transport_options:
                    opts.pop(key, None)
            opts["visibility_timeout"] = self.transport_options.get("visibility_timeout", CELERY_VISIBILITY_TIMEOUT)
        return opts

    def queue_names(self) -> list[str]:
        return [self.queue]

    def _queue(self, name: str) -> Queue:
        if name != self.queue:
            return super()._queue(name)
        # As Celery declares it (a different x-max-priority makes RabbitMQ refuse the declaration).
        return Queue(name, Exchange(name, "direct"), routing_key=name, durable=True, auto_delete=False,
                     max_priority=self.max_priority)

    def _target(self, priority: int) -> tuple[str, int]:
        return self.queue, max(0, min(255, int(priority)))

    def claim_raw(self, n: int) -> list[Raw]:
        out = []
        for handle, body in self.claim(n):
            m = self.held[handle].message
            out.append(Raw(handle, body, m.content_type, m.content_encoding, m.headers, dict(m.properties or {})))
        return out

    def publish_celery(self, out: wire.Outgoing) -> None:
        self._send(out.body, self.queue, out.priority, out.headers, **out.properties)

    def defer(self, handle: str, delay: float) -> None:
        """Put a held (JSON) message back so it is seen again in ``delay`` seconds; copy first, then ack."""
        held = self.held.pop(handle, None)
        if held is None:
            return
        m = held.message
        if self.driver == "amqp":
            delay = next((s for s in AMQP_DELAY_STEPS if s <= delay), 1)
        self.publish(_text(m.body), int((m.properties or {}).get("priority") or 0), max(delay, 0.001),
                     headers=dict(m.headers or {}))
        m.ack()

    def dead_letter(self, handle: str, payload: str, reason: str) -> None:
        """Move the message to ``{queue}.dead`` as it came (body, content type, headers) plus the reason."""
        held = self.held.pop(handle, None)
        if held is None:
            return super().dead_letter(handle, payload, reason)
        m = held.message
        headers = m.headers if isinstance(m.headers, dict) else {}
        body = m.body if isinstance(m.body, bytes) else str(m.body).encode("utf-8")
        from kombu import Producer
        Producer(self.connect()).publish(
            body, exchange="", routing_key=self.queue + DEAD_SUFFIX, content_type=m.content_type or "application/data",
            content_encoding=m.content_encoding or "binary", delivery_mode=2, retry=False,
            headers={**headers, "x-qtasks-reason": reason, "x-qtasks-at": time.time()})
        m.ack()

    def held_ids(self) -> set[str]:
        names = self.queue_names() + self.holding_queues() + sorted(self.delay_queues)
        messages: list[KombuMessage] = self.browse(names) + [h.message for h in self.held.values()]
        return {str(m.headers["id"]) for m in messages if isinstance(m.headers, dict) and m.headers.get("id")}


class CeleryProtocolBroker(KombuBroker):
    """Consume and publish Celery protocol-v2 task messages on one Celery queue (see the module docstring)."""

    _session: _CelerySession

    def __init__(self, url: str | None = None, queue: str | None = None, storage: BaseStorage | None = None, *,
                 name: str = "QueueTasks", log: Logger | None = None, config: QueueConfig | None = None,
                 events: Any = None, queue_name: str | None = None, transport_options: dict[str, Any] | None = None,
                 unknown_tasks: UnknownTasks = "dead-letter", unknown_backoff: float = 10.0,
                 max_priority: int | None = None, remote_control: bool = True) -> None:
        if unknown_tasks not in ("dead-letter", "requeue"):
            raise ValueError(f"unknown_tasks must be 'dead-letter' or 'requeue', got {unknown_tasks!r}")
        if unknown_backoff <= 0:
            raise ValueError(f"unknown_backoff must be seconds > 0, got {unknown_backoff!r}")
        plain, opts = split_url(url or self.default_url())
        celery_queue = queue or queue_name or opts.get("queue") or "celery"
        if max_priority is None and opts.get("max_priority"):
            max_priority = _max_priority(opts["max_priority"])
        elif max_priority is not None:
            max_priority = _max_priority(max_priority)
        super().__init__(name=name, url=plain, storage=storage, log=log, config=config, events=events,
                         queue_name=celery_queue, transport_options=transport_options)
        self._session = _CelerySession(plain, celery_queue, self.config.lease_timeout, self.transport_options,
                                       max_priority=max_priority)
        self.celery_queue = celery_queue
        self.unknown_tasks: UnknownTasks = unknown_tasks
        self.unknown_backoff = float(unknown_backoff)
        # Celery's reply_to is the client app's stable id (used by the rpc:// backend only).
        self.reply_to = str(uuidlib.uuid5(uuidlib.NAMESPACE_OID, f"qtasks:{name}"))
        self._worker: BaseWorker | None = None
        self.remote_control = remote_control
        self.pidbox: pidbox.RevokeListener | None = None
        """While listening (``remote_control=True``): this worker's Celery mailbox, with the revoked ids."""

    @classmethod
    def default_url(cls) -> str:
        return "redis://localhost:6379/0"

    # ------------------------------------------------------------------ publishing
    async def _push(self, message: Message, delay: float) -> None:
        # The delay travels as the eta header (as with Celery): whoever consumes the queue waits it out.
        out = wire.build(message.task_name, message.uuid, message.args, message.kwargs, message.extra,
                         priority=message.priority, delay=delay, created_at=message.created_at,
                         reply_to=self.reply_to)
        await self._call(self._session.publish_celery, out)

    async def send_task(self, name: str, args: list[Any] | tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None,
                        *, task_id: str | None = None, countdown: float | None = None, eta: Any = None,
                        expires: Any = None, priority: int = 0, retries: int = 0, link: Any = None,
                        link_error: Any = None, chain: Any = None, headers: dict[str, Any] | None = None,
                        **fields: Any) -> Task:
        """``apply_async`` for native apps: queue ``name`` with Celery's per-message options.

        ``eta``/``expires`` take a datetime, ISO-8601 text or (``expires``) seconds from now; ``link``,
        ``link_error`` and ``chain`` (the next steps, in the order they run) take Celery signature dicts
        (:func:`qtasks.brokers._celery_wire.signature`);
        ``fields`` are further protocol fields (``root_id``, ``parent_id``, ``group_id``, ``time_limit``, ...).
        """
        now = datetime.now(timezone.utc)
        when = wire._abs_time(eta, now, "eta")
        if when is None and countdown:
            when = now + timedelta(seconds=float(countdown))
        until = wire._abs_time(expires, now, "expires")
        unknown = sorted(set(fields) - wire.CELERY_EXTRA)
        if unknown:
            raise TypeError(f"send_task() got unknown Celery options: {', '.join(unknown)}")
        extra = {"retries": retries, "eta": when.isoformat() if when else None,
                 "expires": until.isoformat() if until else None, "link": link, "link_error": link_error,
                 "chain": chain, "headers": headers, **fields}
        extra = {k: v for k, v in extra.items() if v is not None}
        return await self.add(name, priority, extra, list(args), dict(kwargs or {}), uuid=task_id)

    # ------------------------------------------------------------------ consuming
    async def listen(self, worker: BaseWorker) -> None:
        self._worker = worker  # to tell the tasks it has from the ones it must not swallow
        if self.remote_control and self.pidbox is None:
            loop = asyncio.get_running_loop()

            def on_revoke(ids: list[str]) -> None:  # in the mailbox thread
                asyncio.run_coroutine_threadsafe(self._store_revoked(ids), loop).result(30)

            self.pidbox = pidbox.RevokeListener(self._session.url, pidbox.node_name(self.celery_queue), on_revoke,
                                                self.log, self.transport_options)
            self.pidbox.start()
        try:
            await super().listen(worker)
        finally:
            listener, self.pidbox = self.pidbox, None
            if listener is not None:
                await asyncio.to_thread(listener.stop)

    async def broadcast_revoke(self, task_ids: list[str]) -> None:
        """Celery's ``revoke`` broadcast: Celery workers (and qtasks workers on Celery queues) never run these."""
        await asyncio.to_thread(pidbox.broadcast_revoke, self._session.url, [str(i) for i in task_ids],
                                transport_options=self.transport_options)

    async def _store_revoked(self, ids: list[str]) -> None:
        """Store REVOKED as a Celery worker does on a revoke: unless the task started or ended already."""
        now = repr(time.time())
        todo = []
        for task_id in ids:
            rec = await self.storage.get(task_id)
            if rec is None or rec.status in ("new", "retry"):
                todo.append((task_id, {"status": "cancel", "cancel_reason": "revoked", "updated_at": now}))
        if todo:
            await self.storage.save_results(todo)

    async def _claim(self, n: int, worker_id: str) -> list[Claimed]:
        out: list[Claimed] = []
        for raw in await self._call(self._session.claim_raw, n):
            try:
                d = wire.parse(raw.body, raw.content_type, raw.content_encoding, raw.headers, raw.properties,
                               self.celery_queue)
            except MalformedMessageError as e:
                self.log.error("unreadable message on Celery queue %r moved to %r: %s (headers %.300r)",
                               self.celery_queue, self.celery_queue + DEAD_SUFFIX, e, raw.headers)
                await self._dead_letter(raw.handle, _text(raw.body), str(e))
                continue
            now = datetime.now(timezone.utc)
            if self.pidbox is not None and d.id in self.pidbox.revoked:
                await self._discard(raw.handle, d, "revoked")
            elif d.expires is not None and d.expires <= now:
                await self._expire(raw.handle, d)
            elif not self._knows(d.task):
                await self._unknown(raw.handle, d)
            elif d.eta is not None and d.eta > now:
                await self._call(self._session.defer, raw.handle, (d.eta - now).total_seconds())
            else:
                msg = Message(uuid=d.id, task_name=d.task, priority=d.priority, args=d.args, kwargs=d.kwargs,
                              created_at=d.created_at, extra=d.extra)
                await self._write_record(msg)
                out.append(Claimed(raw.handle, msg.encode()))
        return out

    def _knows(self, task: str) -> bool:
        return self._worker is None or task in self._worker._tasks

    async def _write_record(self, msg: Message) -> None:
        """Fill the task's record (a Celery client wrote none) without touching its status: a redelivery of a
        finished task is then recognised as finished and not run again."""
        await self.storage.update_task(msg.uuid, {
            "task_name": msg.task_name, "priority": str(msg.priority), "args": codec.dumps(msg.args),
            "kwargs": codec.dumps(msg.kwargs), "created_at": repr(msg.created_at), **encode_fields(msg.extra)})

    async def _expire(self, handle: Handle, d: wire.Delivery) -> None:
        self.log.info("task %s[%s] expired at %s: not run (revoked)", d.task, d.id, d.extra.get("expires"))
        await self._discard(handle, d, "expired")

    async def _discard(self, handle: Handle, d: wire.Delivery, reason: str) -> None:
        """Acknowledge without running; the task is stored REVOKED (``cancel``)."""
        if reason != "expired":
            self.log.info("Discarding revoked task: %s[%s]", d.task, d.id)
        msg = Message(uuid=d.id, task_name=d.task, priority=d.priority, args=d.args, kwargs=d.kwargs,
                      created_at=d.created_at, extra=d.extra)
        await self._write_record(msg)
        await self._finish([(d.id, {"status": "cancel", "cancel_reason": reason,
                                    "updated_at": repr(time.time())})], [handle])

    async def _unknown(self, handle: Handle, d: wire.Delivery) -> None:
        if self.unknown_tasks == "requeue":
            self.log.warning("task %r [%s] is not registered on this worker: put back on Celery queue %r for "
                             "%.0fs", d.task, d.id, self.celery_queue, self.unknown_backoff)
            await self._call(self._session.defer, handle, self.unknown_backoff)
            return
        self.log.error("task %r [%s] is not registered on this worker: moved from Celery queue %r to %r",
                       d.task, d.id, self.celery_queue, self.celery_queue + DEAD_SUFFIX)
        await self._call(self._session.dead_letter, str(handle), "", f"unknown task {d.task!r}")

    async def _held_uuids(self) -> set[str]:
        return await self._call(self._session.held_ids)


def _max_priority(value: Any) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = -1
    if isinstance(value, bool) or not 1 <= n <= 255:
        raise ValueError(f"max_priority must be an int from 1 to 255 (AMQP x-max-priority), got {value!r}")
    return n


class SyncCeleryProtocolBroker(CeleryProtocolBroker):
    """Celery-protocol broker for sync apps (same implementation as the async name)."""


class AsyncCeleryProtocolBroker(CeleryProtocolBroker):
    """Celery-protocol broker for async apps (same implementation as the sync name)."""
