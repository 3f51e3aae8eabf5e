"""Running a qtasks worker for a Celery app (``app.Worker``, ``app.worker_main``) and ``app.control``.

The worker is an ordinary qtasks :class:`~qtasks.workers.base.AsyncWorker` on the app's
``MultiQueueBroker`` (``-Q a,b`` = the queues it consumes). :class:`CompatWorker` adds what
the Celery execution needs: the Celery node name, the per-worker rate limits, and the
Celery fields (``celery_state``, ``exc_type``, ...) merged into each stored end state.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
from typing import Any

from qtasks.schemas.task_exec import TaskExecSchema, TaskPrioritySchema
from qtasks.workers.base import AsyncWorker
from qtasks_compat.exceptions import unsupported
from qtasks_compat.execution import CompatExecutor, RateLimiter, send_signal

_REGISTERED_KEY = "celery_registered"  # GlobalConfig key: worker id -> JSON list of its task names


def default_nodename() -> str:
    return f"celery@{socket.gethostname()}"


class CompatWorker(AsyncWorker):
    """The qtasks worker of a compat app (built by ``Celery.qtasks``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hostname = default_nodename()
        self.compat_fields: dict[str, dict[str, Any]] = {}
        """uuid -> Celery fields the executor wants stored with the end state."""
        self.rate_limiter = RateLimiter()

    async def _run(self, tb: TaskPrioritySchema) -> dict[str, Any] | None:
        model = await super()._run(tb)
        fields = self.compat_fields.pop(str(tb.uuid), None)
        if model is not None and fields:
            from qtasks.brokers.base import encode_fields
            model.update(encode_fields(fields))
        return model

    async def start(self, num_workers: int = 4) -> None:
        await super().start(num_workers)
        app = getattr(self.app, "compat_app", None)
        gc = self.broker.storage.global_config if self.broker is not None else None
        if app is not None and gc is not None:
            import json
            await gc.set(self.worker_id, _REGISTERED_KEY, json.dumps(sorted(app.tasks)))
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._started_signals)

    def _started_signals(self) -> None:
        send_signal("worker_process_init", None)
        send_signal("worker_ready", self)

    async def stop(self, timeout: float | None = None) -> None:
        await super().stop(timeout)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, lambda: send_signal("worker_shutdown", self))


class Worker:
    """Celery's ``app.Worker(...)``: ``start()`` blocks until ``stop()`` (or SIGINT/SIGTERM)."""

    def __init__(self, app: Any, hostname: str | None = None, queues: list[str] | str | None = None,
                 concurrency: int | None = None, loglevel: Any = None, pool: str | None = None,
                 exclude_queues: list[str] | str | None = None, **kwargs: Any) -> None:
        self.app = app
        self.hostname = hostname or default_nodename()
        self.queues = _names(queues)
        self.exclude_queues = _names(exclude_queues)
        self.concurrency = concurrency
        self.loglevel = loglevel
        self.pool = pool
        self.options = kwargs

    def setup(self) -> Any:
        """Finalize the app, import its task modules and register every task on the qtasks worker."""
        from qtasks_compat.config import worker_queues

        app = self.app
        send_signal("celeryd_init", self.hostname, instance=self, conf=app.conf, options=self.options)
        app.import_default_modules()
        app.finalize()
        core = app.qtasks
        queues = self.queues or worker_queues(app.conf)
        queues = [q for q in queues if q not in self.exclude_queues]
        if not queues:
            raise ValueError("the worker has no queue to consume (every queue was excluded)")
        core.broker.queues = queues
        for q in queues:
            core.broker.for_queue(q)
        if self.concurrency:
            core.config.max_tasks_process = int(self.concurrency)
        core.worker.hostname = self.hostname
        core.worker.worker_id = self.hostname
        for name, task in app.tasks.items():
            if name not in core.tasks:
                core._add_schema(TaskExecSchema(priority=0, name=name, func=task.run, executor=CompatExecutor))
        if self.loglevel:
            level = self.loglevel
            if not isinstance(level, int):
                level = logging.getLevelName(str(level).upper())
            if isinstance(level, int):
                core.config.logs_default_level_server = level
        send_signal("celeryd_after_setup", self.hostname, instance=self, conf=app.conf)
        send_signal("worker_init", self)
        return core

    def start(self) -> None:
        core = self.setup()
        core.run_forever(num_workers=1)

    run = start

    def stop(self) -> None:
        self.app.qtasks.stop()


