"""What qtasks_compat supports, as the checker sees it: one verdict per Celery construct.

Every answer is derived from qtasks_compat itself: settings from :data:`qtasks_compat.config.TREATMENTS`
(the table migration_guide/settings.md is generated from) and the value checks the compat layer runs at
start-up (``check_serializer``, ``qtasks_storage_url``); imported names from the import-alias table and
attribute checks on the qtasks_compat modules; calling options from the signatures of ``apply_async`` and
``send_task``; CLI flags from ``qtasks_compat.cli``. The few option-level differences that only the guide
states are the explicit tables below (each cites its page). Nothing here imports or runs user code.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from dataclasses import dataclass
from typing import Any, Literal

from qtasks_compat import config as _config
from qtasks_compat.install import alias_target

Status = Literal["supported", "review", "unsupported"]
STATUSES: tuple[Status, ...] = ("supported", "review", "unsupported")
MISSING: Any = object()
"""A value the checker could not read statically (not a literal)."""


@dataclass(frozen=True)
class Verdict:
    status: Status
    reason: str
    change: str = ""
    """What to change (empty: nothing)."""


def _ok(reason: str, change: str = "") -> Verdict:
    return Verdict("supported", reason, change)


def _review(reason: str, change: str = "") -> Verdict:
    return Verdict("review", reason, change)


def _no(reason: str, change: str = "") -> Verdict:
    return Verdict("unsupported", reason, change)


# ------------------------------------------------------------------------------------------------ guide tables
# Task decorator options whose behaviour differs (migration_guide/core.md, "Tasks" and "Time limits, acks").
TASK_OPTIONS: dict[str, Verdict] = {
    "acks_late": _review("qtasks always acknowledges after storing the result (acks_late=True semantics); "
                         "acks_late=False has no effect"),
    "acks_on_failure_or_timeout": _review("a failed or timed-out task is always acknowledged"),
    "reject_on_worker_lost": _ok("a task held by a dead worker is delivered again after the lease timeout"),
    "exchange": _review("qtasks routes by queue name only; the exchange is not used"),
    "compression": _no("messages are sent uncompressed; compression raises NotImplementedError",
                       "drop the option"),
    "shared": _review("app.task does not register on apps created later", "use @shared_task for that"),
}
# Methods of a bound task's ``self`` that raise (migration_guide/unsupported.md, "tasks").
TASK_METHODS_UNSUPPORTED: dict[str, str] = {
    "replace": "Task.replace raises NotImplementedError; return a signature and chain it, or call .delay()",
    "add_to_chord": "Task.add_to_chord raises NotImplementedError; build the full chord up front",
    "send_event": "Task.send_event raises NotImplementedError (no task events); use signals",
}
# Signals defined so imports work but never sent (migration_guide/unsupported.md, "signals").
SIGNALS_NEVER_SENT: frozenset[str] = frozenset({
    "eventlet_pool_started", "eventlet_pool_preshutdown", "eventlet_pool_postshutdown", "eventlet_pool_apply",
    "task_sent", "worker_before_create_process",
})
# Schedules with an extra requirement (migration_guide/beat.md).
SCHEDULE_NOTES: dict[str, Verdict] = {
    "solar": _review("solar() needs the 'ephem' package installed (as with Celery)"),
}
# Calling options that raise (migration_guide/core.md "Calling", unsupported.md "calling", "canvas").
CALL_OPTIONS_UNSUPPORTED: dict[str, str] = {
    "compression": "apply_async(compression=...) raises NotImplementedError: messages are uncompressed",
    "stamped_headers": "canvas stamping is not supported; use headers=",
}
# Task ids are UUIDs in qtasks (migration_guide/core.md "Calling").
TASK_ID_NOTE = "a custom task_id must be a UUID (qtasks keys records by UUID); other text raises ValueError"
# qtasks_compat's own settings (not Celery's; Celery keeps unknown names silently, so they are safe in shared code).
QTASKS_SETTINGS: dict[str, str] = {
    "qtasks_app_name": "the qtasks key prefix (default: the app's main name; migration_guide/core.md)",
    "qtasks_celery_protocol": "Celery's wire protocol on the broker: Celery and qtasks workers share queues "
                              "(migration_guide/side_by_side.md)",
    "qtasks_celery_results": "results in Celery's Redis result format (migration_guide/side_by_side.md)",
}
# Extra keyword arguments of Celery(...) that name settings.
CELERY_KWARGS = {"broker": "broker_url", "backend": "result_backend", "include": "include"}


# ------------------------------------------------------------------------------------------------ imports
def import_target(module: str) -> str | None:
    """The qtasks_compat module replacing Celery's ``module`` (None: no counterpart, or not a module here)."""
    target = alias_target(module)
    if target is None:
        return None
    try:
        found = importlib.util.find_spec(target)
    except ModuleNotFoundError:
        return None
    return target if found is not None else None


