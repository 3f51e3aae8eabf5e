"""``celery.schedules`` on APScheduler: ``crontab``, ``schedule``, ``solar``.

Each schedule parses its arguments as Celery does (same expanded sets, same
errors) and converts to an APScheduler 3 trigger with :meth:`BaseSchedule.to_trigger`;
the trigger is the one place where "when is the next run" is computed, and
``remaining_estimate`` / ``is_due`` (for code that calls them) ask it too.

Celery numbers weekdays from Sunday = 0; APScheduler's cron from Monday = 0.
Triggers are therefore given weekday *names*, never numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta, tzinfo
from datetime import timezone as dt_timezone
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

__all__ = [
    "BaseSchedule",
    "CeleryCronTrigger",
    "ParseException",
    "crontab",
    "crontab_parser",
    "maybe_schedule",
    "resolve_timezone",
    "schedstate",
    "schedule",
    "solar",
]

Cronspec = int | str | Iterable[int]

DAYNAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
WEEKDAYS = {name: i for i, name in enumerate(DAYNAMES)}
MONTHNAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
YEARMONTHS = {name: i for i, name in enumerate(MONTHNAMES, 1)}
# Longest February: a day_of_month/month_of_year pair is rejected only if it never occurs.
DAYS_IN_MONTH = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}
MINUTE = timedelta(minutes=1)


class schedstate(NamedTuple):
    """``(is_due, next)``: whether to run now, and seconds until the next check (as in Celery)."""

    is_due: bool
    next: float


class ParseException(Exception):
    """A crontab field could not be parsed."""


# ------------------------------------------------------------------------------------------- timezones
def resolve_timezone(app: Any = None) -> tzinfo:
    """Celery's ``app.timezone``: ``conf.timezone`` if set, else UTC when ``enable_utc`` (default), else local."""
    conf = getattr(app, "conf", None) if app is not None else None
    tz = _conf_get(conf, "timezone", None)
    if tz:
        if isinstance(tz, tzinfo):
            return tz
        if not isinstance(tz, str):
            raise TypeError(f"app.conf.timezone must be a timezone name such as 'Europe/London', got {tz!r}")
        return ZoneInfo(tz)
    if _conf_get(conf, "enable_utc", True):
        return dt_timezone.utc
    from tzlocal import get_localzone  # an APScheduler 3 dependency

    return get_localzone()


def _conf_get(conf: Any, key: str, default: Any) -> Any:
    if conf is None:
        return default
    getter = getattr(conf, "get", None)
    if callable(getter):
        try:
            value = getter(key, default)
        except Exception:  # a Settings object that only answers attributes
            value = getattr(conf, key, default)
    else:
        value = getattr(conf, key, default)
    return default if value is None else value


def _as_tz(tz: tzinfo | str | None, fallback: tzinfo) -> tzinfo:
    if tz is None:
        return fallback
    return ZoneInfo(tz) if isinstance(tz, str) else tz


def _aware(dt: datetime, tz: tzinfo) -> datetime:
    """Celery's ``maybe_make_aware``: a naive datetime is UTC; the result is in ``tz``."""
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        dt = dt.replace(tzinfo=dt_timezone.utc)
    return dt.astimezone(tz)


