"""The ``Celery`` app: configuration, the task registry and THE publishing path (``send_task``).

Everything Celery-side is plain Python here; the queueing is done by ``app.qtasks``, an async
qtasks app built lazily from ``conf`` on a :class:`~qtasks.brokers.multi.MultiQueueBroker`
(one qtasks queue per Celery queue name, one storage).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import os
import socket
import threading
import warnings
import weakref
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from qtasks.portal import Portal, call_in_loop
from qtasks_compat.exceptions import AlwaysEagerIgnored, CompatWarning, NotRegistered, unsupported
from qtasks_compat.local import get_current_app, get_current_worker_task, set_current_app, set_default_app
from qtasks_compat.task import Task as TaskBase
from qtasks_compat.task import add_autoretry_behaviour, gen_task_name, shared_tasks

T = TypeVar("T")

_apps: weakref.WeakSet[Celery] = weakref.WeakSet()

# apply_async/send_task options accepted for Celery's signature but without effect on qtasks.
IGNORED_OPTIONS = frozenset({
    "producer", "connection", "publisher", "router", "result_cls", "task_type", "add_to_parent", "reply_to",
    "retry", "retry_policy", "exchange", "exchange_type", "delivery_mode", "mandatory", "immediate",
    "replaced_task_nesting", "declare", "route_name", "argsrepr", "kwargsrepr", "origin",
})


def _all_apps() -> list[Celery]:
    return list(_apps)


def run_blocking(app: Any, coro: Coroutine[Any, Any, T]) -> T:
    """Block on ``coro`` of ``app.qtasks`` from sync code: also from inside an event loop (an async task
    calling ``.delay()``), where it runs on the app's portal thread instead of deadlocking its own loop."""
    core = app.qtasks
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return core._blocking(coro)
    if core._portal is None:
        core._portal = Portal(f"qtasks-{core.name}")
    return call_in_loop(core._portal.loop, coro)


def _maybe_list(value: Any) -> list[Any] | None:
    if value is None:
        return None
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _sig_dicts(value: Any) -> list[dict[str, Any]] | None:
    items = _maybe_list(value)
    if not items:
        return None
    out = []
    for s in items:
        as_dict = getattr(s, "as_dict", None)
        out.append(dict(as_dict()) if callable(as_dict) else dict(s))
    return out


def _utc(when: dt.datetime) -> dt.datetime:
    # Celery reads a naive datetime in the app's timezone, UTC unless configured otherwise.
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.timezone.utc)


def _abs_time(value: Any, what: str, now: dt.datetime) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return _utc(value)
    if isinstance(value, str):
        return _utc(dt.datetime.fromisoformat(value))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return now + dt.timedelta(seconds=float(value))
    if isinstance(value, dt.timedelta):
        return now + value
    raise TypeError(f"{what} must be a datetime, ISO-8601 text or seconds, got {value!r}")


@dataclass
class _Message:
    """One prepared publish: what ``broker.add`` gets."""

    name: str
    task_id: str
    args: list[Any]
    kwargs: dict[str, Any]
    queue: str
    priority: int
    delay: float
    status: str
    extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, Any] = field(default_factory=dict)


