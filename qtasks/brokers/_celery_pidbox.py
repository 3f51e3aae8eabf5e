"""Celery's remote-control mailbox (the "pidbox"), for revokes across engines.

``app.control.revoke(id)`` on a Celery client is a broadcast on the fanout exchange ``celery.pidbox``
(on Redis a ``PUBLISH`` to ``/{db}.celery.pidbox``), body ``{method: "revoke", arguments: {task_id,
terminate, signal}, destination, pattern, matcher}``, headers ``{clock, expires}``; each worker consumes it
from its own queue ``<nodename>.celery.pidbox``. kombu's :class:`~kombu.pidbox.Mailbox` is what Celery
itself uses for both ends, so it is used here too, with Celery's settings: the wire format is kombu's own.

- :class:`RevokeListener`: a thread consuming this worker's pidbox queue. A ``revoke`` adds the ids to an
  in-memory revoked set (as a Celery worker's, kept ``REVOKE_EXPIRES`` seconds, at most ``REVOKES_MAX``
  ids) and calls back so the worker can store REVOKED; ``ping`` is answered (``celery inspect ping`` lists
  the node). Other commands are ignored (a Celery client's ``inspect`` simply gets no reply from us).
- :func:`broadcast_revoke`: what a Celery client sends, for Celery workers to never run the ids.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from kombu import Connection
from kombu.pidbox import Mailbox

from qtasks.logs import Logger

NAMESPACE = "celery"
"""Celery's ``control_exchange``: the exchange is ``celery.pidbox``."""
QUEUE_TTL = 300.0
QUEUE_EXPIRES = 10.0
"""Celery's ``control_queue_ttl`` / ``control_queue_expires`` (the node queue's ``x-message-ttl``/``x-expires``)."""
BROADCAST_TIMEOUT = 1.0
"""Celery's ``Control.broadcast`` timeout: the ``expires`` header is now + this; workers drop older commands."""
REVOKES_MAX = 50000
REVOKE_EXPIRES = 10800.0
"""Celery's ``CELERY_WORKER_REVOKES_MAX`` / ``CELERY_WORKER_REVOKE_EXPIRES`` defaults."""


def mailbox() -> Mailbox:
    """The mailbox as a Celery 5.7 app builds it (``Control.Mailbox``) with default settings."""
    return Mailbox(NAMESPACE, type="fanout", accept=["json"], serializer="json", queue_ttl=QUEUE_TTL,
                   reply_queue_ttl=QUEUE_TTL, queue_expires=QUEUE_EXPIRES, reply_queue_expires=QUEUE_EXPIRES)


def broadcast_revoke(url: str, task_ids: list[str], *, transport_options: dict[str, Any] | None = None,
                     destination: list[str] | None = None) -> None:
    """Send Celery's ``revoke`` broadcast for ``task_ids`` (blocking; run it off the event loop)."""
    if not task_ids:
        return
    ids: str | list[str] = task_ids[0] if len(task_ids) == 1 else list(task_ids)
    with Connection(url, transport_options=transport_options or {}) as conn:
        mailbox()(conn)._broadcast("revoke", {"task_id": ids, "terminate": False, "signal": "SIGTERM"},
                                   destination=destination, timeout=BROADCAST_TIMEOUT)


class RevokedSet:
    """Revoked ids with Celery's bounds (oldest dropped first); safe to use from two threads."""

    def __init__(self, maxlen: int = REVOKES_MAX, expires: float = REVOKE_EXPIRES) -> None:
        self.maxlen, self.expires = maxlen, expires
        self._ids: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, ids: Iterable[str]) -> None:
        now = time.monotonic()
        with self._lock:
            for i in ids:
                self._ids.pop(i, None)
                self._ids[i] = now
            while len(self._ids) > self.maxlen:
                self._ids.popitem(last=False)

    def __contains__(self, task_id: object) -> bool:
        with self._lock:
            at = self._ids.get(str(task_id))
            if at is None:
                return False
            if time.monotonic() - at > self.expires:
                del self._ids[str(task_id)]
                return False
            return True


def node_name(queue: str) -> str:
    """This process's node name (Celery's ``name@host``; the pidbox queue is ``<node>.celery.pidbox``)."""
    return f"qtasks.{queue}.{os.getpid()}@{socket.gethostname()}"


class RevokeListener:
    """Consume this worker's pidbox queue in a daemon thread (see the module docstring)."""

    def __init__(self, url: str, hostname: str, on_revoke: Callable[[list[str]], None], log: Logger,
                 transport_options: dict[str, Any] | None = None) -> None:
        self.url, self.hostname, self.on_revoke, self.log = url, hostname, on_revoke, log
        self.transport_options = dict(transport_options or {})
        self.revoked = RevokedSet()
        self.ready = threading.Event()
        """Set once the node consumes (on Redis: subscribed), so a broadcast sent after it is received."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True, name=f"qtasks-pidbox-{self.hostname}")
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    # -- the thread
    def _run(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                with Connection(self.url, transport_options=self.transport_options) as conn:
                    channel = conn.channel()
                    node = mailbox()(conn).Node(self.hostname, channel=channel,
                                                handlers={"revoke": self._revoke, "ping": _ping})
                    node.listen(callback=functools.partial(self._on_message, node))
                    while not self._stop.is_set():
                        try:
                            conn.drain_events(timeout=0.5)
                        except TimeoutError:
                            pass
                        self.ready.set()  # the first drain subscribed (Redis) / the queue is bound (AMQP)
                        delay = 0.5
            except Exception as e:  # a lost connection: reconnect with back-off, never die
                self.ready.clear()
                if self._stop.is_set():
                    return
                self.log.warning("Celery remote-control mailbox %s: %s; reconnecting in %.1fs",
                                 self.hostname, e, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)

    def _on_message(self, node: Any, body: Any, message: Any) -> None:
        if not isinstance(body, dict) or body.get("method") not in node.handlers:
            return
        expires = (message.headers or {}).get("expires") if message is not None else None
        if isinstance(expires, (int, float)) and expires and time.time() > expires:
            self.log.info("discarded expired remote-control command %r", body.get("method"))
            return
        node.handle_message(body, message)

    def _revoke(self, state: Any, task_id: Any = None, terminate: bool = False, signal: Any = None,
                **kwargs: Any) -> dict[str, str]:
        ids = [str(i) for i in (task_id if isinstance(task_id, (list, tuple, set)) else [task_id]) if i]
        if not ids:
            return {"ok": "no task id"}
        self.revoked.add(ids)
        if terminate:
            self.log.warning("revoke(terminate=True) of %s: qtasks does not stop a running task; it only "
                             "never starts a revoked one", ", ".join(ids))
        self.log.info("Tasks flagged as revoked: %s", ", ".join(ids))
        try:
            self.on_revoke(ids)
        except Exception:
            self.log.exception("storing REVOKED for %s failed", ", ".join(ids))
        return {"ok": f"tasks {', '.join(ids)} flagged as revoked"}


def _ping(state: Any, **kwargs: Any) -> dict[str, str]:
    return {"ok": "pong"}
