"""Extending the worker three ways: a plugin, middlewares and a TaskManager.

Worker: ``qtasks -A plugins_app:app run``. Client: ``python plugins_client.py``.
"""

from __future__ import annotations

import itertools
from typing import Any

from qtasks import QueueTasks
from qtasks.components.task_manager import TaskManager
from qtasks.middlewares import TaskMiddleware
from qtasks.plugins import BasePlugin
from qtasks.schemas.task_exec import TaskExecSchema

app = QueueTasks(name="example_plugins")   # URL: $QTASKS_BROKER_URL, else redis://localhost:6379/0


# --- 1. A plugin: hooks on named triggers of a component ------------------------------------------------
class TidyArgs(BasePlugin):
    """Strips the whitespace around every str argument, and logs each finished task."""

    def __init__(self) -> None:
        super().__init__("tidy_args")
        self.handlers = {
            "task_executor_args_replace": self.tidy,
            "worker_remove_finished_task": self.finished,
        }

    def tidy(self, task_executor: Any, args: list[Any], kw: dict[str, Any], args_info: Any) -> dict[str, Any]:
        # A returned dict replaces the trigger's replaceable values: here the positional arguments.
        return {"args": [a.strip() if isinstance(a, str) else a for a in args]}

    async def finished(self, worker: Any, broker: Any, task_func: Any, task_broker: Any,
                       model: dict[str, Any]) -> None:
        print(f"[tidy_args] {task_broker.name} finished: {model['status']}", flush=True)   # None: no change

    def start(self) -> None:     # once, when the worker starts
        print("[tidy_args] plugin started", flush=True)

    def stop(self) -> None:      # once, when it stops
        print("[tidy_args] plugin stopped", flush=True)


app.add_plugin(TidyArgs(), trigger_names=["task_executor_args_replace", "worker_remove_finished_task"],
               component="worker")


# --- 2. Middlewares: code around a task run ---------------------------------------------------------------
class Announce(TaskMiddleware):
    """App-wide before-middleware: it runs before the plugin's args_replace, so it sees the arguments as queued."""

    def __call__(self) -> None:
        ex = self.task_executor
        print(f"[announce] {ex.task_func.name}{tuple(ex._args)}", flush=True)


class Exclaim(TaskMiddleware):
    """Per-task after-middleware: it sees the result before it is stored, and may change it."""

    def __call__(self) -> None:
        self.task_executor._result = f"{self.task_executor._result}!"


app.add_middleware(Announce)


@app.task(middlewares_after=[Exclaim])
def greet(name: str) -> str:
    return f"Hello, {name}"


# --- 3. A TaskManager: adjust the options of each delivered task ------------------------------------------
_attempts = itertools.count(1)


@app.task
def unreliable() -> str:
    # Registered without retries; the TaskManager below gives it three on the worker.
    attempt = next(_attempts)
    if attempt < 3:
        raise ConnectionError(f"attempt {attempt}: the remote service is down")
    return f"succeeded on attempt {attempt}"


class RetryNetworkErrors(TaskManager):
    def mutate(self, task: TaskExecSchema) -> TaskExecSchema:
        # ``task`` is a copy of the registration, made for this delivery only.
        if task.name == "unreliable":
            task.retry = 3
            task.retry_on_exc = [ConnectionError]
        return task


app.config.task_manager = RetryNetworkErrors()