# ------------------------------------------------------------------------------------------- base
class BaseSchedule:
    """What every schedule shares: ``app``/``nowfun``, the timezone, and due-ness asked of the trigger."""

    def __init__(self, nowfun: Callable[[], datetime] | None = None, app: Any = None) -> None:
        self.nowfun = nowfun
        self._app = app

    @property
    def app(self) -> Any:
        if self._app is not None:
            return self._app
        try:
            from qtasks_compat.local import get_current_app

            return get_current_app()
        except ImportError:  # the compat app is not importable: UTC, as Celery's default app
            return None

    @app.setter
    def app(self, app: Any) -> None:
        self._app = app

    @property
    def tz(self) -> tzinfo:
        return resolve_timezone(self.app)

    def now(self) -> datetime:
        return _aware(self.nowfun(), self.tz) if self.nowfun is not None else datetime.now(self.tz)

    def maybe_make_aware(self, dt: datetime, naive_as_utc: bool = True) -> datetime:
        if not naive_as_utc and (dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None):
            return dt.replace(tzinfo=self.tz)
        return _aware(dt, self.tz)

    def to_trigger(self, timezone: tzinfo | str | None = None) -> BaseTrigger:
        """The APScheduler 3 trigger that fires on this schedule (in ``timezone``, default the app's)."""
        raise NotImplementedError

    def next_run_after(self, last_run_at: datetime) -> datetime:
        """The first run strictly after ``last_run_at`` (aware, in the schedule's timezone)."""
        raise NotImplementedError

    def remaining_estimate(self, last_run_at: datetime) -> timedelta:
        """Time from now until the run that follows ``last_run_at`` (negative when overdue)."""
        # In UTC: Python subtracts two datetimes of one zone by wall clock, wrong across a DST change.
        nxt = self.next_run_after(self.maybe_make_aware(last_run_at))
        return nxt.astimezone(dt_timezone.utc) - self.now().astimezone(dt_timezone.utc)

    def is_due(self, last_run_at: datetime) -> schedstate:
        rem = max(self.remaining_estimate(last_run_at).total_seconds(), 0.0)
        if rem == 0:
            return schedstate(True, max(self.remaining_estimate(self.now()).total_seconds(), 0.0))
        return schedstate(False, rem)

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, BaseSchedule):
            return other.nowfun == self.nowfun
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value, as in Celery


# ------------------------------------------------------------------------------------------- interval
class _RelativeIntervalTrigger(BaseTrigger):
    """Celery's ``schedule(relative=True)``: each run at ``previous + interval`` rounded down to the
    interval's resolution (days, hours, minutes or seconds), never at or before the previous run."""

    def __init__(self, interval: timedelta, timezone: tzinfo) -> None:
        self.interval = interval
        self.timezone = timezone

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime:
        start = (previous_fire_time or now).astimezone(self.timezone)
        if self.interval >= timedelta(days=1):
            # Calendar days: wall-clock addition keeps midnight across DST.
            end = (start.replace(tzinfo=None) + self.interval).replace(tzinfo=self.timezone)
        else:
            end = (start.astimezone(dt_timezone.utc) + self.interval).astimezone(self.timezone)
        rounded, unit = _round_down(end, self.interval)
        while rounded <= start:
            rounded, _ = _round_down((rounded.replace(tzinfo=None) + unit).replace(tzinfo=self.timezone),
                                     self.interval)
        return rounded

    def __str__(self) -> str:
        return f"relative_interval[{self.interval}]"

    def __repr__(self) -> str:
        return f"<_RelativeIntervalTrigger (interval={self.interval!r}, timezone='{self.timezone}')>"


def _round_down(dt: datetime, interval: timedelta) -> tuple[datetime, timedelta]:
    """``dt`` truncated to the resolution of ``interval`` (Celery's ``delta_resolution``), and that unit."""
    secs = interval.total_seconds()
    if secs >= 86400:
        return dt.replace(hour=0, minute=0, second=0, microsecond=0), timedelta(days=1)
    if secs >= 3600:
        return dt.replace(minute=0, second=0, microsecond=0), timedelta(hours=1)
    if secs >= 60:
        return dt.replace(second=0, microsecond=0), MINUTE
    return dt.replace(microsecond=0), timedelta(seconds=1)


