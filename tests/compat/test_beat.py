"""Beat: ``qtasks_compat.schedules`` parses and schedules as ``celery.schedules`` does, its APScheduler
triggers fire when Celery would, and ``qtasks_compat.beat`` sends each periodic entry once per fire even with
two beat processes (the qtasks timer's leader election)."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
import types
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import celery
import celery.schedules as C
import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

import qtasks.asyncio as qasync
from qtasks.timer import AsyncTimer
from qtasks_compat import schedules as Q
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]
UTC = timezone.utc
HAS_APP = importlib.util.find_spec("qtasks_compat.app") is not None
HAS_WORKER = HAS_APP and importlib.util.find_spec("qtasks_compat.worker") is not None
needs_app = pytest.mark.skipif(not HAS_APP, reason="qtasks_compat/app.py (the compat Celery app) is not there yet")
needs_worker = pytest.mark.skipif(not HAS_WORKER, reason="qtasks_compat/worker.py is not there yet")


def celery_app(tz: str = "UTC") -> Any:
    app = celery.Celery("beat-ref", set_as_current=False)
    app.conf.timezone = tz
    return app


def compat_app(tz: str = "UTC") -> Any:
    """Only the configuration a schedule reads (``conf.timezone``): the schedules are under test, not the app."""
    return types.SimpleNamespace(conf={"timezone": tz, "enable_utc": True})


# --------------------------------------------------------------------------------------- crontab parsing
FIELDS = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")
CRONTABS: list[dict[str, Any]] = [
    {},
    {"minute": 0},
    {"minute": "*/15"},
    {"minute": "1,13,30-45,50-59/2"},
    {"minute": [0, 30], "hour": {8, 20}},
    {"minute": 0, "hour": "*/3"},
    {"minute": 0, "hour": "0,8-17/2"},
    {"minute": 30, "hour": 7, "day_of_week": "mon-fri"},
    {"day_of_week": "sunday"},
    {"day_of_week": "sun,sat"},
    {"day_of_week": "sat-sun"},
    {"day_of_week": "fri-mon", "hour": "22-2"},
    {"day_of_week": "*/2"},
    {"day_of_week": 0},
    {"day_of_week": "Tuesday"},
    {"day_of_month": "2-30/2"},
    {"day_of_month": "1-7,15-21", "day_of_week": 1},
    {"month_of_year": "*/3", "day_of_month": 1},
    {"month_of_year": "2-12/2"},
    {"month_of_year": "jan-mar"},
    {"day_of_month": 29, "month_of_year": 2},
]


@pytest.mark.parametrize("spec", CRONTABS, ids=[repr(s) for s in CRONTABS])
def test_crontab_fields_equal_celery(spec: dict[str, Any]) -> None:
    ours, theirs = Q.crontab(**spec), C.crontab(**spec, app=celery_app())
    for name in FIELDS:
        assert getattr(ours, name) == getattr(theirs, name), name
    assert repr(ours) == repr(theirs)
    assert ours == Q.crontab(**spec)


@pytest.mark.parametrize("text", ["*/5 * * * *", "0 7 * * mon-fri", "30 2 1-7,15-21 */3 1", "0 0 29 2 *"])
def test_crontab_from_string_equals_celery(text: str) -> None:
    ours, theirs = Q.crontab.from_string(text), C.crontab.from_string(text)
    assert [getattr(ours, f) for f in FIELDS] == [getattr(theirs, f) for f in FIELDS]


@pytest.mark.parametrize("spec", [
    {"minute": 60}, {"hour": "24"}, {"minute": "-5"}, {"minute": "5,"}, {"day_of_week": "funday"},
    {"day_of_month": 0}, {"day_of_month": 30, "month_of_year": 2}, {"month_of_year": "13"}, {"minute": 1.5},
    {"minute": "*/"}, {"minute": "1-5/"}, {"hour": None},
], ids=repr)
def test_bad_crontabs_fail_like_celery(spec: dict[str, Any]) -> None:
    with pytest.raises(Exception) as theirs:
        C.crontab(**spec)
    with pytest.raises(Exception) as ours:
        Q.crontab(**spec)
    assert type(ours.value).__name__ == type(theirs.value).__name__ or (
        isinstance(ours.value, (TypeError, ValueError)) and isinstance(theirs.value, (TypeError, ValueError))), (
        ours.value, theirs.value)
    with pytest.raises(ValueError, match="5 space-separated fields"):
        Q.crontab.from_string("* * * *")


def test_day_of_week_numbers_are_celerys() -> None:
    """Celery's 0 is Sunday; APScheduler's cron 0 is Monday: the triggers must fire on Celery's days."""
    monday = datetime(2024, 6, 3, 12, 0, tzinfo=UTC)
    for dow, expected_weekday in [(0, 6), (1, 0), (6, 5), ("sunday", 6), ("mon", 0), ("sat", 5)]:
        trigger = Q.crontab(minute=0, hour=9, day_of_week=dow).to_trigger("UTC")
        assert isinstance(trigger, CronTrigger)
        fire = trigger.get_next_fire_time(None, monday)
        assert fire is not None and fire.weekday() == expected_weekday, (dow, fire)
        assert (fire.hour, fire.minute, fire.second) == (9, 0, 0)
    weekdays = Q.crontab(minute=0, hour=9, day_of_week="mon-fri").to_trigger("UTC")
    prev, days = None, []
    for _ in range(10):
        prev = weekdays.get_next_fire_time(prev, monday)
        assert prev is not None
        days.append(prev.weekday())
    assert sorted(set(days)) == [0, 1, 2, 3, 4]


