"""``InspectStats``: what an app is made of (its components, config and registered tasks), as text or JSON.

Nothing here does I/O: it reads the app object only, so it works without a broker.
"""

from __future__ import annotations

import inspect
import json as jsonlib
from collections.abc import Iterable
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

from qtasks.schemas.task_exec import TaskExecSchema

NONE = "—"
SEPARATOR = "-" * 50


def _name(obj: Any) -> str:
    """A class, function or object as a short readable name."""
    if obj is None:
        return NONE
    if isinstance(obj, type) or (callable(obj) and hasattr(obj, "__qualname__")):
        return str(obj.__qualname__)
    return type(obj).__name__


def _shallow(obj: Any) -> dict[str, Any]:
    """A dataclass's fields without deep-copying them (``asdict`` would copy functions and user objects)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


@dataclass
class Detail:
    """A labelled value with `` * key: value`` lines under it."""

    head: Any
    items: dict[str, Any]


class UtilsInspectStats:
    """Formatting shared by the inspect and live views: ``label<26>: value`` lines, then a 50-dash line."""

    label_width = 26

    def _row(self, label: str, value: Any) -> str:
        return f"{label:<{self.label_width}}: {value}"

    def _block(self, rows: Iterable[tuple[str, Any]], missing: str = NONE) -> str:
        """Rows as lines (None or "" shown as ``missing``); a dict value becomes `` * key: value`` lines
        under its label, and a :class:`Detail` puts its ``head`` on the label line."""
        lines: list[str] = []
        for label, value in rows:
            if isinstance(value, dict):
                value = Detail("" if value else missing, value)
            if isinstance(value, Detail):
                lines.append(self._row(label, value.head).rstrip())
                lines.extend(f" * {k}: {v}" for k, v in value.items.items())
            else:
                lines.append(self._row(label, missing if value is None or value == "" else value))
        lines.append(SEPARATOR)
        return "\n".join(lines)

    @staticmethod
    def _json(obj: Any) -> str:
        # default=str: functions, classes and user objects are shown by their str(), never rejected.
        return jsonlib.dumps(obj, ensure_ascii=False, indent=2, default=str)


class InspectStats(UtilsInspectStats):
    """``stats.inspect()``: ``app()``, ``task(name)`` and ``tasks(*names)``, each with ``json=``."""

    def __init__(self, app: Any) -> None:
        self._app = app

    # ------------------------------------------------------------------ the app
    def _components(self) -> dict[str, Any]:
        app = self._app
        storage = getattr(app.broker, "storage", None)
        return {"broker": app.broker, "worker": app.worker, "starter": app.starter, "storage": storage,
                "global_config": getattr(storage, "global_config", None)}

    def _plugins_count(self) -> int:
        # Counts the trigger keys of each plugin dict, as 1.7.3 did (one plugin on two triggers counts twice).
        owners = [self._app, *self._components().values()]
        return sum(len(getattr(o, "plugins", None) or {}) for o in owners if o is not None)

    def _app_info(self) -> dict[str, Any]:
        app = self._app
        comp = self._components()
        config = app.config
        return {
            "name": app.name,
            "method": getattr(app, "_method", NONE),
            "version": app.version,
            "config": _shallow(config) if is_dataclass(config) else config,
            "tasks_count": len(app.tasks),
            "routers_count": len(getattr(app, "routers", []) or []),
            "plugins_count": self._plugins_count(),
            "broker": _name(comp["broker"]),
            "worker": _name(comp["worker"]),
            "starter": _name(comp["starter"]),
            "storage": _name(comp["storage"]),
            "global_config": _name(comp["global_config"]),
            "log": _name(app.log),
            "init_count": sum(len(v) for v in getattr(app.events, "callbacks", {}).values()),
        }

    def app(self, json: bool = False) -> str:
        info = self._app_info()
        if json:
            return self._json(info)
        return self._block([
            ("Name", info["name"]), ("Method", info["method"]), ("Version", info["version"]),
            ("Config", str(self._app.config)), ("Tasks Count", info["tasks_count"]),
            ("Routers Count", info["routers_count"]), ("Plugins Count", info["plugins_count"]),
            ("Broker", info["broker"]), ("Worker", info["worker"]), ("Starter", info["starter"]),
            ("Storage", info["storage"]), ("GlobalConfig", info["global_config"]), ("Log", info["log"]),
            ("Init Count", info["init_count"]),
        ])

    # ------------------------------------------------------------------ tasks
    def task(self, task_name: str, json: bool = False) -> str:
        """One registered task; KeyError when no task has that name."""
        schema = self._app.tasks.get(task_name)
        if schema is None:
            known = ", ".join(sorted(self._app.tasks)) or "none"
            raise KeyError(f"no task named {task_name!r} is registered (registered: {known})")
        return self._json(_shallow(schema)) if json else self._task_block(schema)

    def tasks(self, *names: str, json: bool = False) -> str:
        """Every registered task, or the named ones (names that are not registered are skipped)."""
        chosen = [s for n, s in self._app.tasks.items() if not names or n in names]
        if json:
            return self._json([_shallow(s) for s in chosen])
        if not chosen:
            return "No registered tasks."
        return "\n".join(self._task_block(s) for s in chosen)

    def _task_block(self, t: TaskExecSchema) -> str:
        args, kwargs = _signature(t)
        rows: list[tuple[str, Any]] = [
            ("Task name", t.name), ("Priority", t.priority), ("Description", t.description),
            ("Tags", ", ".join(t.tags or [])), ("Awaiting", t.awaiting), ("Generating", t.generating),
            ("Task Self", t.echo), ("Args", ", ".join(args)), ("Kwargs", ", ".join(kwargs)),
        ]
        optional: list[tuple[str, Any]] = [
            ("Max Time", t.max_time), ("Retry Count", t.retry),
            ("Retry on Exception", ", ".join(_name(e) for e in t.retry_on_exc or [])),
            ("Decode", t.decode and _name(t.decode)), ("Generator", t.generate_handler and _name(t.generate_handler)),
            ("Executor", t.executor and _name(t.executor)),
            ("Middlewares Before", ", ".join(_name(m) for m in t.middlewares_before)),
            ("Middlewares After", ", ".join(_name(m) for m in t.middlewares_after)),
        ]
        rows += [(label, v) for label, v in optional if v not in (None, "")]
        if t.extra:
            rows.append(("Extra", dict(t.extra)))
        return self._block(rows)


def _signature(t: TaskExecSchema) -> tuple[list[str], list[str]]:
    """The parameters a caller passes: ``name: type`` without a default, ``name=default`` with one."""
    try:
        params = list(inspect.signature(t.func).parameters.values())
    except (TypeError, ValueError):  # a builtin or C callable without a signature
        return [], []
    if t.echo and params:
        params = params[1:]  # ``self``: the task handle, filled in by the worker
    args: list[str] = []
    kwargs: list[str] = []
    for p in params:
        prefix = "*" if p.kind is p.VAR_POSITIONAL else "**" if p.kind is p.VAR_KEYWORD else ""
        ann = "" if p.annotation is p.empty else f": {_annotation(p.annotation)}"
        if p.default is p.empty:
            args.append(f"{prefix}{p.name}{ann}")
        else:
            kwargs.append(f"{p.name}={p.default!r}")
    return args, kwargs


def _annotation(ann: Any) -> str:
    if isinstance(ann, str):  # ``from __future__ import annotations``: kept as written
        return ann
    return ann.__name__ if isinstance(ann, type) else str(ann).replace("typing.", "")


__all__ = ["Detail", "InspectStats", "UtilsInspectStats"]
