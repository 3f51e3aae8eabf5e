"""Every plugin trigger, in one table: where it fires, what it passes, what a plugin may replace.

This table is the source of truth: ``add_plugin`` validates names against it,
the runner only honours the replaceable keys listed here, and the reference
``docs/plugin_triggers.md`` is generated from it (``python -m qtasks.plugins``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Trigger:
    name: str
    component: str
    """Where plugins for it are registered: qtasks (the app), broker, storage, global_config, worker, starter, stats."""
    fired: str
    kwargs: tuple[str, ...]
    replaces: tuple[str, ...] = ()
    note: str = ""


def _t(name: str, component: str, fired: str, kwargs: str, replaces: str = "", note: str = "") -> Trigger:
    return Trigger(name, component, fired, tuple(kwargs.split()), tuple(replaces.split()), note)


_TABLE = [
    # --- the app (add_plugin(component=None))
    _t("qtasks_add_task_before_broker", "qtasks", "app.add_task, before the broker is called",
       "qtasks broker task_name priority args kw", "task_name priority extra args kw"),
    _t("qtasks_add_task_after_broker", "qtasks", "app.add_task, after the task is queued",
       "qtasks broker task_name priority args kwargs task"),
    _t("qtasks_get", "qtasks", "app.get, after the read", "qtasks broker task", "task"),
    _t("qtasks_stop", "qtasks", "app.stop", "qtasks starter"),
    _t("qtasks_ping", "qtasks", "app.ping", "qtasks global_config"),
    _t("qtasks_flush_all", "qtasks", "app.flush_all", "qtasks broker"),
    # --- broker
    _t("broker_start", "broker", "broker.start, before storage starts", "broker worker"),
    _t("broker_stop", "broker", "broker.stop, after results are flushed", "broker"),
    _t("broker_listen_start", "broker", "broker.listen, before the fetch loop", "broker worker"),
    _t("broker_add_before", "broker", "broker.add, before the record is stored and queued",
       "broker storage model", "model", "model is the new record: a dict of string fields"),
    _t("broker_add_after", "broker", "broker.add, after the task is queued", "broker storage model"),
    _t("broker_add_worker", "broker", "each claimed task, before worker.add",
       "broker worker task_name uuid priority args kw created_at", "task_name uuid priority args kw created_at"),
    _t("broker_get", "broker", "broker.get, after the storage read", "broker task", "task"),
    _t("broker_update", "broker", "broker.update (old-style record update)", "broker kw", "kw"),
    _t("broker_remove_finished_task", "broker", "a task's end state, before it is stored",
       "broker storage model", "model"),
    _t("broker_running_older_tasks", "broker", "start-up re-queueing of orphaned tasks", "broker worker",
       note="fired (1.7.3 declared it but never reached it)"),
    _t("broker_flush_all", "broker", "broker.flush_all", "broker"),
    # --- storage
    _t("storage_start", "storage", "storage.start", "storage"),
    _t("storage_stop", "storage", "storage.stop", "storage"),
    _t("storage_add", "storage", "a new record, before it is written", "storage uuid task_status",
       "uuid task_status"),
    _t("storage_get", "storage", "a record read through the broker/app", "storage result", "result"),
    _t("storage_get_all", "storage", "broker.get_all", "storage results", "results"),
    _t("storage_update", "storage", "storage.update (old-style record update)", "storage kw", "kw"),
    _t("storage_add_process", "storage", "claimed tasks marked process", "storage uuids worker_id",
       note="the claim marks tasks atomically, so nothing is replaceable"),
    _t("storage_remove_finished_task", "storage", "after a task's end state is durably stored",
       "storage task_broker model"),
    _t("storage_running_older_tasks", "storage", "each orphaned task, before it is re-queued",
       "storage worker task_name uuid priority created_at args kw", "task_name priority created_at args kw",
       note="uuid is not replaceable: the stored record keeps its uuid"),
    _t("storage_delete_finished_tasks", "storage", "storage.delete_finished_tasks", "storage"),
    _t("storage_flush_all", "storage", "broker.flush_all, before the records are dropped", "storage"),
    # --- global config
    _t("global_config_start", "global_config", "global config start", "global_config"),
    _t("global_config_stop", "global_config", "global config stop", "global_config"),
    _t("global_config_set_status", "global_config", "each heartbeat write", "global_config"),
    _t("global_config_set", "global_config", "global_config.set, before the write",
       "global_config name_ key value", "name_ key value",
       note="name_, not name: trigger(name, ...) already takes the trigger's name"),
    _t("global_config_get", "global_config", "global_config.get, after the read", "global_config get", "get"),
    _t("global_config_get_all", "global_config", "global_config.get_all, after the read", "global_config get",
       "get"),
    _t("global_config_get_match", "global_config", "global_config.get_match, after the read", "global_config get",
       "get"),
    # --- worker
    _t("worker_start", "worker", "worker.start", "worker"),
    _t("worker_stop", "worker", "worker.stop, after running tasks ended", "worker"),
    _t("worker_add", "worker", "worker.add, before the task starts",
       "worker task_name uuid priority args kw created_at", "task_name priority args kw created_at"),
    _t("worker_execute_before", "worker", "a task starts (its status is already process)",
       "worker task_func task_broker model", "model",
       note="model holds extra fields written to the record with the end state"),
    _t("worker_run_task_before", "worker", "before the executor is built", "worker task_func task_broker",
       "task_func task_broker"),
    _t("worker_task_error_retry", "worker", "a failed task that may be retried",
       "worker broker task_func task_broker trace model", "model"),
    _t("worker_remove_finished_task", "worker", "a task's end state, before it is handed to the broker",
       "worker broker task_func task_broker model", "task_broker model"),
    _t("worker_execute_after", "worker", "after the end state is stored and acknowledged",
       "worker task_func task_broker model"),
    # --- task executor (register these on component="worker")
    _t("task_executor_args_replace", "worker", "before the call, after injection (Depends, State, pydantic)",
       "task_executor args kw args_info", "args kw"),
    _t("task_executor_before_execute", "worker", "end of before_execute", "task_executor"),
    _t("task_executor_middlewares_execute", "worker", "before each middleware phase",
       "task_executor middlewares_before middlewares_after",
       note="one of middlewares_before / middlewares_after is None, telling the phase"),
    _t("task_executor_run_task", "worker", "after the task function returned", "task_executor result", "result"),
    _t("task_executor_run_task_gen", "worker", "after a generator task's values are collected",
       "task_executor results", "results"),
    _t("task_executor_run_task_trigger_error", "worker", "the task raised TaskPluginTriggerError (ctx.plugin_error)",
       "task_executor task_func task_broker e", "result",
       note="no plugin returning result: the task fails with the error"),
    _t("task_executor_after_execute", "worker", "after_execute", "task_executor"),
    _t("task_executor_after_execute_result_replace", "worker", "after_execute (pydantic results already dumped)",
       "task_executor result", "result"),
    _t("task_executor_decode", "worker", "after the result is encoded", "task_executor result", "result"),
    _t("task_executor_task_close", "worker", "end of every execution, success or not",
       "task_executor task_func task_broker"),
    # --- starter and stats
    _t("starter_start", "starter", "starter.start, before plugins and components start", "starter"),
    _t("starter_stop", "starter", "starter shutdown, before components stop", "starter"),
    _t("stats_inspect", "stats", "stats.inspect()", "stats"),
]

TRIGGERS: dict[str, Trigger] = {t.name: t for t in _TABLE}
COMPONENTS = ("qtasks", "broker", "storage", "global_config", "worker", "starter", "stats")


def markdown() -> str:
    """The trigger reference, generated from the table (kept in docs/plugin_triggers.md)."""
    lines = [
        "# Plugin triggers",
        "",
        "Generated from `qtasks/plugins/triggers.py` by `python -m qtasks.plugins`; do not edit.",
        "",
        "A plugin registered for a trigger receives the listed keyword arguments. Returning a dict replaces",
        "the values of the *replaceable* keys (others are ignored, with a warning); returning None changes nothing.",
        "Register with `app.add_plugin(plugin, trigger_names=[...], component=...)`, where component is the",
        "column below (`qtasks` means `component=None`, the app itself).",
        "",
    ]
    for comp in COMPONENTS:
        rows = [t for t in _TABLE if t.component == comp]
        lines += [f"## {comp}", "", "| Trigger | Fired | kwargs | Replaceable | Note |", "|---|---|---|---|---|"]
        for t in rows:
            kw = ", ".join(f"`{k}`" for k in t.kwargs)
            rep = ", ".join(f"`{k}`" for k in t.replaces) or "—"
            lines.append(f"| `{t.name}` | {t.fired} | {kw} | {rep} | {t.note} |")
        lines.append("")
    return "\n".join(lines)
