"""Celery beat on the qtasks timer: ``app.conf.beat_schedule`` and ``app.add_periodic_task`` entries.

Each entry becomes one job of a :class:`qtasks.timer.AsyncTimer` on ``app.qtasks``; at each fire the
timer's leader publishes ``entry.task`` with the entry's ``args``, ``kwargs`` and ``options`` through
``task.apply_async`` (or ``app.send_task`` when the task is not imported here), as Celery beat does.
Several beat processes of one app elect a leader through the broker, so each fire is sent once.

    from qtasks_compat.beat import run_beat
    run_beat(app)            # blocks until SIGINT/SIGTERM
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from apscheduler.triggers.base import BaseTrigger

from qtasks.portal import call_in_loop
from qtasks.timer import DEFAULT_LEASE_TTL, AsyncTimer
from qtasks_compat.schedules import BaseSchedule, maybe_schedule, resolve_timezone

__all__ = ["Beat", "BeatLazyFunc", "ScheduleEntry", "collect_entries", "register_periodic", "run_beat"]

_PERIODIC_ATTR = "_qtasks_periodic_entries"
_ENTRY_KEYS = frozenset({"task", "schedule", "args", "kwargs", "options", "relative", "last_run_at",
                         "total_run_count", "name"})


class BeatLazyFunc:
    """An argument evaluated at each send (``celery.beat.BeatLazyFunc``): ``BeatLazyFunc(time.time)``."""

    def __init__(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._func, self._args, self._kwargs = func, args, kwargs

    def __call__(self) -> Any:
        return self.delay()

    def delay(self) -> Any:
        return self._func(*self._args, **self._kwargs)

    def __repr__(self) -> str:
        return f"<BeatLazyFunc: {getattr(self._func, '__qualname__', self._func)!r}>"


@dataclass
class ScheduleEntry:
    """One periodic entry: what to send (``task``, ``args``, ``kwargs``, ``options``) and when."""

    name: str
    task: str
    schedule: BaseSchedule | BaseTrigger
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_spec(cls, name: str, spec: Mapping[str, Any], app: Any = None) -> ScheduleEntry:
        """Validate a ``beat_schedule`` value (``{'task': ..., 'schedule': ..., 'args': ...}``)."""
        where = f"beat_schedule entry {name!r}"
        if not isinstance(spec, Mapping):
            raise TypeError(f"{where} must be a dict with 'task' and 'schedule', got {type(spec).__name__}")
        unknown = set(spec) - _ENTRY_KEYS
        if unknown:
            raise TypeError(f"{where} has unknown key(s) {sorted(unknown)}; "
                            f"allowed: task, schedule, args, kwargs, options, relative")
        task = spec.get("task")
        if not isinstance(task, str) or not task:
            raise TypeError(f"{where} needs 'task': the task name as a string, got {task!r}")
        raw = spec.get("schedule")
        if raw is None:
            raise TypeError(f"{where} needs 'schedule': seconds, a timedelta, crontab(), schedule() or solar()")
        sched: BaseSchedule | BaseTrigger
        if isinstance(raw, BaseTrigger):  # a qtasks extra: any APScheduler trigger
            sched = raw
        else:
            try:
                made = maybe_schedule(raw, bool(spec.get("relative", False)), app=app)
            except TypeError as e:
                raise TypeError(f"{where}: {e}") from None
            assert made is not None
            sched = made
        args = spec.get("args") or ()
        if isinstance(args, (str, bytes)) or not isinstance(args, (list, tuple)):
            raise TypeError(f"{where}: 'args' must be a list or tuple, got {type(args).__name__}")
        kwargs = spec.get("kwargs") or {}
        if not isinstance(kwargs, Mapping):
            raise TypeError(f"{where}: 'kwargs' must be a dict, got {type(kwargs).__name__}")
        options = spec.get("options") or {}
        if not isinstance(options, Mapping):
            raise TypeError(f"{where}: 'options' must be a dict, got {type(options).__name__}")
        return cls(name, task, sched, tuple(args), dict(kwargs), dict(options))

    def trigger(self, timezone: tzinfo) -> BaseTrigger:
        return self.schedule if isinstance(self.schedule, BaseTrigger) else self.schedule.to_trigger(timezone)

    def key(self) -> str:
        """Identical in every beat process with the same entry: names the timer's fires."""
        body = json.dumps([self.name, self.task, list(self.args), self.kwargs, self.options],
                          sort_keys=True, default=lambda o: type(o).__qualname__)
        return f"beat|{body}"