# --------------------------------------------------------------------------------------- when it fires
FIRE_CASES: list[tuple[dict[str, Any], str, datetime]] = [
    ({"minute": "*/15"}, "UTC", datetime(2024, 5, 1, 10, 7, 30, tzinfo=UTC)),
    ({"hour": 7, "minute": 30, "day_of_week": "mon-fri"}, "Europe/London", datetime(2024, 5, 3, 12, 0, 5, tzinfo=UTC)),
    ({"hour": 0, "minute": 0, "day_of_week": "sunday"}, "America/New_York", datetime(2024, 5, 1, 0, 0, 5, tzinfo=UTC)),
    ({"minute": 0, "hour": 0, "day_of_month": "1-7", "day_of_week": "mon"}, "Asia/Kolkata",
     datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ({"minute": 0, "hour": 12, "day_of_month": 29, "month_of_year": 2}, "Asia/Tokyo",
     datetime(2023, 1, 1, 0, 0, 5, tzinfo=UTC)),
    ({"minute": 5, "hour": "22-2", "day_of_week": "fri-mon"}, "UTC", datetime(2024, 5, 2, 23, 0, 5, tzinfo=UTC)),
    ({"month_of_year": "*/3", "day_of_month": 1, "hour": 6, "minute": 0}, "Europe/Paris",
     datetime(2024, 2, 15, 0, 0, 5, tzinfo=UTC)),
    # Across DST changes: the hour that does not exist, the hour that happens twice, and APScheduler 3.11's
    # own CronTrigger skipping Monday 2024-04-01 in Berlin.
    ({"hour": 2, "minute": 30}, "Europe/Berlin", datetime(2024, 3, 29, 12, 0, 5, tzinfo=UTC)),
    ({"hour": 1, "minute": 30}, "America/New_York", datetime(2024, 11, 1, 12, 0, 5, tzinfo=UTC)),
    ({"minute": 0}, "Europe/Berlin", datetime(2024, 10, 26, 23, 10, 5, tzinfo=UTC)),
    ({"minute": 0, "hour": 0, "day_of_month": "1-7", "day_of_week": "mon"}, "Europe/Berlin",
     datetime(2024, 3, 30, 13, 29, tzinfo=UTC)),
]


@pytest.mark.parametrize(("spec", "tz", "ref"), FIRE_CASES, ids=[f"{s}@{tz}" for s, tz, _ in FIRE_CASES])
def test_trigger_fires_when_celery_would(spec: dict[str, Any], tz: str, ref: datetime) -> None:
    """Six successive fires of our trigger == Celery's chain of ``now + remaining_estimate(last_run_at)``."""
    theirs = C.crontab(**spec, app=celery_app(tz), nowfun=lambda: ref)
    celery_fires, last = [], ref
    for _ in range(6):
        last = ref + theirs.remaining_estimate(last)
        celery_fires.append(last.astimezone(UTC))
    trigger = Q.crontab(**spec, app=compat_app(tz)).to_trigger()
    assert str(trigger.timezone) == tz
    our_fires, prev = [], None
    for _ in range(6):
        prev = trigger.get_next_fire_time(prev, ref)
        assert prev is not None
        our_fires.append(prev.astimezone(UTC))
    assert our_fires == celery_fires


DUE_CASES: list[tuple[dict[str, Any], str, datetime, datetime]] = [
    ({"minute": "*/15"}, "UTC", datetime(2024, 5, 1, 10, 0, tzinfo=UTC), datetime(2024, 5, 1, 10, 7, 30, tzinfo=UTC)),
    ({"minute": "*/15"}, "UTC", datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
     datetime(2024, 5, 1, 10, 15, 0, 1, tzinfo=UTC)),
    ({"hour": 7, "minute": 30}, "Europe/London", datetime(2024, 5, 2, 6, 30, tzinfo=UTC),
     datetime(2024, 5, 3, 6, 29, tzinfo=UTC)),
    ({"hour": 7, "minute": 30}, "Europe/London", datetime(2024, 5, 2, 6, 30, tzinfo=UTC),
     datetime(2024, 5, 4, 6, 29, tzinfo=UTC)),
    ({"day_of_week": "sat-sun", "hour": 0, "minute": 0}, "America/New_York", datetime(2024, 5, 1, tzinfo=UTC),
     datetime(2024, 5, 4, 3, 59, tzinfo=UTC)),
    ({"day_of_week": "sat-sun", "hour": 0, "minute": 0}, "America/New_York", datetime(2024, 5, 1, tzinfo=UTC),
     datetime(2024, 5, 4, 4, 0, 1, tzinfo=UTC)),
    ({"day_of_month": 31, "hour": 12, "minute": 0}, "Asia/Kolkata", datetime(2024, 3, 31, 7, tzinfo=UTC),
     datetime(2024, 4, 20, tzinfo=UTC)),
    ({}, "Europe/Berlin", datetime(2024, 10, 27, 0, 59, 30, tzinfo=UTC), datetime(2024, 10, 27, 1, 0, 10, tzinfo=UTC)),
]


@pytest.mark.parametrize(("spec", "tz", "last", "now"), DUE_CASES, ids=[f"{c[0]}@{c[1]}" for c in DUE_CASES])
def test_remaining_estimate_and_is_due_equal_celery(spec: dict[str, Any], tz: str, last: datetime,
                                                    now: datetime) -> None:
    theirs = C.crontab(**spec, app=celery_app(tz), nowfun=lambda: now)
    ours = Q.crontab(**spec, app=compat_app(tz), nowfun=lambda: now)
    for last_run in (last, last.replace(tzinfo=None), last.astimezone(ours.tz)):
        assert ours.remaining_estimate(last_run) == theirs.remaining_estimate(last_run)
        assert tuple(ours.is_due(last_run)) == tuple(theirs.is_due(last_run))


def test_timezone_comes_from_the_app_conf() -> None:
    assert Q.crontab(app=types.SimpleNamespace(conf={"timezone": "Asia/Tokyo"})).tz.key == "Asia/Tokyo"  # type: ignore[attr-defined]
    assert Q.crontab(app=types.SimpleNamespace(conf={"enable_utc": True})).tz is UTC
    assert Q.resolve_timezone(types.SimpleNamespace(conf={"enable_utc": False})).utcoffset(datetime.now()) is not None
    trigger = Q.crontab(minute=0, app=compat_app("Asia/Tokyo")).to_trigger("Europe/Paris")
    assert str(trigger.timezone) == "Europe/Paris"  # an explicit zone wins


# --------------------------------------------------------------------------------------- intervals, solar
@pytest.mark.parametrize("every", [0.5, 10, timedelta(minutes=5)], ids=repr)
def test_schedule_becomes_an_interval_trigger(every: float | timedelta) -> None:
    seconds = every.total_seconds() if isinstance(every, timedelta) else every
    for made in (Q.schedule(every), Q.maybe_schedule(every)):
        assert isinstance(made, Q.schedule) and made.seconds == seconds
        trigger = made.to_trigger("UTC")
        assert isinstance(trigger, IntervalTrigger) and trigger.interval.total_seconds() == seconds
        now = datetime.now(UTC)
        first = trigger.get_next_fire_time(None, now)
        assert first is not None and first - now <= timedelta(seconds=seconds + 1)
    assert Q.schedule(every) == C.schedule(every)
    assert repr(Q.schedule(every)) == repr(C.schedule(every))
    with pytest.raises(ValueError, match="positive interval"):
        Q.schedule(0).to_trigger()
    with pytest.raises(TypeError, match="number of seconds or a timedelta"):
        Q.schedule("10")  # type: ignore[arg-type]


@pytest.mark.parametrize("seconds", [1.5, 7, 90, 3600, 5400, 86400])
@pytest.mark.parametrize("relative", [False, True])
def test_interval_estimates_equal_celery(seconds: float, relative: bool) -> None:
    base = datetime(2024, 5, 1, 10, 7, 30, 250000, tzinfo=UTC)
    for offset in (0.0, 0.4, 1.0, 2.5):
        now = base + timedelta(seconds=seconds * offset)
        theirs = C.schedule(seconds, relative, app=celery_app(), nowfun=lambda now=now: now)
        ours = Q.schedule(seconds, relative, app=compat_app(), nowfun=lambda now=now: now)
        assert ours.remaining_estimate(base) == theirs.remaining_estimate(base), offset
        assert tuple(ours.is_due(base)) == tuple(theirs.is_due(base)), offset
    # The relative trigger fires on the interval's clock boundaries, as Celery's next runs do.
    trigger = Q.schedule(seconds, relative, app=compat_app()).to_trigger()
    fire = trigger.get_next_fire_time(base, now)
    assert fire is not None and fire == now + theirs.remaining_estimate(base)


@pytest.mark.parametrize("event", sorted(C.solar._all_events))
def test_solar_matches_celery(event: str) -> None:
    pytest.importorskip("ephem")
    now = datetime(2024, 6, 10, 15, 0, tzinfo=UTC)
    for lat, lon in [(51.5, -0.1), (-33.9, 18.4), (78.2, 15.6)]:
        theirs = C.solar(event, lat, lon, app=celery_app(), nowfun=lambda: now)
        ours = Q.solar(event, lat, lon, app=compat_app(), nowfun=lambda: now)
        last = now - timedelta(hours=30)
        assert abs((ours.remaining_estimate(last) - theirs.remaining_estimate(last)).total_seconds()) < 0.01
        assert ours.is_due(last).is_due == theirs.is_due(last).is_due
        fire = ours.to_trigger().get_next_fire_time(None, now)
        assert fire is not None and abs((fire - (now + theirs.remaining_estimate(now))).total_seconds()) < 0.01


def test_solar_rejects_what_celery_rejects() -> None:
    pytest.importorskip("ephem")
    for args in [("moonrise", 0, 0), ("sunrise", 91, 0), ("sunrise", 0, -181)]:
        with pytest.raises(ValueError):
            C.solar(*args)
        with pytest.raises(ValueError):
            Q.solar(*args)


def test_maybe_schedule_rejects_other_types() -> None:
    assert Q.maybe_schedule(None) is None
    cron = Q.crontab()
    assert Q.maybe_schedule(cron) is cron
    with pytest.raises(TypeError, match="crontab"):
        Q.maybe_schedule("*/5 * * * *")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------- on the qtasks timer
def test_schedule_triggers_drive_a_plain_qtasks_timer(app_name: str, redis_url: str, inproc_worker: Any) -> None:
    """The converted triggers run on ``AsyncTimer`` as they are; ``add_call`` fires an arbitrary coroutine."""
    app = qasync.QueueTasks(name=app_name, broker_url=redis_url)
    seen: list[str] = []

    @app.task
    async def collect(tag: str) -> str:
        seen.append(tag)
        return tag

    inproc_worker(app)
    calls: list[float] = []

    async def call() -> None:
        calls.append(time.monotonic())

    async def main() -> None:
        timer = AsyncTimer(app, lease_ttl=2)
        timer.add_task("collect", "interval", trigger=Q.schedule(0.3).to_trigger("UTC"))
        timer.add_task("collect", "relative", trigger=Q.schedule(1, relative=True).to_trigger("UTC"))
        job = timer.add_call(call, Q.schedule(timedelta(seconds=0.3)).to_trigger("UTC"), name="call", key="k")
        assert job.name == "call"
        with pytest.raises(TypeError, match="APScheduler 3 trigger"):
            timer.add_call(call, Q.schedule(1), name="x", key="x")  # type: ignore[arg-type]
        await timer.start()
        try:
            deadline = time.monotonic() + 10
            while (seen.count("interval") < 3 or "relative" not in seen or len(calls) < 3) \
                    and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            await timer.stop()

    asyncio.run(main())
    assert seen.count("interval") >= 3 and "relative" in seen and len(calls) >= 3


# --------------------------------------------------------------------------------------- beat entries
def build_periodic_app(Celery: Any, crontab: Any, name: str, redis_url: str, via_signal: bool) -> Any:
    """The same code for both engines: a beat_schedule plus add_periodic_task (in on_after_configure)."""
    app = Celery(name, broker=redis_url, backend=redis_url, set_as_current=False)

    def setup(sender: Any, **kwargs: Any) -> None:
        sender.add_periodic_task(10.0, add.s(1, 2), name="every-10s", queue="q1", priority=3)
        sender.add_periodic_task(crontab(hour=7, minute=30, day_of_week=1), add.s(5, y=6), expires=30)
        sender.add_periodic_task(30.0, add, args=(7, 8), name="plain-task")
        sender.add_periodic_task(30.0, add.s(2), args=(7,), kwargs={"z": 1}, name="partial")
        sender.add_periodic_task(30.0, add.si(2, 3), args=(7,), name="immutable")

    if via_signal:
        # The order of Celery's periodic-tasks guide: the handler first, the tasks it uses after it.
        app.on_after_configure.connect(setup, weak=False)  # a local function: weak would die with this frame

    @app.task(name="t.add")
    def add(x: int, y: int = 0, z: int = 0) -> int:
        return x + y + z

    app.conf.beat_schedule = {
        "every-5": {"task": "t.add", "schedule": 5.0, "args": (1, 1)},
        "weekday-mornings": {"task": "t.add", "schedule": crontab(minute=0, hour=7, day_of_week="mon-fri"),
                             "kwargs": {"x": 1, "y": 2}, "options": {"queue": "q2"}},
        "hourly-relative": {"task": "t.add", "schedule": timedelta(hours=1), "relative": True, "args": [0, 0]},
    }
    if not via_signal:
        setup(app)  # after the assignment: Celery's assignment replaces entries added before it
    return app


@needs_app
@pytest.mark.parametrize("via_signal", [False, True], ids=["direct", "on_after_configure"])
def test_beat_reads_the_same_entries_as_celery(app_name: str, redis_url: str, via_signal: bool) -> None:
    from celery.beat import Scheduler

    from qtasks_compat.app import Celery
    from qtasks_compat.beat import Beat

    capp = build_periodic_app(celery.Celery, C.crontab, app_name, redis_url, via_signal)
    theirs = Scheduler(capp, lazy=True)
    theirs.setup_schedule()
    qapp = build_periodic_app(Celery, Q.crontab, app_name, redis_url, via_signal)
    ours = Beat(qapp).load_entries()
    assert len(theirs.schedule) == 8
    assert set(ours) == set(theirs.schedule), (set(ours), set(theirs.schedule))
    for name, entry in ours.items():
        ref = theirs.schedule[name]
        assert (entry.task, tuple(entry.args), dict(entry.kwargs), dict(entry.options)) == (
            ref.task, tuple(ref.args), dict(ref.kwargs), dict(ref.options)), name
        assert repr(entry.schedule) == repr(ref.schedule), name
        if isinstance(entry.schedule, Q.schedule):
            assert entry.schedule.relative == ref.schedule.relative


@needs_app
def test_bad_beat_entries_raise_clear_errors(app_name: str, redis_url: str) -> None:
    from qtasks_compat.app import Celery
    from qtasks_compat.beat import Beat

    for bad, match in [({"schedule": 5}, "needs 'task'"), ({"task": "t.add"}, "needs 'schedule'"),
                       ({"task": "t.add", "schedule": "5"}, "a schedule is"),
                       ({"task": "t.add", "schedule": 5, "args": "ab"}, "'args' must be"),
                       ({"task": "t.add", "schedule": 5, "when": 1}, "unknown key")]:
        app = Celery(app_name, broker=redis_url, set_as_current=False)
        app.conf.beat_schedule = {"bad": bad}
        with pytest.raises(TypeError, match=match):
            Beat(app).load_entries()
    app = Celery(app_name, broker=redis_url, set_as_current=False)
    with pytest.raises(TypeError, match="signature"):
        app.add_periodic_task(10, object())


# --------------------------------------------------------------------------------------- two beat processes
QUEUED = re.compile(r"timer queued tick-every-interval as (\S+) \(scheduled (.+)\)")
INTERVAL = 0.5
TTL = 2.0


@needs_worker
@pytest.mark.parametrize("engine_name", ["qtasks"], indirect=True)
def test_two_beat_processes_send_each_fire_once(engine: Any, rclient: Any, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    key = f"{engine.main}:ticks"
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", QTASKS_BROKER_URL=engine.broker_url,
               QTASKS_TEST_APP_NAME=engine.main, BEAT_QUEUE=engine.queue, BEAT_KEY=key,
               BEAT_INTERVAL=str(INTERVAL), BEAT_LEASE_TTL=str(TTL))
    for k in ("QTASKS_BROKER_URL", "QTASKS_TEST_APP_NAME", "BEAT_QUEUE"):
        monkeypatch.setenv(k, env[k])
    monkeypatch.delitem(sys.modules, "tests.apps.c_beat", raising=False)
    mod = importlib.import_module("tests.apps.c_beat")  # the worker runs the same app module
    monkeypatch.delitem(sys.modules, "tests.apps.c_beat")
    engine._apps.append(mod.app)
    engine.start_worker(mod.app)
    logs = [tmp_path / "beat-a.log", tmp_path / "beat-b.log"]
    procs = []
    for log in logs:
        with open(log, "wb") as out:
            procs.append(subprocess.Popen([sys.executable, "-m", "tests.apps.c_beat"], cwd=str(ROOT), env=env,
                                          stdout=out, stderr=subprocess.STDOUT))

    def dump() -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')}" for p in logs)

    try:
        assert wait_until(lambda: rclient.llen(key) >= 6, 20), dump()
        holder = rclient.get(f"{engine.main}:timer:leader")
        assert holder, dump()
        leader = next(p for p in procs if str(p.pid) == holder.split(":")[-2])
        standby = next(p for p in procs if p is not leader)
        leader.send_signal(signal.SIGKILL)
        leader.wait(10)
        before = rclient.llen(key)
        assert wait_until(lambda: rclient.llen(key) >= before + 4, TTL + 10), dump()  # the standby took over
        standby.send_signal(signal.SIGTERM)
        assert standby.wait(15) == 0, dump()  # a clean exit
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
    assert rclient.get(f"{engine.main}:timer:leader") is None, dump()  # handed back at SIGTERM
    fires = [m.groups() for log in logs for m in QUEUED.finditer(log.read_text(errors="replace"))]
    per_time = Counter(when for _, when in fires)
    assert per_time and max(per_time.values()) == 1, per_time.most_common(3)
    sent = {task_id for task_id, _ in fires}
    assert wait_until(lambda: sent <= set(rclient.lrange(key, 0, -1)), 10), dump()
    ran = rclient.lrange(key, 0, -1)
    assert len(ran) == len(set(ran)) <= len(sent) + 1  # the killed leader may have sent one it never logged
    assert "c_beat:hourly" not in ran


@needs_worker
@pytest.mark.parametrize("engine_name", ["qtasks"], indirect=True)
def test_beat_in_a_thread_sends_by_name_and_shuts_down(engine: Any, rclient: Any) -> None:
    """A beat whose app does not import the task publishes with ``send_task``; ``shutdown()`` ends it cleanly."""
    import threading

    from qtasks_compat.beat import Beat

    key = f"{engine.main}:echo"
    worker_app = engine.Celery()

    @worker_app.task(name="t.echo", bind=True)
    def echo(self: Any, word: str, n: int = 0) -> str:
        rclient.rpush(key, f"{word}:{n}:{bool((self.request.headers or {}).get('celery_beat_task'))}")
        return word

    engine.start_worker(worker_app)
    beat_app = engine.Celery()  # the same broker and queue, and no tasks
    beat_app.conf.beat_schedule = {"echo": {"task": "t.echo", "schedule": timedelta(seconds=0.3),
                                            "args": ["hi"], "kwargs": {"n": 2}}}
    beat = Beat(beat_app, lease_ttl=2)
    t = threading.Thread(target=beat.run_forever, daemon=True)
    t.start()
    try:
        assert wait_until(lambda: rclient.llen(key) >= 3, 15)
        assert beat.timer.is_leader()
    finally:
        beat.shutdown()
        t.join(15)
    assert not t.is_alive()
    assert rclient.get(f"{engine.main}:timer:leader") is None
    assert set(rclient.lrange(key, 0, -1)) == {"hi:2:True"}