class schedule(BaseSchedule):
    """Run every ``run_every`` (seconds or a ``timedelta``); ``relative=True`` rounds each run down to the
    resolution of the interval (whole days, hours, minutes or seconds), as Celery does."""

    def __init__(self, run_every: float | timedelta | None = None, relative: bool = False,
                 nowfun: Callable[[], datetime] | None = None, app: Any = None) -> None:
        if isinstance(run_every, bool) or not isinstance(run_every, (int, float, timedelta, type(None))):
            raise TypeError(f"schedule(run_every=...) takes a number of seconds or a timedelta, got {run_every!r}")
        self.run_every = timedelta(seconds=run_every) if isinstance(run_every, (int, float)) else run_every
        self.relative = bool(relative)
        super().__init__(nowfun=nowfun, app=app)

    @property
    def seconds(self) -> float:
        return max(self.run_every.total_seconds(), 0.0) if self.run_every is not None else 0.0

    def _interval(self) -> timedelta:
        if self.run_every is None or self.run_every <= timedelta(0):
            raise ValueError(f"a periodic schedule needs a positive interval, got run_every={self.run_every!r}")
        return self.run_every

    def to_trigger(self, timezone: tzinfo | str | None = None) -> BaseTrigger:
        tz = _as_tz(timezone, self.tz)
        if self.relative:
            return _RelativeIntervalTrigger(self._interval(), tz)
        # The first run one interval after start, as Celery beat does for a new entry.
        return IntervalTrigger(seconds=self._interval().total_seconds(), timezone=tz)

    def next_run_after(self, last_run_at: datetime) -> datetime:
        if self.relative:
            return _RelativeIntervalTrigger(self._interval(), self.tz).get_next_fire_time(last_run_at, self.now())
        return last_run_at + self._interval()  # what IntervalTrigger does with a previous fire time

    def is_due(self, last_run_at: datetime) -> schedstate:
        rem = max(self.remaining_estimate(last_run_at).total_seconds(), 0.0)
        if rem == 0:
            nxt = self.remaining_estimate(self.now()).total_seconds() if self.relative else self.seconds
            return schedstate(True, nxt if nxt > 0 else self.seconds)
        return schedstate(False, rem)

    @property
    def human_seconds(self) -> str:
        secs = self.seconds
        for unit, size in (("day", 86400.0), ("hour", 3600.0), ("minute", 60.0), ("second", 1.0)):
            if secs >= size:
                n = secs / size
                return f"{n:.2f} {unit}{'s' if n != 1 else ''}"
        return "now"

    def __repr__(self) -> str:
        return f"<freq: {self.human_seconds}>"

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, schedule):
            return self.run_every == other.run_every
        return bool(self.run_every == other)

    def __reduce__(self) -> tuple[Any, ...]:
        return self.__class__, (self.run_every, self.relative, self.nowfun)


# ------------------------------------------------------------------------------------------- crontab
class crontab_parser:
    """Expands one crontab field (``'*/15'``, ``'1,13,30-45,50-59/2'``, ``'mon-fri'``) to a set of ints,
    exactly as Celery's parser: ``max_`` values starting at ``min_``; names of weekdays (Sunday = 0) and of
    months (January = 1) are accepted; a descending range wraps around."""

    ParseException = ParseException

    _range = r"(\w+?)-(\w+)"
    _steps = r"/(\w+)?"
    _star = r"\*"

    def __init__(self, max_: int = 60, min_: int = 0) -> None:
        self.max_ = max_
        self.min_ = min_
        self.pats: tuple[tuple[re.Pattern[str], Callable[[Sequence[str]], list[int]]], ...] = (
            (re.compile(self._range + self._steps), self._range_steps),
            (re.compile(self._range), self._expand_range),
            (re.compile(self._star + self._steps), self._star_steps),
            (re.compile("^" + self._star + "$"), self._expand_star),
        )

    def parse(self, spec: str) -> set[int]:
        acc: set[int] = set()
        for part in spec.split(","):
            if not part:
                raise ParseException(f"empty part in crontab field {spec!r}")
            acc |= set(self._parse_part(part))
        return acc

    def _parse_part(self, part: str) -> list[int]:
        for regex, handler in self.pats:
            m = regex.match(part)
            if m:
                return handler(m.groups())
        return self._expand_range((part,))

    def _expand_range(self, toks: Sequence[str]) -> list[int]:
        fr = self._expand_number(toks[0])
        if len(toks) > 1:
            to = self._expand_number(toks[1])
            if to < fr:
                return list(range(fr, self.min_ + self.max_)) + list(range(self.min_, to + 1))
            return list(range(fr, to + 1))
        return [fr]

    def _range_steps(self, toks: Sequence[str]) -> list[int]:
        if len(toks) != 3 or not toks[2]:
            raise ParseException("empty filter")
        return self._expand_range(toks[:2])[::int(toks[2])]

    def _star_steps(self, toks: Sequence[str]) -> list[int]:
        if not toks or not toks[0]:
            raise ParseException("empty filter")
        return self._expand_star()[::int(toks[0])]

    def _expand_star(self, *_: Any) -> list[int]:
        return list(range(self.min_, self.max_ + self.min_))

    def _expand_number(self, s: str) -> int:
        if s[:1] == "-":
            raise ParseException("negative numbers not supported")
        try:
            i = int(s)
        except ValueError:
            abbr = s[:3].lower()
            if abbr in YEARMONTHS:
                i = YEARMONTHS[abbr]
            elif abbr in WEEKDAYS:
                i = WEEKDAYS[abbr]
            else:
                raise ValueError(f"Invalid weekday literal {s!r}.") from None
        max_val = self.min_ + self.max_ - 1
        if i > max_val:
            raise ValueError(f"Invalid end range: {i} > {max_val}.")
        if i < self.min_:
            raise ValueError(f"Invalid beginning range: {i} < {self.min_}.")
        return i


