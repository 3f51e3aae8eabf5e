"""``app.conf``: Celery's settings object, and how those settings reach qtasks.

:class:`Settings` reads configuration the way Celery 5 does: new names and old uppercase names are one
setting (``conf.BROKER_URL is conf.broker_url``), ``config_from_object`` takes a module, a
``"module:attr"`` string, an object or a dict and is read lazily, a namespace (``"CELERY"``) maps
``CELERY_BROKER_URL`` onto ``broker_url``, and a source mixing old and new names raises
:class:`~qtasks_compat.exceptions.ImproperlyConfigured`. The facts about Celery's settings live in the
generated :mod:`qtasks_compat._settings_table`; what each one means here is :data:`TREATMENTS` (also the
source of migration_guide/settings.md). :func:`apply_to_qtasks` pushes the mapped values into a qtasks app.
"""

from __future__ import annotations

import copy
import importlib
import os
import re
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from qtasks_compat._settings_table import SETTINGS
from qtasks_compat.exceptions import CompatWarning, ImproperlyConfigured

__all__ = (
    "TREATMENTS", "QtasksOptions", "Settings", "Treatment", "annotations_for", "apply_to_qtasks",
    "check_serializer", "qtasks_options", "qtasks_storage_url", "route_for_task", "task_modules", "worker_queues",
)

INFO = {s.name: s for s in SETTINGS}
TO_NEW = {old: s.name for s in SETTINGS for old in s.old}
TO_OLD = {s.name: s.old[-1] for s in SETTINGS}
DOC = "migration_guide/settings.md"

# Celery's own wording, so people searching their old error message find the same text.
_E_MIX_OLD_INTO_NEW = ("Cannot mix new and old setting keys, please rename the following settings to the new "
                       "format:\n\n{renames}\n")
_E_MIX_NEW_INTO_OLD = ("Cannot mix new setting names with old setting names, please rename the following "
                       "settings to use the old format:\n\n{renames}\n\nOr change all of the settings to use the "
                       "new format :)\n")
_E_ENVVAR = ("The environment variable {0!r} is not set, and as such the configuration could not be loaded. "
             "Please set this variable and make sure it points to a valid configuration module "
             '(example: {0}="proj.celeryconfig").')