# ------------------------------------------------------------------------------------ add_periodic_task
def register_periodic(app: Any, schedule: Any, sig: Any, name: str | None = None, *,
                      args: Any = (), kwargs: Any = None, **opts: Any) -> str:
    """What ``Celery.add_periodic_task(schedule, sig, args=(), kwargs=(), name=None, **opts)`` does: record
    an entry (merged over ``conf.beat_schedule`` when beat starts) and return its key.

    ``sig`` is a signature (``add.s(2, 2)``; ``args`` are prepended to its own and ``kwargs`` merged, as
    Celery's ``sig.clone(args, kwargs)``) or a task (then ``args``/``kwargs`` are the call's).
    """
    task_name, sargs, skwargs, sopts, immutable = _signature_parts(sig)
    args = tuple(args or ())
    kwargs = dict(kwargs or {})
    if immutable:
        call_args, call_kwargs = tuple(sargs), dict(skwargs)
    else:
        call_args = args + tuple(sargs) if args else tuple(sargs)
        call_kwargs = {**skwargs, **kwargs}
    key = name or _reprcall(task_name, call_args, call_kwargs)
    entry = {"schedule": schedule, "task": task_name, "args": call_args, "kwargs": call_kwargs,
             "options": {**sopts, **opts}}
    ScheduleEntry.from_spec(key, entry, app)  # bad input fails here, not when beat starts
    periodic: dict[str, dict[str, Any]] | None = getattr(app, _PERIODIC_ATTR, None)
    if periodic is None:
        periodic = {}
        setattr(app, _PERIODIC_ATTR, periodic)
    periodic[key] = entry
    return key


def _signature_parts(sig: Any) -> tuple[str, tuple[Any, ...], dict[str, Any], dict[str, Any], bool]:
    if isinstance(sig, Mapping) and "task" in sig:  # a signature (Celery's Signature is a dict)
        return (str(sig["task"]), tuple(sig.get("args") or ()), dict(sig.get("kwargs") or {}),
                dict(sig.get("options") or {}), bool(sig.get("immutable", False)))
    name = getattr(sig, "name", None)
    if isinstance(name, str) and name:  # a task
        return name, (), {}, {}, False
    raise TypeError(f"add_periodic_task() needs a signature (task.s(...)) or a task, got {sig!r}")