class Celery:
    """A Celery app whose tasks run on qtasks workers (``from qtasks_compat import Celery``)."""

    Task: type[TaskBase]

    def __init__(self, main: str | None = None, loader: Any = None, backend: str | None = None, amqp: Any = None,
                 events: Any = None, log: Any = None, control: Any = None, set_as_current: bool = True,
                 tasks: Any = None, broker: str | None = None, include: Iterable[str] | None = None,
                 changes: dict[str, Any] | None = None, config_source: Any = None, fixups: Any = None,
                 task_cls: type[TaskBase] | str | None = None, autofinalize: bool = True, namespace: str | None = None,
                 strict_typing: bool = True, config_source_silent: bool = False, **kwargs: Any) -> None:
        from qtasks_compat.config import Settings
        from qtasks_compat.signals import Signal

        for arg, value in (("loader", loader), ("amqp", amqp), ("events", events), ("log", log),
                           ("control", control), ("tasks", tasks)):
            if value is not None:
                raise unsupported(f"Celery({arg}=...)")
        self.main = main
        self.strict_typing = strict_typing
        self.autofinalize = autofinalize
        self.set_as_current = set_as_current
        settings = {**(changes or {}), **kwargs}
        auto: set[str] = set()
        for key, value in (("broker_url", broker), ("result_backend", backend)):
            if value:
                settings[key] = value
                auto.add(key)
        if include:
            settings["include"] = tuple(include)
            auto.add("include")
        self.on_configure = Signal(name="app.on_configure")
        self.on_after_configure = Signal(name="app.on_after_configure", providing_args={"source"})
        self.on_after_finalize = Signal(name="app.on_after_finalize")
        self.on_after_fork = Signal(name="app.on_after_fork")
        self._conf = Settings(settings, namespace=namespace, auto_keys=auto, on_configure=self._configured)
        if config_source is not None:
            self._conf.config_from_object(config_source, silent=config_source_silent)
        # Celery's Django fixup (DJANGO_SETTINGS_MODULE set): django.setup() before task modules, DjangoTask.
        from qtasks_compat.contrib.django.fixup import fixup as django_fixup
        from qtasks_compat.contrib.django.fixup import wanted
        self._django_fixup = django_fixup(self) if wanted(fixups) else None
        if task_cls is None and self._django_fixup is not None:
            task_cls = self._django_fixup.task_cls
        if isinstance(task_cls, str):
            task_cls = _import_symbol(task_cls)
        base = task_cls or TaskBase
        if not (isinstance(base, type) and issubclass(base, TaskBase)):
            raise TypeError(f"task_cls must be a qtasks_compat.Task subclass, got {base!r}")
        self.Task = type(base.__name__, (base,), {"app": self, "__module__": base.__module__,
                                                  "_app_bound": True})
        self._tasks: dict[str, TaskBase] = {}
        self._pending_autodiscover: list[tuple[Any, str]] = []
        self._finalized = False
        self._finalize_lock = threading.RLock()
        self._qtasks: Any = None
        self._qtasks_lock = threading.Lock()
        self._control: Any = None
        _apps.add(self)
        if set_as_current:
            set_current_app(self)

    def __repr__(self) -> str:
        return f"<Celery {self.main or '__main__'} at {id(self):#x}>"

    # ------------------------------------------------------------------ configuration
    @property
    def conf(self) -> Any:
        return self._conf

    @conf.setter
    def conf(self, value: Any) -> None:
        self._conf.update(value)

    def _configured(self, conf: Any) -> None:
        # Like Celery, declaring a task does not read the configuration: task_annotations reach the tasks
        # declared so far when the configuration is first read (later tasks get them when declared), so an
        # on_after_configure handler written before the task definitions still sees the tasks.
        for task in list(self._tasks.values()):
            self._annotate(task)
        self.on_after_configure.send(sender=self, source=conf)

    def _annotate(self, task: TaskBase) -> None:
        from qtasks_compat.config import annotations_for

        for key, value in annotations_for(self._conf, str(task.name)).items():
            setattr(type(task), key, value)

    @property
    def configured(self) -> bool:
        return bool(self._conf.configured)

    def config_from_object(self, obj: Any, silent: bool = False, force: bool = False,
                           namespace: str | None = None) -> None:
        self._conf.config_from_object(obj, silent=silent, force=force, namespace=namespace)

    def config_from_envvar(self, variable_name: str, silent: bool = False, force: bool = False) -> bool:
        return bool(self._conf.config_from_envvar(variable_name, silent=silent, force=force))

    def config_from_cmdline(self, argv: list[str], namespace: str = "celery") -> None:
        raise unsupported("Celery.config_from_cmdline")

    def set_current(self) -> None:
        set_current_app(self)

    def set_default(self) -> None:
        set_default_app(self)

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc)

    def uses_utc_timezone(self) -> bool:
        return self.conf.get("timezone") in (None, "UTC", "utc")

    # ------------------------------------------------------------------ tasks
    def task(self, *args: Any, **opts: Any) -> Any:
        """``@app.task`` / ``@app.task(name=..., bind=True, base=..., **options)``: a Task instance."""
        opts.pop("shared", None)
        opts.pop("lazy", None)
        if len(args) == 1 and callable(args[0]) and not isinstance(args[0], str):
            return self._task_from_fun(args[0], **opts)
        if args:
            raise TypeError(f"@task() takes options as keyword arguments only, got {args!r}")

        def inner(fun: Callable[..., Any]) -> TaskBase:
            return self._task_from_fun(fun, **opts)

        return inner

    def _task_from_fun(self, fun: Callable[..., Any], name: str | None = None, base: type[TaskBase] | None = None,
                       bind: bool = False, **options: Any) -> TaskBase:
        if not callable(fun):
            raise TypeError(f"a task must be a function, got {fun!r}")
        name = name or gen_task_name(self, fun.__name__, getattr(fun, "__module__", None))
        existing = self._tasks.get(name)
        if existing is not None:
            return existing
        if base is not None and not (isinstance(base, type) and issubclass(base, TaskBase)):
            raise TypeError(f"base= must be a qtasks_compat.Task subclass, got {base!r}")
        base = self.Task if base is None else base
        attrs = {"app": self, "name": name, "run": fun if bind else staticmethod(fun), "_decorated": True,
                 "__doc__": fun.__doc__, "__module__": fun.__module__, "__wrapped__": fun, "_bound_run": bind,
                 **options}
        for key in ("time_limit", "soft_time_limit"):
            v = attrs.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0):
                raise ValueError(f"task {name!r}: {key} must be a positive number of seconds, got {v!r}")
        cls = type(fun.__name__, (base,), attrs)
        cls.__qualname__ = getattr(fun, "__qualname__", fun.__name__)
        task = cls()
        if self.configured:
            self._annotate(task)
        add_autoretry_behaviour(task)
        self._tasks[name] = task
        return task

    def register_task(self, task: Any, **options: Any) -> TaskBase:
        """Register a class-based task (``class MyTask(Task): name = ...; def run(...)``)."""
        inst: TaskBase = task() if isinstance(task, type) else task
        cls: Any = type(inst)
        if not inst.name:
            cls.name = gen_task_name(self, cls.__name__, cls.__module__)
        if inst.app is None:
            cls.app = self
        add_autoretry_behaviour(inst)
        self._tasks[str(inst.name)] = inst
        return inst

    @property
    def tasks(self) -> dict[str, TaskBase]:
        """The registry (name -> task); reading it finalizes the app, as with Celery."""
        if self.autofinalize and not self._finalized:
            self.finalize(auto=True)
        return self._tasks

    def finalize(self, auto: bool = False) -> None:
        """Register shared tasks, import autodiscovered modules, send ``on_after_finalize`` (once)."""
        with self._finalize_lock:
            if self._finalized:
                return
            self._finalized = True
            for fun, opts in shared_tasks():
                self._task_from_fun(fun, **opts)
            self._conf.finalize()
            try:
                from qtasks_compat import canvas
                register = getattr(canvas, "register_builtins", None)
                if callable(register):
                    register(self)
            except ImportError:
                pass
            self._run_autodiscover()
        self.on_after_finalize.send(sender=self)

    @property
    def finalized(self) -> bool:
        return self._finalized

    def autodiscover_tasks(self, packages: Any = None, related_name: str = "tasks", force: bool = False) -> None:
        """Import ``<package>.<related_name>`` for each package (Django: every INSTALLED_APP) when finalized."""
        self._pending_autodiscover.append((packages, related_name))
        if force or self._finalized:
            self._run_autodiscover()

    def _run_autodiscover(self) -> None:
        pending, self._pending_autodiscover = self._pending_autodiscover, []
        for packages, related_name in pending:
            if not packages:  # Celery asks its fixups: Django's installed apps, else nothing
                fix = self._django_fixup
                packages = fix.autodiscover_tasks() if fix is not None else []
            elif callable(packages):
                packages = packages()
            for pkg in packages:
                try:
                    importlib.import_module(f"{pkg}.{related_name}")
                except ModuleNotFoundError as e:
                    if e.name not in (f"{pkg}.{related_name}", pkg):
                        raise

    def import_default_modules(self) -> None:
        from qtasks_compat import signals
        from qtasks_compat.config import task_modules
        signals.import_modules.send(sender=self)  # as Celery: the Django fixup runs django.setup() here
        for module in task_modules(self.conf):
            importlib.import_module(module)

    def add_periodic_task(self, schedule: Any, sig: Any, args: Any = (), kwargs: Any = (), name: str | None = None,
                          **opts: Any) -> str:
        from qtasks_compat.beat import register_periodic
        return register_periodic(self, schedule, sig, name=name, args=args, kwargs=dict(kwargs or {}), **opts)

    # ------------------------------------------------------------------ the qtasks engine
    @property
    def qtasks(self) -> Any:
        """The async-core qtasks app doing the queueing (built at first use from ``conf``)."""
        if self._qtasks is None:
            with self._qtasks_lock:
                if self._qtasks is None:
                    self._qtasks = self._build_qtasks()
        return self._qtasks

    def _build_qtasks(self) -> Any:
        import qtasks.asyncio as qasync
        from qtasks.backends import broker_for_queue, storage_from_url
        from qtasks.brokers.multi import MultiQueueBroker
        from qtasks.configs.config import QueueConfig
        from qtasks_compat.config import apply_to_qtasks, qtasks_options
        from qtasks_compat.worker import CompatWorker

        opts = qtasks_options(self.conf)
        name = self.conf.get("qtasks_app_name") or self.main or "celery"
        config = QueueConfig()
        for key, value in opts.config.items():
            setattr(config, key, value)
        storage = storage_from_url(opts.storage_url, name=name, config=config) if opts.storage_url else None
        shared: dict[str, Any] = {"storage": storage}

        def make(queue: str) -> Any:
            b = broker_for_queue(opts.broker_url, queue, name=name, storage=shared["storage"], config=config)
            shared["storage"] = b.storage
            return b

        broker = MultiQueueBroker(make, list(opts.worker_queues), default_queue=opts.default_queue)
        worker = CompatWorker(name=name, broker=broker, config=config)
        core = qasync.QueueTasks(name=name, broker=broker, worker=worker, config=config)
        core.compat_app = self  # type: ignore[attr-defined]
        apply_to_qtasks(self.conf, core)
        return core

    def close(self) -> None:
        if self._qtasks is not None:
            self._qtasks.close()

    # ------------------------------------------------------------------ publishing
    def send_task(self, name: str, args: Any = None, kwargs: Any = None, countdown: float | None = None,
                  eta: Any = None, task_id: str | None = None, producer: Any = None, connection: Any = None,
                  router: Any = None, result_cls: Any = None, expires: Any = None, publisher: Any = None,
                  link: Any = None, link_error: Any = None, add_to_parent: bool = True, group_id: str | None = None,
                  group_index: int | None = None, retries: int = 0, chord: Any = None, reply_to: str | None = None,
                  time_limit: float | None = None, soft_time_limit: float | None = None, root_id: str | None = None,
                  parent_id: str | None = None, route_name: str | None = None, shadow: str | None = None,
                  chain: Any = None, task_type: Any = None, replaced_task_nesting: int = 0, **options: Any) -> Any:
        """Queue task ``name`` by name (it need not be registered here); returns an ``AsyncResult``."""
        if self.conf.get("task_always_eager"):
            warnings.warn(AlwaysEagerIgnored("send_task ignores task_always_eager option"), stacklevel=2)
        msg = self._prepare(name, args, kwargs, countdown=countdown, eta=eta, task_id=task_id, expires=expires,
                            link=link, link_error=link_error, group_id=group_id, group_index=group_index,
                            retries=retries, chord=chord, time_limit=time_limit, soft_time_limit=soft_time_limit,
                            root_id=root_id, parent_id=parent_id, shadow=shadow, chain=chain, **options)
        run_blocking(self, self._publish(msg))
        self._after_publish(msg)
        return self.AsyncResult(msg.task_id, task_name=name)

    async def _send(self, name: str, args: Any = None, kwargs: Any = None, **options: Any) -> str:
        """``send_task`` for code already on the event loop (the worker's retries); returns the task id."""
        msg = self._prepare(name, args, kwargs, **options)
        await self._publish(msg)
        self._after_publish(msg)
        return msg.task_id

    def _prepare(self, name: str, args: Any, kwargs: Any, *, countdown: float | None = None, eta: Any = None,
                 task_id: str | None = None, expires: Any = None, queue: Any = None, priority: int | None = None,
                 headers: dict[str, Any] | None = None, link: Any = None, link_error: Any = None,
                 ignore_result: bool | None = None, retries: int = 0, root_id: str | None = None,
                 parent_id: str | None = None, group_id: str | None = None, group_index: int | None = None,
                 chain: Any = None, chord: Any = None, time_limit: float | None = None,
                 soft_time_limit: float | None = None, shadow: str | None = None, serializer: str | None = None,
                 compression: str | None = None, routing_key: str | None = None, _status: str = "new",
                 _compat_extra: dict[str, Any] | None = None, _task: Any = None, **options: Any) -> _Message:
        from qtasks_compat.config import check_serializer, route_for_task
        from qtasks_compat.utils import uuid as new_id

        if not isinstance(name, str) or not name:
            raise TypeError(f"send_task() needs a task name, got {name!r}")
        if compression is not None:
            raise unsupported(f"apply_async(compression={compression!r})")
        if "stamped_headers" in options:
            raise unsupported("stamping (stamped_headers)")
        if serializer is not None:
            check_serializer(serializer, "serializer")
        unknown = sorted(set(options) - IGNORED_OPTIONS)
        if unknown:
            warnings.warn(CompatWarning(f"apply_async/send_task options without effect on qtasks: "
                                        f"{', '.join(unknown)} (see migration_guide/core.md)"), stacklevel=3)
        args = list(args or ())
        kwargs = dict(kwargs or {})
        task_id = _check_id(task_id) if task_id else new_id()
        explicit = {"queue": queue, "priority": priority}
        if queue is None and routing_key:
            explicit["queue"] = routing_key  # the default exchange routes a key to the queue of that name
        route = route_for_task(self.conf, name, args, kwargs, explicit, task=_task)
        queue_name = route["queue"]
        prio = route.get("priority")
        if prio is None:
            prio = self.conf.get("task_default_priority") or 0
        if isinstance(prio, bool) or not isinstance(prio, int):
            raise TypeError(f"priority must be an int, got {prio!r}")
        now = self.now()
        if countdown is not None and eta is None:
            eta_at: dt.datetime | None = now + dt.timedelta(seconds=float(countdown))
        else:
            eta_at = _abs_time(eta, "eta", now)
        expires_at = _abs_time(expires, "expires", now)
        delay = max(0.0, (eta_at - now).total_seconds()) if eta_at is not None else 0.0
        parent = get_current_worker_task()
        if parent is not None:
            root_id = root_id or parent.request.root_id or parent.request.id
            parent_id = parent_id or parent.request.id
        chord_sig = _sig_dicts(chord)
        extra: dict[str, Any] = {
            "queue": queue_name, "retries": int(retries or 0), "root_id": root_id or task_id, "parent_id": parent_id,
            "eta": eta_at.isoformat() if eta_at is not None else None,
            "expires": expires_at.isoformat() if expires_at is not None else None,
            "ignore_result": ignore_result, "headers": dict(headers) if headers else None,
            "link": _sig_dicts(link), "link_error": _sig_dicts(link_error), "chain": _sig_dicts(chain),
            "chord": chord_sig[0] if chord_sig else None, "group_id": group_id, "group_index": group_index,
            "time_limit": time_limit, "soft_time_limit": soft_time_limit, "shadow": shadow,
        }
        extra = {k: v for k, v in extra.items() if v is not None}
        extra.update(_compat_extra or {})
        return _Message(name=name, task_id=task_id, args=args, kwargs=kwargs, queue=str(queue_name),
                        priority=int(prio), delay=delay, status=_status, extra=extra,
                        headers=self._before_publish(name, task_id, args, kwargs, extra, queue_name))

    def _protocol_headers(self, name: str, task_id: str, args: list[Any], kwargs: dict[str, Any],
                          extra: dict[str, Any]) -> dict[str, Any]:
        return {"lang": "py", "task": name, "id": task_id, "shadow": extra.get("shadow"), "eta": extra.get("eta"),
                "expires": extra.get("expires"), "group": extra.get("group_id"),
                "group_index": extra.get("group_index"), "retries": extra.get("retries", 0),
                "timelimit": [extra.get("time_limit"), extra.get("soft_time_limit")],
                "root_id": extra.get("root_id"), "parent_id": extra.get("parent_id"),
                "argsrepr": repr(tuple(args)), "kwargsrepr": repr(kwargs),
                "origin": f"gen{os.getpid()}@{socket.gethostname()}",
                "ignore_result": bool(extra.get("ignore_result", False)), **(extra.get("headers") or {})}

    def _before_publish(self, name: str, task_id: str, args: list[Any], kwargs: dict[str, Any],
                        extra: dict[str, Any], queue: str) -> dict[str, Any]:
        from qtasks_compat import signals
        if not (signals.before_task_publish.receivers or signals.after_task_publish.receivers):
            return {}
        headers = self._protocol_headers(name, task_id, args, kwargs, extra)
        protocol = set(headers) - set(extra.get("headers") or {})
        signals.before_task_publish.send(
            sender=name, body=(args, kwargs, {}), exchange="", routing_key=queue, headers=headers,
            properties={"correlation_id": task_id, "priority": 0}, declare=[], retry_policy=None)
        custom = {k: v for k, v in headers.items() if k not in protocol}
        if custom:  # handlers add tracing headers: they travel as custom headers
            extra["headers"] = custom
        return headers

    def _after_publish(self, msg: _Message) -> None:
        from qtasks_compat import signals
        if signals.after_task_publish.receivers:
            signals.after_task_publish.send(sender=msg.name, body=(msg.args, msg.kwargs, {}), exchange="",
                                            routing_key=msg.queue, headers=msg.headers)

    async def _publish(self, msg: _Message) -> None:
        await self.qtasks.broker.add(msg.name, msg.priority, msg.extra, msg.args, msg.kwargs, uuid=msg.task_id,
                                     delay=msg.delay, status=msg.status, queue=msg.queue)

    async def _update_record(self, task_id: str, fields: dict[str, Any]) -> None:
        """Merge Celery fields into a task's record (no waiter is woken)."""
        from qtasks.brokers.base import encode_fields
        await self.qtasks.broker.storage.update_task(task_id, encode_fields(fields))

    # ------------------------------------------------------------------ results, control, worker
    def AsyncResult(self, id: str, **kwargs: Any) -> Any:
        from qtasks_compat.result import AsyncResult
        kwargs.setdefault("app", self)
        return AsyncResult(id, **kwargs)

    @property
    def GroupResult(self) -> Any:
        """``GroupResult`` bound to this app: ``app.GroupResult(id, results)`` and ``app.GroupResult.restore(id)``."""
        from qtasks_compat.result import GroupResult

        bound = self.__dict__.get("_group_result_cls")
        if bound is None:
            owner = self

            class AppGroupResult(GroupResult):
                def __init__(self, *args: Any, **kwargs: Any) -> None:
                    kwargs.setdefault("app", owner)
                    super().__init__(*args, **kwargs)

                @classmethod
                def restore(cls, id: str, backend: Any = None, app: Any = None) -> Any:
                    return GroupResult.restore(id, backend, app=app or owner)

            AppGroupResult.__name__ = AppGroupResult.__qualname__ = "GroupResult"
            bound = self.__dict__["_group_result_cls"] = AppGroupResult
        return bound

    def signature(self, *args: Any, **kwargs: Any) -> Any:
        from qtasks_compat.canvas import signature
        kwargs.setdefault("app", self)
        return signature(*args, **kwargs)

    @property
    def control(self) -> Any:
        if self._control is None:
            from qtasks_compat.worker import Control
            self._control = Control(self)
        return self._control

    @property
    def Worker(self) -> Any:
        from qtasks_compat.worker import Worker
        app = self

        def make(**kwargs: Any) -> Any:
            return Worker(app, **kwargs)

        return make

    def worker_main(self, argv: list[str] | None = None) -> None:
        from qtasks_compat.worker import worker_main
        worker_main(self, argv)

    def start(self, argv: list[str] | None = None) -> None:
        """``python proj.py worker ...`` (Celery's ``app.start``): the qtasks-celery command line."""
        try:
            from qtasks_compat.cli import main as cli_main
        except ImportError as e:
            raise unsupported("Celery.start (needs qtasks_compat.cli)") from e
        cli_main(list(argv or []), app=self)

    def __reduce__(self) -> Any:
        raise unsupported("pickling a Celery app")

    # ------------------------------------------------------------------ Celery internals people reach for
    @property
    def amqp(self) -> Any:
        raise unsupported("app.amqp (kombu publishing internals)")

    @property
    def backend(self) -> Any:
        raise unsupported("app.backend (use AsyncResult / app.AsyncResult)")

    def connection_for_write(self, *args: Any, **kwargs: Any) -> Any:
        raise unsupported("app.connection_for_write")

    connection_for_read = connection = broker_connection = connection_for_write

    def producer_or_acquire(self, *args: Any, **kwargs: Any) -> Any:
        raise unsupported("app.producer_or_acquire")


def task_by_name(app: Celery, name: str) -> TaskBase:
    try:
        return app.tasks[name]
    except KeyError:
        raise NotRegistered(name) from None


def _check_id(task_id: Any) -> str:
    """qtasks keys records by UUID: a custom task id must be one (Celery accepts any text)."""
    import uuid as uuidlib
    try:
        return str(uuidlib.UUID(str(task_id)))
    except ValueError:
        raise ValueError(f"task_id must be a UUID (qtasks keys its records by UUID), got {task_id!r}; "
                         "see migration_guide/core.md") from None


def _import_symbol(path: str) -> Any:
    module, _, attr = path.replace(":", ".").rpartition(".")
    return getattr(importlib.import_module(module), attr)


__all__ = ["Celery", "get_current_app", "run_blocking"]

# Imported here, with the app, rather than lazily on a worker thread at finalize: a first import of the
# canvas module from a thread once crashed CPython 3.11's AST rewriting under pytest.
from qtasks_compat import canvas as _canvas  # noqa: E402,F401