def _names(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        return [q.strip() for q in value.split(",") if q.strip()]
    return [str(q) for q in value]


def worker_main(app: Any, argv: list[str] | None = None) -> None:
    """``app.worker_main(["worker", "-l", "info", "-Q", "a,b", "-c", "4"])``: a blocking worker."""
    args = list(argv or [])
    if args and args[0] == "worker":
        args = args[1:]
    p = argparse.ArgumentParser(prog="worker", add_help=True)
    p.add_argument("-l", "--loglevel", default="WARNING")
    p.add_argument("-c", "--concurrency", type=int, default=None)
    p.add_argument("-Q", "--queues", default=None)
    p.add_argument("-X", "--exclude-queues", default=None)
    p.add_argument("-n", "--hostname", default=None)
    p.add_argument("-P", "--pool", default=None)
    ns, unknown = p.parse_known_args(args)
    if unknown:
        raise unsupported(f"worker options {' '.join(unknown)} in app.worker_main (use the qtasks-celery command)")
    hostname = ns.hostname.replace("%h", socket.gethostname()) if ns.hostname else None
    Worker(app, hostname=hostname, queues=ns.queues, concurrency=ns.concurrency, loglevel=ns.loglevel,
           pool=ns.pool, exclude_queues=ns.exclude_queues).start()


# ---------------------------------------------------------------------------------------------- control
class Control:
    """``app.control``: revoke, ping, purge and ``inspect()``; other remote-control commands raise."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def revoke(self, task_id: str | list[str], destination: Any = None, terminate: bool = False,
               signal: Any = None, **kwargs: Any) -> None:
        """Mark queued tasks REVOKED: they are acknowledged without running. Running tasks are not stopped."""
        if terminate:
            raise unsupported("revoke(terminate=True) (stopping a running task)")
        from qtasks_compat.app import run_blocking
        from qtasks_compat.result import revoke_records
        ids = [task_id] if isinstance(task_id, str) else [str(i) for i in task_id]
        run_blocking(self.app, revoke_records(self.app.qtasks, ids))

    def ping(self, destination: Any = None, timeout: float = 1.0, **kwargs: Any) -> list[dict[str, Any]]:
        return [{node: reply} for node, reply in (self.inspect(timeout, destination).ping() or {}).items()]

    def inspect(self, timeout: float = 1.0, destination: Any = None, **kwargs: Any) -> Inspect:
        return Inspect(self.app, timeout=timeout, destination=destination)

    def purge(self) -> int:
        """Drop every waiting message of the app's queues; returns how many were dropped."""
        from qtasks_compat.app import run_blocking
        return run_blocking(self.app, _purge(self.app))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise unsupported(f"app.control.{name} (remote control beyond revoke/ping/inspect)")


async def _purge(app: Any) -> int:
    from qtasks_compat.config import worker_queues
    broker = app.qtasks.broker
    total = 0
    for q in {*worker_queues(app.conf), *broker.brokers}:
        b = broker.for_queue(q)
        counts = await b.counts()
        total += (counts.ready or 0) + (counts.delayed or 0)
        await b._purge()
    return total


class Inspect:
    """``app.control.inspect()``: ``ping``, ``active``, ``registered`` (``{nodename: reply}``, None if no worker)."""

    def __init__(self, app: Any, timeout: float = 1.0, destination: Any = None) -> None:
        self.app = app
        self.timeout = timeout
        self.destination = [destination] if isinstance(destination, str) else destination

    def _pick(self, replies: dict[str, Any]) -> dict[str, Any] | None:
        if self.destination:
            replies = {k: v for k, v in replies.items() if k in self.destination}
        return replies or None

    async def _live(self) -> list[str]:
        import time
        core = self.app.qtasks
        gc = core.broker.storage.global_config
        if gc is None:
            return []
        ttl = core.config.global_config_status_ttl
        return [w for w, t in (await gc.workers()).items() if time.time() - t < ttl]

    def ping(self) -> dict[str, Any] | None:
        from qtasks_compat.app import run_blocking
        return self._pick({w: {"ok": "pong"} for w in run_blocking(self.app, self._live())})

    def registered(self, *taskinfoitems: Any) -> dict[str, Any] | None:
        from qtasks_compat.app import run_blocking

        async def read() -> dict[str, Any]:
            import json
            live = await self._live()
            gc = self.app.qtasks.broker.storage.global_config
            names = await gc.get_all(_REGISTERED_KEY) if gc is not None else {}
            return {w: json.loads(names[w]) if isinstance(names.get(w), str) else list(names.get(w) or [])
                    for w in live}

        return self._pick(run_blocking(self.app, read()))

    registered_tasks = registered

    def active(self, safe: Any = None) -> dict[str, Any] | None:
        from qtasks_compat.app import run_blocking

        async def read() -> dict[str, Any]:
            live = await self._live()
            out: dict[str, list[dict[str, Any]]] = {w: [] for w in live}
            for uid, rec in await self.app.qtasks.broker.storage.iter_records():
                worker = rec.get("worker_id")
                if rec.get("status") != "process" or worker not in out:
                    continue
                task = await self.app.qtasks.broker.storage.get(uid)
                if task is None:
                    continue
                out[worker].append({
                    "id": uid, "name": task.task_name, "args": list(task.args), "kwargs": dict(task.kwargs),
                    "type": task.task_name, "hostname": worker, "time_start": task.updated_at.timestamp(),
                    "acknowledged": True, "worker_pid": None,
                    "delivery_info": {"exchange": "", "routing_key": task.extra.get("queue"),
                                      "priority": task.priority, "redelivered": False}})
            return out

        return self._pick(run_blocking(self.app, read()))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise unsupported(f"app.control.inspect().{name} (only ping, active and registered are supported)")


__all__ = ["CompatWorker", "Control", "Inspect", "Worker", "worker_main"]