class CeleryCronTrigger(CronTrigger):
    """A ``CronTrigger`` whose fields are matched against the wall clock of its timezone, stepping across
    DST changes correctly (APScheduler 3.11's own search adds wall-clock steps in UTC and can skip a
    matching day next to a DST change: ``day='1-7', day_of_week='mon'`` from 2024-03-30 in Berlin).

    A wall time that occurs twice (clocks go back) fires once, at its first occurrence; one that does not
    exist (clocks go forward) fires at the same offset after the change, e.g. 02:30 -> 03:30.
    """

    def __init__(self, *, timezone: tzinfo, **fields: Any) -> None:
        super().__init__(timezone=timezone, **fields)
        self._wall = CronTrigger(timezone=dt_timezone.utc, **fields)

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        # After a fire, search from just past it (not from ``now``): while clocks go back ``now`` reads
        # earlier on the wall than the last fire, and would find the same wall time again.
        start = (previous_fire_time + timedelta(microseconds=1) if previous_fire_time else now)
        start_utc = start.astimezone(dt_timezone.utc)
        wall = start_utc.astimezone(self.timezone).replace(tzinfo=None)
        while True:
            nxt = self._wall.get_next_fire_time(None, wall.replace(tzinfo=dt_timezone.utc))
            if nxt is None:
                return None
            naive = nxt.replace(tzinfo=None)
            for fold in (0, 1):
                real = naive.replace(tzinfo=self.timezone, fold=fold).astimezone(dt_timezone.utc)
                if real >= start_utc:
                    return real.astimezone(self.timezone)
            wall = naive + timedelta(microseconds=1)


