"""Chains: pre-built calls (``task(1, 2)``) run one after another, each fed the previous result.

``AsyncTaskUtils.chain(add(2, 2), add(4), add(8))`` queues ``add(2, 2)``, waits
for it, then queues ``add(4, 4)`` (the previous ``returning`` appended as the
last positional argument), then ``add(8, 8)``: results 4, 8, 16.

A step that does not succeed (``error``, ``cancel``, or not finished within its
timeout) stops the chain: its entry is its final Task (or None on timeout) and
every later entry is None, because the next call would have no result to take.
"""

from __future__ import annotations

from typing import Any

from qtasks.enums import TaskStatusEnum
from qtasks.registries.task import BaseTaskCls
from qtasks.schemas.task import Task


class BaseChain:
    def __init__(self, *tasks: BaseTaskCls) -> None:
        for t in tasks:
            if not isinstance(t, BaseTaskCls):
                raise TypeError(f"a chain takes pre-built calls such as add(1, 2), got {t!r}")
            t._deco()  # an unbound call fails here, not halfway through the chain
        self.tasks = tasks

    async def _run(self, timeout: float) -> list[Task | None]:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        results: list[Task | None] = []
        for step in self.tasks:
            prev = results[-1] if results else None
            if results and (prev is None or prev.status != TaskStatusEnum.SUCCESS.value):
                results.append(None)
                continue
            app, name, priority = step._deco()._resolve(step.task_name, step.priority)
            args = step.args if prev is None else (*step.args, prev.returning)
            results.append(await app._add_task(
                *args, task_name=name, priority=priority,
                timeout=timeout if step.timeout is None else step.timeout, **step.kwargs))
        return results

    def _app(self) -> Any:
        return self.tasks[0]._deco()._resolve(None, None)[0]


class AsyncChain(BaseChain):
    async def get(self, timeout: float = 50.0) -> list[Task | None]:
        """Run the chain; one final Task (or None) per step. ``timeout`` is per step without its own."""
        return await self._run(timeout)


class SyncChain(BaseChain):
    def get(self, timeout: float = 50.0) -> list[Task | None]:
        """Run the chain and block; one final Task (or None) per step. ``timeout`` is per step."""
        if not self.tasks:
            return []
        return self._app()._blocking(self._run(timeout))


class AsyncTaskUtils:
    @staticmethod
    def chain(*task_cls: BaseTaskCls) -> AsyncChain:
        return AsyncChain(*task_cls)


class SyncTaskUtils:
    @staticmethod
    def chain(*task_cls: BaseTaskCls) -> SyncChain:
        return SyncChain(*task_cls)


__all__ = ["AsyncChain", "AsyncTaskUtils", "SyncChain", "SyncTaskUtils"]
