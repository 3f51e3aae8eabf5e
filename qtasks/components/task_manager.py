"""``TaskManager``: one place to adjust task options per execution (``app.config.task_manager``).

::

    class MyManager(TaskManager):
        def mutate(self, task):
            if task.name == "heavy_task":
                task.timeout = 120
            return task

    app.config.task_manager = MyManager()

``mutate`` receives a *copy* of the task's registration (a ``TaskExecSchema``:
``name``, ``priority``, ``timeout``/``max_time``, ``retry``, ``retry_on_exc``,
``executor``, ``middlewares_before/after``, ``extra``...) for every delivered
task, on the worker, before the executor is built; the registration itself is
never changed, so one execution's adjustments cannot leak into the next.
``mutate`` may be a coroutine; returning None keeps the (mutated) copy.
"""

from __future__ import annotations

from typing import Any

from qtasks.schemas.task_exec import TaskExecSchema


class TaskManager:
    def mutate(self, task: TaskExecSchema) -> Any:
        return task


__all__ = ["TaskManager"]