class crontab(BaseSchedule):
    """``crontab(minute, hour, day_of_week, day_of_month, month_of_year)`` as in Celery.

    Each field is an int, a set/list of ints or a crontab string. ``day_of_week`` counts from
    Sunday = 0 and accepts names (``'mon-fri'``, ``'sunday'``). A day must match *all* of
    day_of_week, day_of_month and month_of_year (Celery's rule; classic cron ORs the two day fields).
    """

    def __init__(self, minute: Cronspec = "*", hour: Cronspec = "*", day_of_week: Cronspec = "*",
                 day_of_month: Cronspec = "*", month_of_year: Cronspec = "*", **kwargs: Any) -> None:
        self._orig_minute = "*" if minute is None else minute
        self._orig_hour = "*" if hour is None else hour
        self._orig_day_of_week = "*" if day_of_week is None else day_of_week
        self._orig_day_of_month = "*" if day_of_month is None else day_of_month
        self._orig_month_of_year = "*" if month_of_year is None else month_of_year
        self._orig_kwargs = kwargs
        self.hour = self._expand_cronspec(hour, 24)
        self.minute = self._expand_cronspec(minute, 60)
        self.day_of_week = self._expand_cronspec(day_of_week, 7)
        self.day_of_month = self._expand_cronspec(day_of_month, 31, 1)
        self.month_of_year = self._expand_cronspec(month_of_year, 12, 1)
        if not any(day <= DAYS_IN_MONTH[m] for m in self.month_of_year for day in self.day_of_month):
            raise ValueError(f"Invalid crontab: day_of_month {self._orig_day_of_month!r} never occurs in "
                             f"month_of_year {self._orig_month_of_year!r}.")
        unknown = set(kwargs) - {"nowfun", "app"}
        if unknown:
            raise TypeError(f"crontab() got unexpected keyword argument(s): {', '.join(sorted(unknown))}")
        super().__init__(**kwargs)

    @classmethod
    def from_string(cls, crontab: str) -> crontab:
        """``crontab.from_string('*/5 * * * *')``: minute, hour, day of month, month, day of week."""
        fields = crontab.split(" ")
        if len(fields) != 5:
            raise ValueError(f"a crontab string has 5 space-separated fields "
                             f"(minute hour day-of-month month day-of-week), got {crontab!r}")
        minute, hour, day_of_month, month_of_year, day_of_week = fields
        return cls(minute, hour, day_of_week, day_of_month, month_of_year)

    @staticmethod
    def _expand_cronspec(cronspec: Cronspec | None, max_: int, min_: int = 0) -> set[int]:
        if isinstance(cronspec, bool) or cronspec is None:
            raise TypeError(f"a crontab field is an int, a str or an iterable of ints, got {cronspec!r}")
        if isinstance(cronspec, int):
            result = {cronspec}
        elif isinstance(cronspec, str):
            result = crontab_parser(max_, min_).parse(cronspec)
        elif isinstance(cronspec, Iterable):
            result = set(cronspec)
        else:
            raise TypeError(f"a crontab field is an int, a str or an iterable of ints, "
                            f"{type(cronspec)!r} was given")
        for number in result:
            if not isinstance(number, int) or number >= max_ + min_ or number < min_:
                raise ValueError(f"Invalid crontab pattern.  Valid range is {min_}-{max_ - 1 + min_}. "
                                 f"'{number}' was found.")
        return result

    def to_trigger(self, timezone: tzinfo | str | None = None) -> CeleryCronTrigger:
        def field(values: set[int], full: int) -> str:
            return "*" if len(values) == full else ",".join(str(v) for v in sorted(values))

        # Names, not numbers: Celery's 0 is Sunday, APScheduler's 0 is Monday.
        dow = "*" if len(self.day_of_week) == 7 else ",".join(DAYNAMES[d] for d in sorted(self.day_of_week))
        return CeleryCronTrigger(month=field(self.month_of_year, 12), day=field(self.day_of_month, 31),
                           day_of_week=dow, hour=field(self.hour, 24), minute=field(self.minute, 60),
                           second=0, timezone=_as_tz(timezone, self.tz))

    def next_run_after(self, last_run_at: datetime) -> datetime:
        # Cron has minute resolution: the run after 10:05:30 is at 10:06:00 at the earliest.
        start = last_run_at.replace(second=0, microsecond=0) + MINUTE
        nxt = self.to_trigger().get_next_fire_time(None, start)
        if nxt is None:  # cannot happen for a valid crontab; a clear error beats a silent None
            raise RuntimeError(f"{self!r} has no run after {last_run_at}")
        return nxt

    def is_due(self, last_run_at: datetime) -> schedstate:
        rem_secs = self.remaining_estimate(last_run_at).total_seconds()
        due = rem_secs <= 0
        deadline = _conf_get(getattr(self.app, "conf", None), "beat_cron_starting_deadline", None)
        if deadline is not None and rem_secs < 0:
            # A missed run older than the deadline is not caught up.
            since = self.now() - timedelta(seconds=deadline, microseconds=1)
            if self.remaining_estimate(since).total_seconds() > 0:
                due = False
                return schedstate(False, max(self.remaining_estimate(self.now()).total_seconds(), 0.0))
        if due:
            return schedstate(True, max(self.remaining_estimate(self.now()).total_seconds(), 0.0))
        return schedstate(False, rem_secs)

    def __repr__(self) -> str:
        return (f"<crontab: {self._orig_minute} {self._orig_hour} {self._orig_day_of_month} "
                f"{self._orig_month_of_year} {self._orig_day_of_week} (m/h/dM/MY/d)>")

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self._orig_minute, self._orig_hour, self._orig_day_of_week,
                                 self._orig_day_of_month, self._orig_month_of_year), self._orig_kwargs)

    def __setstate__(self, state: dict[str, Any]) -> None:
        BaseSchedule.__init__(self, **state)
        self._orig_kwargs = dict(state)

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, crontab):
            return (other.month_of_year == self.month_of_year and other.day_of_month == self.day_of_month
                    and other.day_of_week == self.day_of_week and other.hour == self.hour
                    and other.minute == self.minute and super().__eq__(other))
        return NotImplemented


# ------------------------------------------------------------------------------------------- solar
# Celery's tables: the horizon of each event, which ephem search finds it, and whether the sun's centre
# (rather than its upper limb) crosses the horizon.
_SOLAR_EVENTS: dict[str, tuple[str, str, bool]] = {
    "dawn_astronomical": ("-18", "next_rising", True),
    "dawn_nautical": ("-12", "next_rising", True),
    "dawn_civil": ("-6", "next_rising", True),
    "sunrise": ("-0:34", "next_rising", False),
    "solar_noon": ("0", "next_transit", False),
    "sunset": ("-0:34", "next_setting", False),
    "dusk_civil": ("-6", "next_setting", True),
    "dusk_nautical": ("-12", "next_setting", True),
    "dusk_astronomical": ("-18", "next_setting", True),
}
SOLAR_MAX_SEARCH_DAYS = 366