def _has(module: str, name: str) -> bool:
    mod = importlib.import_module(module)
    try:
        return hasattr(mod, name)
    except NotImplementedError:  # an attribute that exists only to raise
        return False


def for_import(module: str, name: str | None) -> Verdict:
    """``import module`` (``name`` None) or ``from module import name``."""
    target = import_target(module)
    if target is None:
        return _no(f"{module} has no counterpart in qtasks_compat (ModuleNotFoundError)",
                   "remove it; see migration_guide/imports.md")
    if name is None or name == "*":
        return _ok(f"{module} -> {target}", f"{module} -> {target}")
    sub = import_target(f"{module}.{name}")
    if sub is not None or _has(target, name):
        return _ok(f"{target} provides {name}", f"{module} -> {target}")
    return _no(f"{target} has no {name!r} (ImportError)", "see migration_guide/unsupported.md")


def for_signal(name: str) -> Verdict:
    if not _has("qtasks_compat.signals", name):
        return _no(f"qtasks_compat.signals has no signal {name!r}")
    if name in SIGNALS_NEVER_SENT:
        return _review(f"{name} is defined so imports work but is never sent on qtasks")
    return _ok(f"{name} is sent by qtasks_compat")


def for_canvas(name: str) -> Verdict:
    if name in SCHEDULE_NOTES:
        return SCHEDULE_NOTES[name]
    return _ok(f"qtasks_compat provides {name}") if _has("qtasks_compat", name) or _has(
        "qtasks_compat.schedules", name) else _no(f"qtasks_compat has no {name}")


# ------------------------------------------------------------------------------------------------ settings
def setting_name(key: str, *, namespace: str | None = None) -> str | None:
    """Celery 5 name of setting ``key`` (a new name, an old uppercase name or a namespaced name), else None."""
    if namespace:
        prefix = f"{namespace}_"
        if not key.startswith(prefix):
            return None
        stripped = key[len(prefix):].lower()
        if stripped in _config.TREATMENTS:
            return stripped
    if key in _config.TREATMENTS:
        return key
    return _config.TO_NEW.get(key)


def for_setting(name: str, value: Any = MISSING) -> Verdict:
    """Verdict for Celery 5 setting ``name`` set to ``value`` (:data:`MISSING` when not a literal)."""
    t = _config.TREATMENTS.get(name)
    if name in QTASKS_SETTINGS:
        return _ok(f"qtasks_compat setting: {QTASKS_SETTINGS[name]}")
    if t is None:
        return _review(f"{name} is not a Celery 5 setting")
    if name in ("task_serializer", "result_serializer", "accept_content", "result_accept_content"):
        return _serializer(name, value, t.note)
    if name == "result_backend" and isinstance(value, str):
        try:
            _config.qtasks_storage_url(value)
        except Exception as e:
            return _no(str(e).split(";")[0], "use a redis://, db+postgresql:// or db+sqlite:// result backend")
    if t.kind == "mapped":
        return _ok(t.note)
    if t.kind == "compatible":
        if _config.ANY in t.ok or (value is not MISSING and _config._in(value, t.ok)):
            return _ok(t.note)
        shown = "" if value is MISSING else f"{value!r}: "
        return _review(f"{shown}{t.note}")
    if t.kind == "unsupported":
        if value is not MISSING and not value:
            return _ok("false: nothing to honour")
        return _no(t.note)
    return _review(f"accepted without effect: {t.note}", "remove it")


def _serializer(name: str, value: Any, note: str) -> Verdict:
    if value is MISSING:
        return _review(f"value not read statically: {note}")
    try:
        _config.check_serializer(value, name)
    except NotImplementedError:
        return _no(f"{name}={value!r}: qtasks_compat is JSON-only (pickle raises NotImplementedError)",
                   f"{name}='json' with JSON-serializable arguments and results")
    except Exception:
        return _no(f"{name}={value!r}: qtasks_compat is JSON-only", f"{name}='json'")
    return _ok("JSON")


# ------------------------------------------------------------------------------------------------ tasks
def for_task_option(option: str, value: Any = MISSING) -> Verdict:
    from qtasks_compat.task import Task

    if option == "serializer":
        return _serializer("serializer", value, "JSON only")
    if option in TASK_OPTIONS:
        return TASK_OPTIONS[option]
    if option in ("bind", "base", "name") or option in vars(Task) or any(option in vars(c) for c in Task.__mro__):
        return _ok(f"task option {option}")
    return _review(f"{option} is not a qtasks_compat task option (kept as a class attribute only)")