_HIDDEN = re.compile("API|TOKEN|KEY|SECRET|PASS|PROFANITIES_LIST|SIGNATURE|DATABASE|BEAT_DBURI", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?P<head>[a-z0-9+.-]+://[^:/@]*:)(?P<pw>[^@]+)(?=@)", re.IGNORECASE)


# ------------------------------------------------------------------------------------------------ Settings
class _AttributeMapping(Mapping[str, Any]):
    """A read-only mapping view of an object's attributes (a settings module or Django's ``settings``)."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self.obj, key)
        except AttributeError:
            raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and hasattr(self.obj, key)

    def __iter__(self) -> Iterator[str]:
        return (k for k in dir(self.obj) if not k.startswith("_"))

    def __len__(self) -> int:
        return sum(1 for _ in self)


class Settings(MutableMapping[str, Any]):
    """Celery's ``app.conf``: attribute and item access over changes > configuration source > defaults.

    Writes go to the changes; ``changes`` may be given (the app's constructor settings, ``auto_keys``).
    ``on_configure(settings)`` is called once the source has been read (Celery's ``on_after_configure``).
    """

    def __init__(self, changes: Mapping[str, Any] | None = None, *, namespace: str | None = None,
                 auto_keys: set[str] | None = None, on_configure: Callable[[Settings], None] | None = None) -> None:
        _set = object.__setattr__
        _set(self, "_changes", dict(changes or {}))
        # Keys the app set from its constructor arguments: never part of the old/new mixing check (Celery).
        _set(self, "_auto", set(auto_keys or ()))
        _set(self, "_defaults", [{s.name: copy.deepcopy(s.default) for s in SETTINGS}])
        _set(self, "_prefix", _norm_prefix(namespace))
        _set(self, "_source_spec", None)
        _set(self, "_source_silent", False)
        _set(self, "_source", None)
        _set(self, "_finalized", False)
        _set(self, "_lock", threading.RLock())
        _set(self, "_on_configure", on_configure)

    # -------------------------------------------------------------------------------------- loading
    def config_from_object(self, obj: Any, silent: bool = False, force: bool = False,
                           namespace: str | None = None) -> None:
        """Use ``obj`` (module, ``"module"``, ``"module:attr"``, object or dict) as the configuration source.

        Read at the first access to a setting, as Celery does (``force=True``: now). ``silent`` ignores a
        source that cannot be imported. ``namespace="CELERY"``: ``CELERY_<NAME>`` is the ``<name>`` setting.
        """
        with self._lock:
            _set = object.__setattr__
            _set(self, "_source_spec", obj)
            _set(self, "_source_silent", silent)
            _set(self, "_source", None)
            if namespace:
                _set(self, "_prefix", _norm_prefix(namespace))
            if force or self._finalized:
                _set(self, "_finalized", False)
                self.finalize()

    def config_from_envvar(self, variable_name: str, silent: bool = False, force: bool = False) -> bool:
        """``config_from_object(os.environ[variable_name])``; False (silent) or ImproperlyConfigured if unset."""
        module_name = os.environ.get(variable_name)
        if not module_name:
            if silent:
                return False
            raise ImproperlyConfigured(_E_ENVVAR.format(variable_name))
        self.config_from_object(module_name, silent=silent, force=force)
        return True

    def add_defaults(self, defaults: Mapping[str, Any]) -> None:
        """Layer ``defaults`` above Celery's defaults (below anything the user set)."""
        self._defaults.insert(0, dict(defaults))

    def finalize(self) -> Settings:
        """Read the configuration source, check old/new mixing and warn about settings without effect."""
        if self._finalized:
            return self
        with self._lock:
            if self._finalized:
                return self
            source: Mapping[str, Any] | None = None
            if self._source_spec is not None:
                source = _load_source(self._source_spec, self._source_silent)
            object.__setattr__(self, "_source", source)
            if not self._prefix:
                _check_mixing(set(source) if source is not None else set(self._changes) - self._auto)
            object.__setattr__(self, "_finalized", True)
            for name in self.user_settings():
                _check_setting(name, self[name])
        if self._on_configure is not None:
            self._on_configure(self)
        return self

    @property
    def configured(self) -> bool:
        return bool(self._finalized)

    # -------------------------------------------------------------------------------------- lookup
    def _keys_for(self, key: str) -> list[str]:
        # Celery's order: the namespaced name, the name itself, then its new and old spellings.
        keys = [key]
        prefix = self._prefix
        if prefix and not key.startswith(prefix):
            pkey = prefix + key
            keys.insert(0, pkey.upper() if prefix.isupper() else pkey.lower())
        for alt in (TO_NEW.get(key, key), TO_OLD.get(key, key)):
            if alt not in keys:
                keys.append(alt)
        return keys

    def _layers(self) -> list[Mapping[str, Any]]:
        self.finalize()
        layers: list[Mapping[str, Any]] = [self._changes]
        if self._source is not None:
            layers.append(self._source)
        return layers + self._defaults

    def __getitem__(self, key: str) -> Any:
        keys = self._keys_for(key)
        for layer in self._layers():
            for k in keys:
                if k in layer:
                    return layer[k]
        raise KeyError(key)

    def __setitem__(self, key: str, value: Any) -> None:
        self._changes[key] = value
        if self._finalized:
            name = _canonical(key, self._prefix)
            if name is not None:
                _check_setting(name, value)

    def __delitem__(self, key: str) -> None:
        del self._changes[key]

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        keys = self._keys_for(key)
        # Before configuration Celery answers from the pending changes only (and stays lazy): so do we.
        layers = self._layers() if self._finalized else [self._changes]
        return any(k in layer for layer in layers for k in keys)

    def setdefault(self, key: str, default: Any = None) -> Any:
        if self._finalized:
            return super().setdefault(key, default)
        # Lazy like Celery's: before configuration only the pending changes count (not the defaults).
        if key not in self:
            self._changes[key] = default
        return next(self._changes[k] for k in self._keys_for(key) if k in self._changes)

    def __iter__(self) -> Iterator[str]:
        seen: dict[str, None] = {}
        for layer in self._layers():
            seen.update(dict.fromkeys(layer))
        return iter(seen)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"<Settings: {len(self._changes)} changes, source={self._source_spec!r}>"

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"Settings has no setting {key!r}") from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __delattr__(self, key: str) -> None:
        del self[key]

    def clear(self) -> None:
        """Forget every change (the configuration source and the defaults stay), as Celery does."""
        self._changes.clear()

    def copy(self) -> dict[str, Any]:
        return dict(self.items())

    def first(self, *keys: str) -> Any:
        """The first of ``keys`` whose value is not None."""
        return next((v for v in (self.get(k) for k in keys) if v is not None), None)

    def value_set_for(self, key: str) -> bool:
        """True when ``key`` (any spelling) was set by the user rather than taken from the defaults."""
        keys = self._keys_for(key)
        return any(k in layer for layer in self._layers()[:-len(self._defaults)] for k in keys)

    def user_settings(self) -> list[str]:
        """The Celery settings (new names) set in the changes or the configuration source."""
        self.finalize()
        found: dict[str, None] = {}
        for layer in self._layers()[:-len(self._defaults)]:
            for key in layer:
                name = _canonical(key, self._prefix)
                if name is not None:
                    found[name] = None
        return list(found)

    def without_defaults(self) -> dict[str, Any]:
        """The settings the user set (changes over the configuration source)."""
        out: dict[str, Any] = {}
        for layer in reversed(self._layers()[:-len(self._defaults)]):
            out.update({k: layer[k] for k in layer})
        return out

    def table(self, with_defaults: bool = False, censored: bool = True) -> dict[str, Any]:
        """Settings as a dict (only the user's unless ``with_defaults``), secrets masked when ``censored``."""
        data = dict(self.items()) if with_defaults else self.without_defaults()
        data = {k: v for k, v in data.items() if not k.startswith("_")}
        return {k: _censor(k, v) for k, v in data.items()} if censored else data

    def humanize(self, with_defaults: bool = False, censored: bool = True) -> str:
        """``key: value`` lines of :meth:`table`."""
        return "\n".join(f"{k}: {v!r}" for k, v in self.table(with_defaults, censored).items())

    # Celery's computed settings (attribute access only, as in Celery: ``conf["broker_url"]`` skips the env).
    @property
    def broker_url(self) -> Any:
        return os.environ.get("CELERY_BROKER_URL") or self.first("broker_url", "broker_host")

    @property
    def broker_read_url(self) -> Any:
        return os.environ.get("CELERY_BROKER_READ_URL") or self.get("broker_read_url") or self.broker_url

    @property
    def broker_write_url(self) -> Any:
        return os.environ.get("CELERY_BROKER_WRITE_URL") or self.get("broker_write_url") or self.broker_url

    @property
    def result_backend(self) -> Any:
        return os.environ.get("CELERY_RESULT_BACKEND") or self.first("result_backend", "CELERY_RESULT_BACKEND")

    @property
    def timezone(self) -> Any:
        return self.first("timezone", "TIME_ZONE")  # TIME_ZONE: Django's setting, as Celery reads it

    @property
    def task_default_exchange(self) -> Any:
        return self.first("task_default_exchange", "task_default_queue")

    @property
    def task_default_routing_key(self) -> Any:
        return self.first("task_default_routing_key", "task_default_queue")


def _norm_prefix(namespace: str | None) -> str | None:
    return namespace.rstrip("_") + "_" if namespace else None


def _canonical(key: str, prefix: str | None) -> str | None:
    """The new name of the Celery setting ``key`` stands for in a source read with ``prefix``, or None."""
    if prefix and key.upper().startswith(prefix.upper()):
        bare = key[len(prefix):].lower()
        if bare in INFO:
            return bare
    if key in INFO:
        return key
    return TO_NEW.get(key)


def _load_source(spec: Any, silent: bool) -> Mapping[str, Any] | None:
    obj = spec
    if isinstance(spec, str):
        try:
            obj = _import_object(spec)
        except (ImportError, AttributeError):
            if silent:
                return None
            raise
    return obj if isinstance(obj, Mapping) else _AttributeMapping(obj)


def _import_object(path: str) -> Any:
    """``"pkg.mod"``, ``"pkg.mod:attr"`` or ``"pkg.mod.attr"``; the working directory is importable (Celery)."""
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        if ":" in path:
            module_name, _, attr = path.partition(":")
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
            return obj
        try:
            return importlib.import_module(path)
        except ImportError:
            module_name, _, attr = path.rpartition(".")
            if not module_name:
                raise
            return getattr(importlib.import_module(module_name), attr)
    finally:
        if added:
            sys.path.remove(cwd)


def _check_mixing(have: set[str]) -> None:
    """Celery's rule: the majority style wins; a key of the other style without its twin is an error."""
    in_new = have & INFO.keys()
    in_old = have & TO_NEW.keys()
    if in_old and len(in_old) > len(in_new):
        left, convert, message = in_new, TO_OLD, _E_MIX_NEW_INTO_OLD
    else:
        left, convert, message = in_old, TO_NEW, _E_MIX_OLD_INTO_NEW
    really_left = sorted(k for k in left if convert[k] not in have)
    if really_left:
        renames = "\n".join(f"{k:<36} -> {convert[k]}" for k in really_left)
        raise ImproperlyConfigured(message.format(renames=renames))


def _censor(key: str, value: Any) -> Any:
    if isinstance(key, str) and _HIDDEN.search(key):
        return "********"
    if isinstance(value, str) and "://" in value:
        return _URL_PASSWORD.sub(lambda m: m.group("head") + "********", value)
    return value


# ------------------------------------------------------------------------------------------------ treatments
ANY = object()
"""``Treatment.ok`` value: every value is fine (the setting is accepted, qtasks behaves one way)."""


@dataclass(frozen=True)
class Treatment:
    kind: str
    """``mapped`` (value used), ``compatible`` (qtasks behaves like ``ok``), ``ignored`` (warns),
    ``unsupported`` (a value that cannot be honoured raises when the qtasks app is built)."""
    note: str
    ok: tuple[Any, ...] = ()
    """compatible: the values that need no warning (``(ANY,)``: all)."""


def _m(note: str) -> Treatment:
    return Treatment("mapped", note)


def _c(note: str, *ok: Any) -> Treatment:
    return Treatment("compatible", note, ok)


def _i(note: str) -> Treatment:
    return Treatment("ignored", note)


def _u(note: str) -> Treatment:
    return Treatment("unsupported", note)


_JSON_NOTE = "JSON only: any other value raises (pickle: NotImplementedError)"
_EXPLICIT: dict[str, Treatment] = {
    "accept_content": _m("checked: " + _JSON_NOTE),
    "result_accept_content": _m("checked: " + _JSON_NOTE),
    "enable_utc": _m("beat: crontab times are UTC when true and `timezone` is unset"),
    "imports": _m("modules the worker and beat import at start (`task_modules()`)"),
    "include": _m("modules the worker and beat import at start (`task_modules()`)"),
    "timezone": _m("beat: the timezone crontab entries are evaluated in"),
    "beat_schedule": _m("entries run on the qtasks Timer (leader-elected)"),
    "beat_cron_starting_deadline": _m("beat: crontab runs missed by more than this are skipped"),
    "beat_scheduler": _c("schedules always run on the qtasks Timer (database schedulers are not read)",
                         "celery.beat:PersistentScheduler", "celery.beat:Scheduler"),
    "beat_enable_remote_control": _c("beat has no remote control", False),
    "broker_url": _m("qtasks broker URL (redis://, rediss://, sqlite://, postgresql://, amqp://, ...)"),
    "broker_transport_options": _m("`visibility_timeout` -> `QueueConfig.lease_timeout`; other keys warn"),
    "broker_connection_retry": _c("qtasks always reconnects, with back-off up to `reconnect_max_delay`", True),
    "broker_connection_retry_on_startup": _c("qtasks always retries the first connection too", True, None),
    "broker_use_ssl": _u("a true value raises: put TLS in the URL (`rediss://...?ssl_cert_reqs=required`)"),
    "redis_backend_use_ssl": _u("a true value raises: put TLS in the result_backend URL (`rediss://...`)"),
    "result_backend": _m("qtasks storage URL (redis, postgresql via `db+postgresql://`, sqlite via "
                         "`db+sqlite://`); `rpc://`: the broker's storage; others raise"),
    "result_compression": _c("results are stored uncompressed", None),
    "result_chord_retry_interval": _m("longest pause between `celery.chord_unlock` polls (canvas.md)"),
    "result_expires": _m("-> `QueueConfig.result_ttl` (seconds; None or 0 keeps results forever)"),
    "result_extended": _c("records always keep the task name, args and kwargs", True, False),
    "result_backend_transport_options": _m("`global_keyprefix` is used with `qtasks_celery_results=True` "
                                           "(Celery-format results, side_by_side.md); other keys are ignored"),
    "result_failure_expires": _m("with `qtasks_celery_results=True`: how long FAILURE results are kept"),
    "result_serializer": _m("checked: " + _JSON_NOTE),
    "task_acks_late": _m("default of `Task.acks_late`"),
    "task_acks_on_failure_or_timeout": _c("a failed or timed-out task is acknowledged (stored as FAILURE)", True),
    "task_acks_on_failure": _c("a failed task is acknowledged (stored as FAILURE)", True, None),
    "task_acks_on_timeout": _c("a timed-out task is acknowledged (stored as FAILURE)", True, None),
    "task_always_eager": _m("-> `QueueConfig.eager`; `Task.apply_async` runs the task inline"),
    "task_annotations": _m("dict / list-of-dicts form: per-task attribute overrides (`annotations_for()`)"),
    "task_compression": _c("messages are sent uncompressed", None),
    "task_create_missing_queues": _c("queues are created on first use", True),
    "task_default_queue": _m("the default queue name (qtasks `MultiQueueBroker.default_queue`)"),
    "task_default_rate_limit": _m("default of `Task.rate_limit` (per worker)"),
    "task_queue_max_priority": _m("with `qtasks_celery_protocol=True`: the `x-max-priority` the Celery queues "
                                  "are declared with (AMQP); ignored otherwise"),
    "task_default_priority": _m("-> `QueueConfig.task_default_priority`"),
    "task_eager_propagates": _m("-> `QueueConfig.eager_propagates`; eager failures re-raise"),
    "task_ignore_result": _m("default of `Task.ignore_result`"),
    "task_protocol": _c("qtasks has one message format", 2),
    "task_publish_retry": _c("publishing retries while the broker is unreachable", True),
    "task_queues": _m("names of the queues a worker consumes without -Q (`worker_queues()`); "
                      "exchange and routing-key options are not used"),
    "task_reject_on_worker_lost": _c("a task held by a dead worker is delivered again after `lease_timeout`",
                                     True, None),
    "task_routes": _m("dict (names, globs, regexes), list and router-function forms (`route_for_task()`)"),
    "task_send_sent_event": _c("qtasks emits no Celery events", False),
    "task_serializer": _m("checked: " + _JSON_NOTE),
    "task_soft_time_limit": _m("default of `Task.soft_time_limit` (SoftTimeLimitExceeded in the task)"),
    "task_time_limit": _m("default of `Task.time_limit` (the task is stopped)"),
    "task_track_started": _m("default of `Task.track_started` (STARTED is stored)"),
    "worker_concurrency": _m("-> `QueueConfig.max_tasks_process` (None: the CPU count, as Celery)"),
    "worker_disable_rate_limits": _m("when true, `rate_limit` is not applied"),
    "worker_prefetch_multiplier": _c("accepted: a qtasks worker never holds more tasks than free slots "
                                     "(Celery's `-O fair` with a multiplier of 1)", ANY),
    "worker_disable_prefetch": _c("a qtasks worker never prefetches beyond its free slots", ANY),
    "worker_enable_prefetch_count_reduction": _c("a qtasks worker never prefetches beyond its free slots", ANY),
    "worker_deduplicate_successful_tasks": _c("a task whose record is final never runs again", True, False),
    "worker_send_task_events": _c("qtasks emits no Celery events", False),
}
# Groups of settings without a qtasks meaning, by name prefix (longest first wins).
_GROUPS: dict[str, str] = {
    "beat_": "the qtasks Timer keeps no schedule file and needs no tuning here",
    "broker_": "qtasks brokers take their options from `broker_url`",
    "cache_": "result-backend setting: results live in the qtasks storage",
    "cassandra_": "result-backend setting: results live in the qtasks storage",
    "s3_": "result-backend setting: results live in the qtasks storage",
    "azureblockblob_": "result-backend setting: results live in the qtasks storage",
    "gcs_": "result-backend setting: results live in the qtasks storage",
    "couchbase_": "result-backend setting: results live in the qtasks storage",
    "arangodb_": "result-backend setting: results live in the qtasks storage",
    "mongodb_": "result-backend setting: results live in the qtasks storage",
    "cosmosdbsql_": "result-backend setting: results live in the qtasks storage",
    "elasticsearch_": "result-backend setting: results live in the qtasks storage",
    "database_": "result-backend setting: results live in the qtasks storage (`db+postgresql://` URL)",
    "redis_": "result-backend setting: put connection options in the `result_backend` URL",
    "control_": "remote control uses no pidbox queues (revoke is stored)",
    "event_": "qtasks emits no Celery events",
    "security_": "message signing is not supported (`task_serializer='auth'` raises)",
    "result_": "the qtasks storage has no such option",
    "task_": "AMQP / Celery worker detail without a qtasks equivalent",
    "worker_": "Celery worker/pool detail without a qtasks equivalent (no child processes, the CLI sets logging)",
}


def _treatment(name: str) -> Treatment:
    if name in _EXPLICIT:
        return _EXPLICIT[name]
    for prefix in sorted(_GROUPS, key=len, reverse=True):
        if name.startswith(prefix):
            return _i(_GROUPS[prefix])
    return _i("no qtasks equivalent")


TREATMENTS: dict[str, Treatment] = {s.name: _treatment(s.name) for s in SETTINGS}

_warned: set[str] = set()
_warned_lock = threading.Lock()


def _warn_once(key: str, message: str) -> None:
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(f"{message} (see {DOC})", CompatWarning, stacklevel=4)


def _check_setting(name: str, value: Any) -> None:
    """Warn (once per setting per process) when ``value`` of setting ``name`` has no effect on qtasks."""
    t = TREATMENTS.get(name)
    if t is None:
        return
    if t.kind == "ignored" or (t.kind == "compatible" and ANY not in t.ok and not _in(value, t.ok)):
        _warn_once(name, f"Celery setting {name!r} = {_censor(name, value)!r} has no effect on qtasks_compat: "
                         f"{t.note}")
    elif name == "broker_transport_options" and isinstance(value, Mapping):
        for opt in value:
            if opt != "visibility_timeout":
                _warn_once(f"{name}[{opt!r}]", f"Celery setting broker_transport_options[{opt!r}] has no effect "
                                               "on qtasks_compat (only 'visibility_timeout' is used)")


def _in(value: Any, allowed: tuple[Any, ...]) -> bool:
    # ``True == 1``: compare with the type too, so ``2`` is not taken for ``True``.
    return any(value is a or (type(value) is type(a) and value == a) for a in allowed)


# ------------------------------------------------------------------------------------------------ qtasks
_JSON = {"json", "application/json"}
_PICKLE = {"pickle", "application/x-python-serialize"}


def check_serializer(value: Any, setting: str) -> None:
    """Raise unless ``value`` (a serializer name or a list of content types) is JSON only."""
    names = [value] if isinstance(value, str) or value is None else list(value)
    for name in names:
        if name is None or (isinstance(name, str) and name.lower() in _JSON):
            continue
        if isinstance(name, str) and name.lower() in _PICKLE:
            raise NotImplementedError(
                f"{setting}={value!r}: pickle is not supported by qtasks_compat. Messages and results are JSON "
                "only, because a worker that unpickles a message runs whatever code its producer put in it. "
                f"Send JSON-serializable arguments and results (see {DOC}).")
        raise ImproperlyConfigured(f"{setting}={value!r}: qtasks_compat speaks JSON only; {name!r} is not "
                                   f"supported. Use 'json' (see {DOC}).")


@dataclass(frozen=True)
class QtasksOptions:
    """What the compat core needs from the settings to build and run its qtasks app."""

    broker_url: str
    storage_url: str | None
    default_queue: str
    worker_queues: list[str]
    modules: list[str]
    config: dict[str, Any] = field(default_factory=dict)
    """``QueueConfig`` field -> value."""


def qtasks_options(conf: Settings) -> QtasksOptions:
    """Validate ``conf`` and compute the qtasks side of it (raises for unsupported values)."""
    for setting in ("task_serializer", "result_serializer", "accept_content", "result_accept_content"):
        check_serializer(conf.get(setting), setting)
    for setting in ("broker_use_ssl", "redis_backend_use_ssl"):
        if conf.get(setting):
            raise ImproperlyConfigured(f"{setting} is not supported by qtasks_compat: {TREATMENTS[setting].note} "
                                       f"(see {DOC})")
    cfg: dict[str, Any] = {
        "max_tasks_process": _concurrency(conf.get("worker_concurrency")),
        "result_ttl": result_ttl(conf.get("result_expires")),
        "eager": bool(conf.get("task_always_eager")),
        "eager_propagates": bool(conf.get("task_eager_propagates")),
    }
    if conf.get("task_default_priority") is not None:
        cfg["task_default_priority"] = int(conf["task_default_priority"])
    vt = (conf.get("broker_transport_options") or {}).get("visibility_timeout")
    if vt is not None:
        if not isinstance(vt, (int, float)) or vt <= 0:
            raise ImproperlyConfigured(f"broker_transport_options['visibility_timeout'] must be seconds > 0, "
                                       f"got {vt!r}")
        cfg["lease_timeout"] = float(vt)
    broker_url = conf.broker_url or "redis://localhost:6379/0"
    if conf.get("qtasks_celery_protocol") and not broker_url.startswith("celery+"):
        broker_url = f"celery+{broker_url}"  # Celery's wire protocol (side by side with Celery workers)
    if broker_url.startswith("celery+") and conf.get("task_queue_max_priority") is not None:
        # Declared like Celery's queues (RabbitMQ refuses a second declaration with another x-max-priority).
        sep = "&" if "?" in broker_url else "?"
        broker_url = f"{broker_url}{sep}max_priority={int(conf['task_queue_max_priority'])}"
    return QtasksOptions(
        broker_url=broker_url,
        storage_url=celery_results_url(conf, qtasks_storage_url(conf.result_backend)),
        default_queue=conf.get("task_default_queue") or "celery",
        worker_queues=worker_queues(conf),
        modules=task_modules(conf),
        config=cfg,
    )


def apply_to_qtasks(conf: Settings, qt_app: Any) -> QtasksOptions:
    """Copy the mapped settings into ``qt_app.config`` (a ``QueueConfig``); returns the options used."""
    opts = qtasks_options(conf)
    for key, value in opts.config.items():
        setattr(qt_app.config, key, value)
    return opts


def result_ttl(value: Any) -> int:
    """``result_expires`` (seconds or timedelta; None/0 never expire) as ``QueueConfig.result_ttl``."""
    if value is None:
        return 0
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise ImproperlyConfigured(f"result_expires must be seconds >= 0 or a timedelta, got {value!r}")
    return int(seconds)


def _concurrency(value: Any) -> int:
    if value is None or value == "auto":
        return os.cpu_count() or 1
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(f"worker_concurrency must be a positive integer, got {value!r}") from None
    if n < 1:
        raise ImproperlyConfigured(f"worker_concurrency must be a positive integer, got {value!r}")
    return n


def qtasks_storage_url(result_backend: str | None) -> str | None:
    """The qtasks storage URL for Celery's ``result_backend`` (None: the broker's own storage)."""
    if not result_backend or result_backend in ("disabled", "rpc", "rpc://") or result_backend.startswith("rpc://"):
        return None
    scheme, sep, rest = result_backend.partition("://")
    if not sep:
        raise ImproperlyConfigured(f"result_backend {result_backend!r} is not a URL (see {DOC})")
    scheme = scheme.lower()
    if scheme in ("redis", "rediss", "unix", "postgresql", "postgres", "sqlite", "memory"):
        return result_backend
    if scheme.startswith("db+"):
        dialect = scheme[3:].split("+", 1)[0]  # db+postgresql+psycopg2 -> postgresql
        if dialect in ("postgresql", "postgres", "sqlite"):
            return f"{dialect}://{rest}"
    if scheme == "cache+memory":
        return "memory://"
    raise ImproperlyConfigured(f"result_backend {result_backend!r}: qtasks_compat stores results in a qtasks "
                               f"storage (redis://, db+postgresql://, db+sqlite://); see {DOC}")


def celery_results_url(conf: Settings, storage_url: str | None) -> str | None:
    """With ``qtasks_celery_results=True`` a Redis ``result_backend`` is read and written in Celery's own
    format (``celery-task-meta-<id>``), so unchanged Celery clients and workers share the results."""
    if not conf.get("qtasks_celery_results") or storage_url is None:
        return storage_url
    from qtasks.storages.celery_backend import celery_storage_url

    failure = conf.get("result_failure_expires")
    try:
        return celery_storage_url(storage_url, (conf.get("result_backend_transport_options") or {}).get(
            "global_keyprefix"), result_extended=bool(conf.get("result_extended")),
            failure_ttl=None if failure is None else result_ttl(failure))
    except ValueError as e:
        raise ImproperlyConfigured(f"qtasks_celery_results: {e} (see {DOC})") from None


def task_modules(conf: Settings) -> list[str]:
    """``imports`` then ``include``: the modules a worker imports at start."""
    names: list[str] = []
    for setting in ("imports", "include"):
        value = conf.get(setting) or ()
        for name in [value] if isinstance(value, str) else value:
            if name not in names:
                names.append(name)
    return names


def worker_queues(conf: Settings) -> list[str]:
    """The queues a worker consumes without ``-Q``: ``task_queues`` names, else ``task_default_queue``."""
    queues = conf.get("task_queues")
    if not queues:
        return [conf.get("task_default_queue") or "celery"]
    if isinstance(queues, Mapping):
        return list(queues)
    return [q if isinstance(q, str) else q.name for q in queues]


# ------------------------------------------------------------------------------------------------ routing
def route_for_task(conf: Settings, name: str, args: Any = (), kwargs: Any = None,
                   options: Mapping[str, Any] | None = None, task: Any = None) -> dict[str, Any]:
    """Celery's routing: options, merged over the first ``task_routes`` match, with a ``queue`` name.

    Explicit options win over the route (None values do not count); without a queue the result has
    ``task_default_queue``.
    """
    opts = {k: v for k, v in (options or {}).items() if v is not None}
    route: Any = None
    for router in _routers(conf.get("task_routes")):
        if hasattr(router, "route_for_task"):  # pre-4.0 router class
            route = router.route_for_task(name, args, kwargs)
        else:
            route = router(name, args, kwargs or {}, opts, task=task)
        if route is not None:
            break
    merged = dict(_expand(route)) if route is not None else {}
    merged.update(opts)
    if merged.get("queue") is None:
        merged["queue"] = conf.get("task_default_queue") or "celery"
    elif not isinstance(merged["queue"], str):
        merged["queue"] = merged["queue"].name  # a kombu Queue
    return merged


def _expand(route: Any) -> dict[str, Any]:
    return {"queue": route} if isinstance(route, str) else dict(route)


def _routers(routes: Any) -> list[Any]:
    if not routes:
        return []
    if not isinstance(routes, (list, tuple)):
        routes = [routes]
    out = []
    for r in routes:
        if isinstance(r, (Mapping, list, tuple)):
            out.append(_MapRoute(r))
        elif isinstance(r, str):
            obj = _import_object(r)
            out.append(obj() if isinstance(obj, type) and hasattr(obj, "route_for_task") else obj)
        else:
            out.append(r)
    return out


class _MapRoute:
    """``{"name": route, "glob*": route, re.compile(...): route}``: exact names first, then patterns in order."""

    def __init__(self, routes: Any) -> None:
        pairs = routes.items() if isinstance(routes, Mapping) else routes
        self.exact: dict[str, Any] = {}
        self.patterns: list[tuple[re.Pattern[str], Any]] = []
        for key, route in pairs:
            if isinstance(key, re.Pattern):
                self.patterns.append((key, route))
            elif "*" in key:
                import fnmatch

                self.patterns.append((re.compile(fnmatch.translate(key)), route))
            else:
                self.exact[key] = route

    def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if name in self.exact:
            return _expand(self.exact[name])
        for regex, route in self.patterns:
            if regex.match(name):
                return _expand(route)
        return None


# ------------------------------------------------------------------------------------------------ annotations
def annotations_for(conf: Settings, name: str, task: Any = None) -> dict[str, Any]:
    """Attribute overrides ``task_annotations`` gives task ``name``: its own entry, then ``'*'`` (Celery's order)."""
    annotations = conf.get("task_annotations")
    if not annotations:
        return {}
    if not isinstance(annotations, (list, tuple)):
        annotations = [annotations]
    target = task if task is not None else _Named(name)
    own = anyone = None
    for a in annotations:
        if isinstance(a, str):
            a = _import_object(a)
            a = a() if isinstance(a, type) else a
        if isinstance(a, Mapping):
            own = own if own is not None else (dict(a[name]) if name in a else None)
            anyone = anyone if anyone is not None else (dict(a["*"]) if "*" in a else None)
        else:
            own = own if own is not None else (a.annotate(target) if hasattr(a, "annotate") else None)
            anyone = anyone if anyone is not None else (a.annotate_any() if hasattr(a, "annotate_any") else None)
    out: dict[str, Any] = {}
    for d in (own, anyone):
        for key, value in (d or {}).items():
            if key.startswith("@"):
                raise NotImplementedError(f"task_annotations {key!r}: method wrapping ('@' keys) is not supported "
                                          f"by qtasks_compat; see {DOC}")
            out[key] = value
    return out


@dataclass
class _Named:
    name: str