class _SolarTrigger(BaseTrigger):
    """Fires at each occurrence of a solar event at (lat, lon), computed offline with ``ephem``."""

    def __init__(self, event: str, lat: float, lon: float, timezone: tzinfo) -> None:
        self.event, self.lat, self.lon, self.timezone = event, lat, lon, timezone

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime:
        import ephem

        horizon, method, use_center = _SOLAR_EVENTS[self.event]
        # A fresh observer per call: ephem observers are mutable and fires run concurrently.
        cal = ephem.Observer()
        cal.lat, cal.lon, cal.elev, cal.horizon, cal.pressure = str(self.lat), str(self.lon), 0, horizon, 0
        sun = ephem.Sun()
        start = ephem.Date((previous_fire_time or now).astimezone(dt_timezone.utc).replace(tzinfo=None))
        kwargs = {"use_center": True} if use_center else {}
        # Near the poles some events skip days (ephem raises CircumpolarError): search on from the next
        # anti-transit, up to a year, and if none, fire then so the schedule is looked at again.
        for _ in range(SOLAR_MAX_SEARCH_DAYS):
            try:
                found = getattr(cal, method)(sun, start=start, **kwargs)
                break
            except ephem.CircumpolarError:
                start = cal.next_antitransit(sun, start=start)
        else:
            found = start
        when: datetime = ephem.Date(found).datetime().replace(tzinfo=dt_timezone.utc)
        return when.astimezone(self.timezone)

    def __str__(self) -> str:
        return f"solar[{self.event} {self.lat} {self.lon}]"

    def __repr__(self) -> str:
        return f"<_SolarTrigger ({self})>"


class solar(BaseSchedule):
    """Run at a solar event (``sunrise``, ``sunset``, ``solar_noon``, ``dawn_civil``/``_nautical``/
    ``_astronomical``, ``dusk_*``) at latitude ``lat`` and longitude ``lon``. Needs ``ephem``."""

    _all_events = frozenset(_SOLAR_EVENTS)

    def __init__(self, event: str, lat: float, lon: float, **kwargs: Any) -> None:
        try:
            import ephem  # noqa: F401
        except ImportError as exc:
            raise NotImplementedError(
                "solar() schedules need the 'ephem' package (pip install ephem); "
                "see migration_guide/beat.md") from exc
        if event not in _SOLAR_EVENTS:
            raise ValueError(f'Argument event "{event}" is invalid, must be one of '
                             f"{', '.join(sorted(_SOLAR_EVENTS))}.")
        if not -90 <= lat <= 90:
            raise ValueError(f"Argument latitude {lat} is invalid, must be between -90 and 90.")
        if not -180 <= lon <= 180:
            raise ValueError(f"Argument longitude {lon} is invalid, must be between -180 and 180.")
        self.event, self.lat, self.lon = event, lat, lon
        super().__init__(**kwargs)

    def to_trigger(self, timezone: tzinfo | str | None = None) -> BaseTrigger:
        return _SolarTrigger(self.event, self.lat, self.lon, _as_tz(timezone, self.tz))

    def next_run_after(self, last_run_at: datetime) -> datetime:
        return self.to_trigger().get_next_fire_time(last_run_at, last_run_at)

    def __repr__(self) -> str:
        return f"<solar: {self.event} at latitude {self.lat}, longitude: {self.lon}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return self.__class__, (self.event, self.lat, self.lon)

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, solar):
            return (other.event, other.lat, other.lon) == (self.event, self.lat, self.lon)
        return NotImplemented


def maybe_schedule(s: float | timedelta | BaseSchedule | None, relative: bool = False,
                   app: Any = None) -> BaseSchedule | None:
    """A schedule from a number of seconds, a ``timedelta`` or a schedule (whose ``app`` is set)."""
    if s is None:
        return None
    if isinstance(s, (int, float, timedelta)) and not isinstance(s, bool):
        return schedule(s, relative, app=app)
    if isinstance(s, BaseSchedule):
        s.app = app
        return s
    raise TypeError(f"a schedule is a number of seconds, a timedelta, crontab(), schedule() or solar(), "
                    f"got {type(s).__name__}")
