"""The blocking half of :class:`~qtasks.brokers.kombu.KombuBroker`.

kombu connections and channels are not thread-safe, so one ``_Session`` is
driven from one thread only (the broker's single-worker executor). It owns
the connection, declares the queues, and keeps every message it has handed
out but not yet acknowledged (``handle -> kombu Message``).

Transport differences handled here:

- **priority**: AMQP queues are declared with ``x-max-priority`` and take the
  highest number first; kombu's Redis transport emulates priorities with one
  list per step and takes the *lowest* first; the other transports (memory,
  filesystem, SQS) have none, so each level gets its own queue (a "band") and
  claims take from the most urgent non-empty band first.
- **leases**: on AMQP (and memory/filesystem) an unacked message is held by
  the connection and comes back when it closes, so renewing is a no-op; the
  Redis transport and SQS re-deliver after a visibility timeout, which is set
  from ``lease_timeout`` and pushed forward on renewal.
- **delays**: on AMQP a per-delay queue whose messages expire into the main
  queue (``x-message-ttl`` + dead-letter exchange). The other transports have
  no such thing, so a delayed message goes to a holding queue ``{queue}.delayed``
  with its due time (and qtasks priority) in headers, and consumers move due
  messages into the queue they belong to (``promote_due``); SQS also hides the
  message natively (``DelaySeconds``, at most 900 s) so nobody reads it early.

  Why this design: the message is always somewhere durable — a promotion
  publishes the copy first and acknowledges the held one after, so a crash in
  between duplicates a task (at-least-once, as everywhere) but never loses it.
  And it never spins: the holding queue is read only when a due time this
  process knows of has passed, when the queue's size differs from what the
  last read left (another process added or took messages), or every
  ``DELAY_RESCAN`` seconds as a safety net; otherwise a poll costs one size
  query. A read holds the messages that are not due yet only for that moment
  (they are rejected back; SQS: hidden until about their due time, or
  re-published with a fresh ``DelaySeconds`` when further than that).
"""

from __future__ import annotations

import math
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kombu import Connection, Exchange, Producer, Queue
from kombu.message import Message as KombuMessage

LEVELS = 10
"""Transport priority levels 0..9 (AMQP: higher runs first)."""
DEFAULT_LEVEL = 5
"""Where qtasks priority 0 lands, so both more (negative) and less urgent tasks stay distinct."""
DEAD_SUFFIX = ".dead"
DELAYED_SUFFIX = ".delayed"
ETA_HEADER = "x-qtasks-eta"
"""Due time (epoch seconds) of a message in the holding queue."""
PRIORITY_HEADER = "x-qtasks-priority"
"""qtasks priority of a held message, to route it to its band/level once due."""
DELAY_RESCAN = 30.0
"""Longest a consumer goes without reading a non-empty holding queue (in case a size check missed a change)."""
SQS_MAX_DELAY = 900
"""SQS's limit on a message's DelaySeconds."""


def amqp_level(priority: int) -> int:
    """qtasks priority (lower runs first) -> transport level (higher first), clamped to 0..9.

    qtasks -4 and below -> 9, 0 -> 5, 5 and above -> 0.
    """
    return max(0, min(LEVELS - 1, DEFAULT_LEVEL - int(priority)))


@dataclass
class Held:
    """One delivery handed to the broker and not yet acknowledged."""

    message: KombuMessage
    queue: str