def _reprcall(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


def collect_entries(app: Any) -> dict[str, ScheduleEntry]:
    """``conf.beat_schedule`` plus the ``add_periodic_task`` entries (which win on the same key, as in Celery)."""
    raw: dict[str, Any] = {}
    conf_schedule = getattr(getattr(app, "conf", None), "beat_schedule", None) or {}
    if not isinstance(conf_schedule, Mapping):
        raise TypeError(f"app.conf.beat_schedule must be a dict of entries, got {type(conf_schedule).__name__}")
    raw.update(conf_schedule)
    raw.update(getattr(app, _PERIODIC_ATTR, None) or {})
    return {name: ScheduleEntry.from_spec(name, spec, app) for name, spec in raw.items()}


def _send_setup_signals(app: Any) -> None:
    """Celery apps send ``on_after_configure`` / ``on_after_finalize`` once; periodic tasks are commonly
    registered in their handlers, so beat makes sure both were sent before reading the schedule."""
    finalize = getattr(app, "finalize", None)
    if callable(finalize):
        finalize()
    for signal_name, flag in (("on_after_configure", "configured"), ("on_after_finalize", "finalized")):
        if getattr(app, flag, False) is True or getattr(app, f"_qtasks_sent_{signal_name}", False):
            continue  # the app sent it itself, or beat already did
        signal = getattr(app, signal_name, None)
        if signal is None:
            continue
        setattr(app, f"_qtasks_sent_{signal_name}", True)
        if signal_name == "on_after_configure":
            signal.send(sender=app, source=app.conf)
        else:
            signal.send(sender=app)


# ------------------------------------------------------------------------------------------------ Beat
class Beat:
    """Runs an app's periodic entries on a leader-elected qtasks timer.

    ``run_forever()`` blocks (SIGINT/SIGTERM end it cleanly); ``await start()`` / ``await stop()`` run it on
    your event loop. ``lease_ttl`` bounds the fail-over time between beat processes (see docs/timer.md).
    """

    def __init__(self, app: Any, *, lease_ttl: float = DEFAULT_LEASE_TTL, timer_id: str | None = None) -> None:
        self.app = app
        self.lease_ttl, self.timer_id = lease_ttl, timer_id
        self._timer: AsyncTimer | None = None
        self.entries: dict[str, ScheduleEntry] = {}
        self._set_up = False

    @property
    def timer(self) -> AsyncTimer:
        """The qtasks timer on ``app.qtasks`` (built at first use: building it connects nothing)."""
        if self._timer is None:
            self._timer = AsyncTimer(self.app.qtasks, lease_ttl=self.lease_ttl, timer_id=self.timer_id)
        return self._timer

    def load_entries(self) -> dict[str, ScheduleEntry]:
        """Send the setup signals and read (and validate) every entry, without scheduling anything."""
        _send_setup_signals(self.app)
        return collect_entries(self.app)

    def setup_schedule(self) -> dict[str, ScheduleEntry]:
        """Read the entries and add each to the timer (once); returns the entries."""
        if self._set_up:
            return self.entries
        entries = self.load_entries()
        tz = resolve_timezone(self.app)
        triggers = {name: entry.trigger(tz) for name, entry in entries.items()}  # all valid before any is added
        for name, entry in entries.items():
            self.timer.add_call(self._caller(entry), triggers[name], name=name, key=entry.key())
        self.entries, self._set_up = entries, True
        if not entries:
            self.timer.log.warning("beat has no periodic entries (app.conf.beat_schedule / add_periodic_task)")
        return entries

    def _caller(self, entry: ScheduleEntry) -> Callable[[], Any]:
        async def fire() -> Any:
            # The publishing API is blocking (it waits on the app's own loop): run it off the timer's loop.
            return await asyncio.to_thread(self.apply_entry, entry)

        return fire

    def apply_entry(self, entry: ScheduleEntry) -> Any:
        """Send one run of ``entry`` now, as Celery beat does; returns the ``AsyncResult``."""
        args = tuple(a() if isinstance(a, BeatLazyFunc) else a for a in entry.args)
        kwargs = {k: v() if isinstance(v, BeatLazyFunc) else v for k, v in entry.kwargs.items()}
        options = dict(entry.options)
        options["headers"] = {**(options.get("headers") or {}), "celery_beat_task": True}
        tasks = getattr(self.app, "tasks", None) or {}
        task = tasks.get(entry.task) if isinstance(tasks, Mapping) else None
        if task is not None:
            return task.apply_async(args, kwargs, **options)
        return self.app.send_task(entry.task, args, kwargs, **options)

    async def start(self) -> None:
        """Start on the running loop; returns at once."""
        self.setup_schedule()
        await self.timer.start()

    async def stop(self) -> None:
        await self.timer.stop()

    def run_forever(self) -> None:
        """Block until SIGINT/SIGTERM (in the main thread) or :meth:`shutdown`; then hand the lease back."""
        self.setup_schedule()
        self.timer.run_forever()

    run = run_forever  # celery.apps.beat.Beat.run()

    def shutdown(self) -> None:
        """End ``run_forever()`` running in another thread, and wait for fires in progress."""
        loop = self.timer._loop
        if loop is not None:
            call_in_loop(loop, self.timer.stop())


def run_beat(app: Any, **options: Any) -> None:
    """``celery -A proj beat``: run ``app``'s periodic entries until SIGINT/SIGTERM."""
    Beat(app, **options).run_forever()
