"""Generate ``migration_guide/mapping.md``: Celery -> qtasks_compat -> native qtasks.

    python scripts/gen_migration_mapping.py          # rewrite the page
    python scripts/gen_migration_mapping.py --check  # exit 1 when the page is out of date

The qtasks_compat column is never written by hand: settings come from ``qtasks_compat.config.TREATMENTS``
(over the Celery settings of ``qtasks_compat/_settings_table.py``, as migration_guide/settings.md), task options,
calling options, imports, task methods, control commands and signals from the verdicts of
``qtasks_compat/migrate/support.py`` (what ``qtasks migrate check`` reports). What is kept here is the list of
Celery names to show (Celery's own surface) and the native-qtasks column. tests/test_migration_guide.py runs
``--check``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC_PATH = ROOT / "migration_guide" / "mapping.md"
NONE = "—"

# ------------------------------------------------------------------------------------------------ native qtasks
# The native qtasks equivalent of a Celery name (README.md "Task options", docs/*.md); absent: NONE.
NATIVE_SETTINGS: dict[str, str] = {
    "broker_url": "`QueueTasks(broker_url=...)`",
    "result_backend": "`QueueTasks(storage_url=...)`",
    "worker_concurrency": "`app.config.max_tasks_process`",
    "result_expires": "`app.config.result_ttl`",
    "task_always_eager": "`app.config.eager`",
    "task_eager_propagates": "`app.config.eager_propagates`",
    "task_default_priority": "`app.config.task_default_priority` (lower runs first)",
    "broker_transport_options": "`visibility_timeout` → `app.config.lease_timeout`",
    "task_default_queue": "`MultiQueueBroker(default_queue=...)`",
    "task_queues": "`MultiQueueBroker(queues=[...])`",
    "task_time_limit": "`@app.task(max_time=...)` per task",
    "task_acks_late": "always (acknowledged after the result is stored)",
    "beat_schedule": "`qtasks.timer` (docs/timer.md)",
    "imports": "`qtasks -A module:app run` imports the app's module",
    "include": "`qtasks -A module:app run` imports the app's module",
}
TASK_OPTIONS: dict[str, str] = {
    "name": "`@app.task(name=...)` / `@app.task(\"name\")`",
    "bind": "`@app.task(echo=True)`: `self` is the task handle, `self.ctx` its context",
    "base": "`@app.task(executor=MyExecutor)` (a `BaseTaskExecutor`) or `middlewares_before/after`",
    "max_retries": "`@app.task(retry=N)` (each retry is a new task id, linked by `retry_child_uuid`)",
    "default_retry_delay": NONE,
    "autoretry_for": "`@app.task(retry=N, retry_on_exc=[...])`",
    "dont_autoretry_for": NONE,
    "retry_kwargs": "`retry=` / `retry_on_exc=`",
    "retry_backoff": NONE,
    "retry_backoff_max": NONE,
    "retry_jitter": NONE,
    "acks_late": "always (acknowledged after the result is stored)",
    "acks_on_failure_or_timeout": "always",
    "reject_on_worker_lost": "always (re-delivered after `lease_timeout`)",
    "ignore_result": NONE,
    "store_errors_even_if_ignored": NONE,
    "track_started": "always (status `process`)",
    "time_limit": "`@app.task(max_time=...)`",
    "soft_time_limit": NONE,
    "rate_limit": NONE,
    "queue": "`MultiQueueBroker` named queues",
    "exchange": NONE,
    "routing_key": NONE,
    "priority": "`@app.task(priority=...)` (lower runs first)",
    "serializer": "JSON; `@app.task(decode=...)` shapes the stored result",
    "compression": NONE,
    "expires": NONE,
    "typing": NONE,
    "throws": NONE,
    "trail": NONE,
    "pydantic": "pydantic arguments (docs/injection.md)",
    "shared": "`from qtasks import shared_task` (docs/routers_and_shared_tasks.md)",
    "lazy": NONE,
}
CALL_OPTIONS: dict[str, str] = {
    "countdown": "`app.broker.add(..., delay=seconds)` (broker level)",
    "eta": "`app.broker.add(..., delay=seconds)` (broker level)",
    "expires": NONE,
    "queue": "`MultiQueueBroker.add(..., queue=...)`",
    "routing_key": NONE,
    "priority": "`task.add_task(..., priority=...)`",
    "headers": NONE,
    "link": "`TaskUtils.chain(...)`",
    "link_error": NONE,
    "task_id": NONE,
    "shadow": NONE,
    "ignore_result": NONE,
    "time_limit": "`@app.task(max_time=...)`",
    "soft_time_limit": NONE,
    "serializer": "JSON",
    "compression": NONE,
    "retry": NONE,
    "retry_policy": NONE,
    "exchange": NONE,
    "producer": NONE,
    "add_to_parent": NONE,
    "reply_to": NONE,
    "stamped_headers": NONE,
}
# (module, name): native. The qtasks_compat column is support.for_import(module, name).
IMPORTS: dict[tuple[str, str], str] = {
    ("celery", "Celery"): "`qtasks.QueueTasks` / `qtasks.asyncio.QueueTasks`",
    ("celery", "shared_task"): "`qtasks.shared_task`",
    ("celery", "Task"): "`qtasks.executors.BaseTaskExecutor` (hooks), middlewares",
    ("celery", "chain"): "`TaskUtils.chain(...)` (`qtasks.registries.chain.SyncTaskUtils` / `AsyncTaskUtils`)",
    ("celery", "group"): NONE,
    ("celery", "chord"): NONE,
    ("celery", "signature"): NONE,
    ("celery", "current_app"): NONE,
    ("celery", "current_task"): "`self.ctx` in an `echo=True` task",
    ("celery", "states"): "`qtasks.enums` task statuses (`new`, `process`, `success`, `error`, `cancel`, `retry`)",
    ("celery", "uuid"): "`uuid.uuid4()`",
    ("celery.result", "AsyncResult"): "`qtasks.results.SyncResult(uuid=, app=)` / `app.get(uuid)`",
    ("celery.result", "GroupResult"): NONE,
    ("celery.result", "EagerResult"): "`app.config.eager`",
    ("celery.exceptions", "Retry"): "raise any exception in a `retry=N` task",
    ("celery.exceptions", "Reject"): NONE,
    ("celery.exceptions", "Ignore"): NONE,
    ("celery.exceptions", "SoftTimeLimitExceeded"): NONE,
    ("celery.exceptions", "TimeLimitExceeded"): "`qtasks.exc.TaskTimeoutError`",
    ("celery.exceptions", "MaxRetriesExceededError"): NONE,
    ("celery.exceptions", "TaskRevokedError"): "status `cancel`",
    ("celery.exceptions", "TimeoutError"): "`add_task(..., timeout=)` returns None",
    ("celery.schedules", "crontab"): "`qtasks.timer` cron triggers (docs/timer.md)",
    ("celery.schedules", "schedule"): "`qtasks.timer` interval triggers (docs/timer.md)",
    ("celery.schedules", "solar"): NONE,
    ("celery.utils.log", "get_task_logger"): "`self.ctx.get_logger()`",
    ("celery.contrib.pytest", "celery_app"): "qtasks' pytest plugin (docs/testing.md)",
    ("celery.contrib.django.task", "DjangoTask"): NONE,
}
TASK_METHODS: dict[str, str] = {
    "delay": "`task.add_task(*args, **kwargs)`",
    "apply_async": "`task.add_task(*args, priority=, timeout=, **kwargs)`",
    "apply": "`app.config.eager = True`",
    "retry": "raise; `@app.task(retry=N)`",
    "request": "`self.ctx` (`task_uuid`, `task_name`) in an `echo=True` task",
    "update_state": NONE,
    "AsyncResult": "`app.get(uuid)`",
    "s": NONE,
    "si": NONE,
    "map": NONE,
    "starmap": NONE,
    "chunks": NONE,
    "replace": NONE,
    "add_to_chord": NONE,
    "send_event": NONE,
}
CONTROL: dict[str, str] = {
    "revoke": "`self.ctx.cancel(reason)` from inside the task",
    "ping": "workers register in the broker (`qtasks` stats, docs/stats.md)",
    "purge": NONE,
    "inspect": "docs/stats.md",
    "rate_limit": NONE,
    "time_limit": NONE,
    "shutdown": "SIGTERM",
    "broadcast": NONE,
    "add_consumer": NONE,
}
SIGNALS: dict[str, str] = {
    "task_prerun": "`middlewares_before`", "task_postrun": "`middlewares_after`",
    "task_success": "plugins / events (docs/plugins.md)", "task_failure": "plugins / events (docs/plugins.md)",
    "task_retry": "plugins / events (docs/plugins.md)", "task_revoked": NONE,
    "before_task_publish": "plugin trigger `qtasks_add_task_before_broker`", "after_task_publish": NONE,
    "worker_init": NONE, "worker_ready": NONE, "worker_shutdown": NONE, "worker_process_init": NONE,
    "celeryd_init": NONE, "setup_logging": NONE, "after_setup_logger": NONE, "task_sent": NONE,
}
CLI: dict[str, str] = {
    "celery -A proj worker": "`qtasks -A proj.module:app run`",
    "celery -A proj beat": "`qtasks.timer` (docs/timer.md)",
    "celery -A proj call NAME": "`app.add_task(\"NAME\", ...)`",
    "celery -A proj result ID": "`app.get(ID)`",
    "celery -A proj purge": NONE,
    "celery -A proj inspect ping": "docs/stats.md",
    "celery -A proj flower": NONE,
    "celery multi": NONE,
}


# ------------------------------------------------------------------------------------------------ rendering
def _verdict(v: Any) -> str:
    text = f"**{v.status}**: {v.reason}" + (f" → {v.change}" if v.change else "")
    return text.replace("|", "\\|").replace("\n", " ")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _table(head: str, rows: list[tuple[str, str, str]]) -> str:
    out = [f"| {head} | qtasks_compat | native qtasks |", "|---|---|---|"]
    out += [f"| {a} | {b} | {_cell(c)} |" for a, b, c in rows]
    return "\n".join(out) + "\n"


def render_doc() -> str:
    from qtasks_compat._settings_table import SETTINGS
    from qtasks_compat.config import TREATMENTS
    from qtasks_compat.migrate import support

    missing = set(NATIVE_SETTINGS) - set(TREATMENTS)
    if missing:
        raise SystemExit(f"NATIVE_SETTINGS names settings Celery does not have: {sorted(missing)}")
    out = [HEAD]
    out.append("## Settings\n\nEvery Celery 5 setting; the treatments are explained in [settings.md](settings.md).\n\n")
    rows = []
    for info in SETTINGS:
        t = TREATMENTS[info.name]
        old = f" ({', '.join(f'`{o}`' for o in info.old)})" if info.old else ""
        rows.append((f"`{info.name}`{old}", f"**{t.kind}**: {_cell(t.note)}", NATIVE_SETTINGS.get(info.name, NONE)))
    for name, note in support.QTASKS_SETTINGS.items():
        rows.append((f"`{name}` (qtasks_compat only)", f"**{support.for_setting(name).status}**: {_cell(note)}",
                     NONE))
    out.append(_table("Celery setting", rows))
    out.append("\n## Task options (`@app.task(...)`, `@shared_task(...)`)\n\n")
    out.append(_table("Celery option", [(f"`{o}`", _verdict(support.for_task_option(o)), n)
                                        for o, n in TASK_OPTIONS.items()]))
    out.append("\n## Calling options (`apply_async(...)`, `send_task(...)`)\n\n")
    out.append(_table("Celery option", [(f"`{o}`", _verdict(support.for_call_option(o)), n)
                                        for o, n in CALL_OPTIONS.items()]))
    out.append("\n## Imports\n\n")
    out.append(_table("Celery name", [(f"`from {m} import {n}`", _verdict(support.for_import(m, n)), nat)
                                      for (m, n), nat in IMPORTS.items()]))
    out.append("\n## Task methods and attributes (`task.x`, `self.x` in a `bind=True` task)\n\n")
    out.append(_table("Celery", [(f"`task.{a}`", _verdict(support.for_task_method(a)), n)
                                 for a, n in TASK_METHODS.items()]))
    out.append("\n## Remote control (`app.control.x`)\n\n")
    out.append(_table("Celery", [(f"`app.control.{a}`", _verdict(support.for_control(a)), n)
                                 for a, n in CONTROL.items()]))
    out.append("\n## Signals (`celery.signals`)\n\n")
    out.append(_table("Celery signal", [(f"`{s}`", _verdict(support.for_signal(s)), n) for s, n in SIGNALS.items()]))
    out.append("\n## Command line\n\nSee [cli.md](cli.md) for every option.\n\n")
    out.append(_table("Celery", [(f"`{c}`", _cli(c), n) for c, n in CLI.items()]))
    return "".join(out)


def _cli(command: str) -> str:
    """What ``qtasks-celery`` does with ``command`` (its own parser decides, as in the checker)."""
    from qtasks_compat.cli import build_parser

    args = command.split()[1:]
    args = [a if a != "NAME" else "proj.add" for a in args]
    args = [a if a != "ID" else "00000000-0000-0000-0000-000000000000" for a in args]
    with contextlib.redirect_stderr(io.StringIO()):
        try:
            build_parser().parse_args(args)
        except SystemExit:
            return f"**unsupported**: `qtasks-celery` has no `{args[-1] if args[0] != '-A' else args[2]}` command"
    return f"**supported**: `qtasks-{command}`"


HEAD = """# Mapping: Celery → qtasks_compat → native qtasks

<!-- GENERATED by scripts/gen_migration_mapping.py: do not edit by hand. -->

One row per Celery setting, task option, calling option and API. The **qtasks_compat** column is what
`qtasks migrate check` reports for it (the verdicts of `qtasks_compat/migrate/support.py`, the settings of
`qtasks_compat.config.TREATMENTS`): **supported** works as on Celery, **review** is accepted but behaves
differently or has no effect, **unsupported** raises. The **native qtasks** column is the nearest API of qtasks
itself, for when you move off the compatibility layer (step 5 of [steps.md](steps.md)); "—" means qtasks has
no native equivalent (keep using qtasks_compat for it).

"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the page is up to date")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    doc = render_doc()
    if DOC_PATH.exists() and DOC_PATH.read_text() == doc:
        return 0
    if args.check:
        print(f"{DOC_PATH.relative_to(ROOT)} is out of date: run python scripts/gen_migration_mapping.py",
              file=sys.stderr)
        return 1
    DOC_PATH.write_text(doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