def for_task_method(attr: str) -> Verdict:
    """``self.<attr>`` in a bound task."""
    from qtasks_compat.task import Task

    if attr in TASK_METHODS_UNSUPPORTED:
        return _no(TASK_METHODS_UNSUPPORTED[attr])
    if inspect.getattr_static(Task, attr, MISSING) is not MISSING:
        return _ok(f"Task.{attr}")
    return _review(f"qtasks_compat.Task has no {attr}")


def _call_params() -> tuple[frozenset[str], frozenset[str]]:
    """(options apply_async/send_task honour, options accepted without effect) from their signatures."""
    from qtasks_compat.app import IGNORED_OPTIONS, Celery
    from qtasks_compat.task import Task

    names: set[str] = set()
    for fn in (Task.apply_async, Celery._prepare):
        for p in inspect.signature(fn).parameters.values():
            if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD:
                names.add(p.name)
    honoured = {n for n in names if not n.startswith("_")} - {"self", "name", "producer"}
    return frozenset(honoured), frozenset(IGNORED_OPTIONS | {"producer"})


def for_call_option(option: str, value: Any = MISSING) -> Verdict:
    """A keyword of ``apply_async(...)`` / ``send_task(...)``."""
    if option in CALL_OPTIONS_UNSUPPORTED:
        return _no(CALL_OPTIONS_UNSUPPORTED[option], "drop the option")
    if option == "serializer":
        return _serializer("serializer", value, "JSON only")
    if option == "task_id":
        return _review(TASK_ID_NOTE) if not _is_uuid(value) else _ok("a UUID task id")
    honoured, ignored = _call_params()
    if option in honoured:
        return _ok(f"{option} is honoured")
    if option in ignored:
        return _review(f"{option} is accepted without effect on qtasks", "remove it")
    return _review(f"{option} is not a Celery calling option qtasks_compat knows (CompatWarning)")


def _is_uuid(value: Any) -> bool:
    import uuid

    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def for_control(attr: str, inspect_method: bool = False) -> Verdict:
    """``app.control.<attr>`` or ``app.control.inspect().<attr>``."""
    from qtasks_compat.worker import Control, Inspect

    cls = Inspect if inspect_method else Control
    where = "app.control.inspect()" if inspect_method else "app.control"
    if inspect.getattr_static(cls, attr, MISSING) is not MISSING and not attr.startswith("_"):
        return _ok(f"{where}.{attr}")
    return _no(f"{where}.{attr} raises NotImplementedError (remote control beyond revoke/ping/inspect)")


def for_beat_entry_key(key: str) -> Verdict:
    from qtasks_compat.beat import _ENTRY_KEYS

    if key in _ENTRY_KEYS:
        return _ok(f"beat entry key {key}")
    return _no(f"beat entry key {key!r} is rejected (TypeError)", "allowed: " + ", ".join(sorted(_ENTRY_KEYS)))


# Arguments of Celery(...) that raise (migration_guide/core.md, "App").
CELERY_ARGS_UNSUPPORTED = frozenset({"loader", "amqp", "events", "log", "control", "tasks"})


def for_celery_arg(arg: str) -> Verdict | None:
    """``Celery(arg=...)``; None when ``arg`` is a setting (see :data:`CELERY_KWARGS` / :func:`for_setting`)."""
    from qtasks_compat.app import Celery

    if arg in CELERY_ARGS_UNSUPPORTED:
        return _no(f"Celery({arg}=...) raises NotImplementedError", "drop it")
    if arg in CELERY_KWARGS:
        return None
    if arg in inspect.signature(Celery.__init__).parameters:
        return _ok(f"Celery({arg}=...)")
    return None


def for_signal_connect(option: str, value: Any = MISSING) -> Verdict:
    """A keyword of ``signal.connect(...)``."""
    if option == "retry" and value is not MISSING and not value:
        return _ok("retry=False")
    if option == "retry":
        return _no("Signal.connect(retry=True) raises NotImplementedError", "retry inside the receiver")
    return _ok(f"connect({option}=...)")


def for_control_call(attr: str, keywords: dict[str, Any]) -> Verdict:
    """``app.control.<attr>(**keywords)``: ``revoke(terminate=True)`` raises."""
    terminate = keywords.get("terminate", False)
    if attr == "revoke" and terminate is MISSING:
        return _review("revoke(terminate=...) not read statically: terminate=True raises NotImplementedError")
    if attr == "revoke" and terminate:
        return _no("revoke(terminate=True) raises NotImplementedError (a running task is not stopped)",
                   "revoke() without terminate; use time_limit for runaway tasks")
    return for_control(attr)