@dataclass
class _Session:
    url: str
    queue: str
    """Main queue name (``{app name}.{queue_name}``)."""
    lease_timeout: float
    transport_options: dict[str, Any] = field(default_factory=dict)
    conn: Connection | None = None
    channel: Any = None
    held: dict[str, Held] = field(default_factory=dict)
    generation: int = 0
    seq: int = 0
    delay_queues: set[str] = field(default_factory=set)
    next_due: float = math.inf
    """Earliest due time seen in the holding queue and not promoted yet (by this process)."""
    delayed_size: int = -1
    """Size of the holding queue after the last read (-1: never read)."""
    last_scan: float = 0.0
    scans: int = 0
    """How many times the holding queue was read (for the tests: polls must not read it each time)."""
    driver: str = ""
    """kombu's transport family: 'amqp', 'redis', 'sqs', 'memory', 'filesystem', ..."""

    def __post_init__(self) -> None:
        self.driver = str(Connection(self.url).transport.driver_type)

    # ------------------------------------------------------------------ connection

    @property
    def native_priority(self) -> bool:
        return self.driver in ("amqp", "redis")

    def options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {}
        if self.driver == "amqp":
            opts.update(confirm_publish=True)  # a publish returns once RabbitMQ has taken the message
        elif self.driver == "redis":
            # One list per level, and a visibility timeout equal to the lease.
            opts.update(priority_steps=list(range(LEVELS)), sep_priorities=":",
                        visibility_timeout=self.lease_timeout)
        elif self.driver == "sqs":
            # Whole seconds only; wait_time_seconds=0 so a claim never blocks.
            opts.update(visibility_timeout=self._sqs_visibility(), wait_time_seconds=0)
        opts.update(self.transport_options)
        if self.driver == "filesystem":
            # kombu needs the folders to exist; one shared folder by default so every process
            # on the machine sees the same queue.
            default = os.path.join(tempfile.gettempdir(), "qtasks-kombu-filesystem")
            for key in ("data_folder_in", "data_folder_out"):
                opts.setdefault(key, default)
                os.makedirs(opts[key], exist_ok=True)
        return opts

    def _sqs_visibility(self) -> int:
        return max(1, math.ceil(self.lease_timeout))

    def connect(self) -> Any:
        if self.conn is None:
            conn = Connection(self.url, transport_options=self.options(), connect_timeout=5)
            try:
                conn.ensure_connection(max_retries=1)
                channel = conn.channel()
                for q in [*self.queue_names(), self.queue + DEAD_SUFFIX, *self.holding_queues()]:
                    self._queue(q).bind(channel).declare()
            except BaseException:
                conn.release()
                raise
            self.conn, self.channel = conn, channel
            self.generation += 1
        return self.channel

    def close(self) -> None:
        """Release the connection; on AMQP the server requeues whatever is still unacked."""
        conn, channel, self.conn, self.channel = self.conn, self.channel, None, None
        if self.driver == "sqs" and channel is not None and self.held:
            # kombu would "restore" SQS deliveries by publishing copies while the originals
            # reappear after their visibility timeout anyway: forget them instead.
            channel.qos._delivered.clear()
        self.held.clear()
        if conn is not None:
            try:
                conn.release()
            except Exception:  # already broken: nothing left to release
                pass

    def connection_errors(self) -> tuple[type[BaseException], ...]:
        conn = self.conn or Connection(self.url)
        return tuple(conn.connection_errors) + tuple(conn.channel_errors)

    # ------------------------------------------------------------------ queues
    def queue_names(self) -> list[str]:
        """Queues to claim from, most urgent first."""
        if self.native_priority:
            return [self.queue]
        return [f"{self.queue}.p{level}" for level in range(LEVELS - 1, -1, -1)]

    def holding_queues(self) -> list[str]:
        """The queue delayed messages wait in ([] on AMQP, whose delay queues expire into the main one)."""
        return [] if self.driver == "amqp" else [self.queue + DELAYED_SUFFIX]

    def _queue(self, name: str) -> Queue:
        args = {"x-max-priority": LEVELS - 1} if self.driver == "amqp" and name == self.queue else None
        return Queue(name, Exchange(""), routing_key=name, durable=True, auto_delete=False,
                     queue_arguments=args)

    def _target(self, priority: int) -> tuple[str, int]:
        """(queue, transport priority) for a qtasks priority."""
        level = amqp_level(priority)
        if self.driver == "amqp":
            return self.queue, level
        if self.driver == "redis":
            return self.queue, LEVELS - 1 - level  # kombu's Redis transport takes the lowest first
        return f"{self.queue}.p{level}", 0

    # ------------------------------------------------------------------ primitives
    def publish(self, body: str, priority: int, delay: float, headers: dict[str, Any] | None = None,
                queue: str | None = None) -> None:
        channel = self.connect()
        target, level = (queue, 0) if queue else self._target(priority)
        routing = target
        if delay > 0 and self.driver == "amqp":
            routing = self._delay_queue(channel, int(delay * 1000))
        elif delay > 0:
            eta = time.time() + delay
            self._publish_held(body.encode("utf-8"), {**(headers or {}), ETA_HEADER: eta,
                                                      PRIORITY_HEADER: int(priority)}, delay)
            self.next_due = min(self.next_due, eta)
            return
        self._send(body.encode("utf-8"), routing, level, headers or {})

    def _send(self, body: bytes, routing: str, level: int, headers: dict[str, Any], **properties: Any) -> None:
        def send() -> None:
            Producer(self.connect()).publish(body, exchange="", routing_key=routing,
                                             content_type="application/json", content_encoding="utf-8",
                                             delivery_mode=2, priority=level, headers=headers, retry=False,
                                             **properties)

        if self.driver == "filesystem":
            _one_per_millisecond(send)
        else:
            send()

    def _publish_held(self, body: bytes, headers: dict[str, Any], delay: float) -> None:
        """Into the holding queue; SQS keeps it invisible for the whole seconds of ``delay`` (up to 900)."""
        props = {"delay_seconds": min(int(delay), SQS_MAX_DELAY)} if self.driver == "sqs" else {}
        self._send(body, self.queue + DELAYED_SUFFIX, 0, headers, **props)

    def promote_due(self) -> int:
        """Move the due messages of the holding queue to their queues; returns how many moved.

        Cheap when nothing can be due: one size query, no read (see the module docstring).
        """
        if self.driver == "amqp":
            return 0
        channel = self.connect()
        name = self.queue + DELAYED_SUFFIX
        size = int(channel._size(name))
        now = time.time()
        if size == 0 or (now < self.next_due and size == self.delayed_size
                         and now - self.last_scan < DELAY_RESCAN):
            self.delayed_size = size
            if size == 0:
                self.next_due = math.inf
            return 0
        self.scans += 1
        taken: list[KombuMessage] = []
        q = self._queue(name).bind(channel)
        while (msg := q.get(no_ack=False)) is not None:
            taken.append(msg)
        moved, next_due = 0, math.inf
        for msg in taken:
            eta, priority = _due_of(msg)
            remaining = eta - now
            body = msg.body if isinstance(msg.body, bytes) else str(msg.body).encode("utf-8")
            headers = {k: v for k, v in (msg.headers or {}).items() if k not in (ETA_HEADER, PRIORITY_HEADER)}
            if remaining <= 0:
                # Publish before acknowledging: a crash in between leaves a duplicate, never a loss.
                target, level = self._target(priority)
                self._send(body, target, level, headers)
                msg.ack()
                moved += 1
            elif self.driver == "sqs" and remaining >= 1:
                # A fresh copy hidden for up to 900 s more (instead of a visibility change, which SQS caps
                # and which would not renew the message's retention period).
                self._publish_held(body, msg.headers or {}, remaining)
                msg.ack()
                next_due = min(next_due, eta)
            else:
                self._put_back(Held(msg, name))
                next_due = min(next_due, eta)
        self.next_due, self.last_scan = next_due, now
        self.delayed_size = int(channel._size(name))
        return moved

    def _put_back(self, held: Held) -> None:
        if self.driver == "sqs":
            self._sqs_visibility_of(held, 0)
            self.channel.qos._quick_ack(held.message.delivery_tag)
        else:
            held.message.reject(requeue=True)

    def _delay_queue(self, channel: Any, ms: int) -> str:
        """A queue holding messages ``ms`` milliseconds, then dead-lettering them into the main queue.

        One queue per delay value, so a long delay never blocks a shorter one behind it
        (RabbitMQ expires messages only at the head of a queue). It deletes itself a
        minute after its last message is due.
        """
        name = f"{self.queue}.delay.{ms}"
        Queue(name, Exchange(""), routing_key=name, durable=True,
              queue_arguments={"x-message-ttl": ms, "x-dead-letter-exchange": "",
                               "x-dead-letter-routing-key": self.queue, "x-expires": ms + 60_000},
              ).bind(channel).declare()
        self.delay_queues.add(name)
        return name

    def claim(self, n: int) -> list[tuple[str, bytes]]:
        """Up to ``n`` messages, unacknowledged, most urgent first; never blocks."""
        channel = self.connect()
        if self.driver == "redis":
            # Timed-out deliveries of dead workers go back to the queue (kombu does this only
            # while draining events, which basic_get never does).
            channel.qos.restore_visible(num=1000, interval=1)
        self.promote_due()
        out: list[tuple[str, bytes]] = []
        for name in self.queue_names():
            while len(out) < n:
                msg = self._queue(name).bind(channel).get(no_ack=False)
                if msg is None:
                    break
                self.seq += 1
                handle = f"{self.generation}.{self.seq}"
                self.held[handle] = Held(msg, name)
                out.append((handle, bytes(msg.body) if not isinstance(msg.body, str)
                            else msg.body.encode("utf-8")))
            if len(out) >= n:
                break
        return out

    def ready(self) -> int:
        """Messages waiting to be claimed (summed over the bands)."""
        channel = self.connect()
        if self.driver == "amqp":
            return sum(int(channel.queue_declare(queue=q, passive=True).message_count) for q in self.queue_names())
        # kombu's virtual transports: a passive declare of an empty Redis queue says "not found".
        self.promote_due()
        return sum(int(channel._size(q)) for q in self.queue_names())

    def ack(self, handles: list[str]) -> int:
        self.connect()
        lost = 0
        for h in handles:
            held = self.held.pop(h, None)
            if held is None:
                lost += 1  # its connection closed since the claim: the server has requeued it
            else:
                held.message.ack()
        return lost

    def renew(self, handles: list[str]) -> int:
        channel = self.connect()
        lost = 0
        now = time.time()
        for h in handles:
            held = self.held.get(h)
            if held is None:
                lost += 1
            elif self.driver == "redis":
                # kombu's Redis transport restores a delivery once its index score is older than
                # the visibility timeout: move the score forward (XX: only while still unacked).
                tag = held.message.delivery_tag
                with channel.conn_or_acquire() as client:
                    if not client.zadd(channel.qos.unacked_index_key, {tag: now}, xx=True, ch=True) \
                            and client.zscore(channel.qos.unacked_index_key, tag) is None:
                        lost += 1
            elif self.driver == "sqs":
                self._sqs_visibility_of(held, self._sqs_visibility())
        return lost

    def _sqs_visibility_of(self, held: Held, seconds: int) -> None:
        info = held.message.delivery_info
        self.channel.sqs(queue=held.queue).change_message_visibility(
            QueueUrl=info["sqs_queue"], ReceiptHandle=info["sqs_message"]["ReceiptHandle"],
            VisibilityTimeout=seconds)

    def requeue(self, handles: list[str]) -> None:
        self.connect()
        for h in handles:
            held = self.held.pop(h, None)
            if held is None:
                continue
            # On SQS kombu's reject(requeue=True) would publish a copy while the original stays
            # invisible (a duplicate later); making the original visible now is the requeue.
            self._put_back(held)

    def dead_letter(self, handle: str, payload: str, reason: str) -> None:
        self.publish(payload, 0, 0.0, headers={"x-qtasks-reason": reason, "x-qtasks-at": time.time()},
                     queue=self.queue + DEAD_SUFFIX)
        held = self.held.pop(handle, None)
        if held is not None:
            held.message.ack()

    def browse(self, names: list[str]) -> list[KombuMessage]:
        """Every message in ``names``, read and put back (the queues keep them)."""
        channel = self.connect()
        seen: list[tuple[str, KombuMessage]] = []
        for name in names:
            while (msg := self._queue(name).bind(channel).get(no_ack=False)) is not None:
                seen.append((name, msg))
        for name, msg in seen:
            self._put_back(Held(msg, name))
        return [m for _, m in seen]

    def dead_letters(self) -> list[dict[str, Any]]:
        out = []
        for m in self.browse([self.queue + DEAD_SUFFIX]):
            headers = m.headers or {}
            out.append({"payload": _text(m.body), "reason": str(headers.get("x-qtasks-reason", "")),
                        "at": float(headers.get("x-qtasks-at", 0.0))})
        return out

    def held_bodies(self) -> list[str]:
        """Bodies of every message queued, delayed (queues known to this process) or held here."""
        names = self.queue_names() + self.holding_queues() + sorted(self.delay_queues)
        return [_text(m.body) for m in self.browse(names)] + [_text(h.message.body) for h in self.held.values()]

    def purge(self) -> None:
        channel = self.connect()
        for name in [*self.queue_names(), self.queue + DEAD_SUFFIX, *self.holding_queues(),
                     *sorted(self.delay_queues)]:
            self._queue(name).bind(channel).purge()
        self.next_due, self.delayed_size = math.inf, -1
        for held in self.held.values():  # dropped too: acknowledged, so nothing restores them later
            held.message.ack()
        self.held.clear()


def _due_of(msg: KombuMessage) -> tuple[float, int]:
    """(due time, qtasks priority) of a held message; a message without readable headers is due now
    (it then meets the usual checks, e.g. dead-lettering, in the main queue)."""
    headers = msg.headers or {}
    try:
        eta = float(headers[ETA_HEADER])
    except (KeyError, TypeError, ValueError):
        eta = 0.0
    try:
        priority = int(headers.get(PRIORITY_HEADER, 0))
    except (TypeError, ValueError):
        priority = 0
    return eta, priority


def _text(body: Any) -> str:
    return body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)


_FS_LOCK = threading.Lock()
_fs_last_ms = 0


def _one_per_millisecond(send: Callable[[], None]) -> None:
    """Run ``send`` in a later millisecond than the previous one of this process.

    kombu's filesystem transport names a message file by the millisecond and then a random uuid, so two
    messages of one millisecond come back in random order; one per millisecond keeps FIFO among equals.
    """
    global _fs_last_ms
    with _FS_LOCK:
        while round(time.monotonic() * 1000) <= _fs_last_ms:
            time.sleep(0.0002)
        send()
        _fs_last_ms = round(time.monotonic() * 1000)

