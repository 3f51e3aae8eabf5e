"""What the worker knows about a registered task, and the message it receives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID


@dataclass
class TaskExecSchema:
    """A registered task: its function and every decorator option."""

    priority: int
    name: str
    func: Callable[..., Any]
    awaiting: bool = False
    generating: str | bool = False
    echo: bool = False
    max_time: float | None = None
    retry: int | None = None
    retry_on_exc: list[type[BaseException]] | None = None
    decode: Callable[[Any], Any] | None = None
    tags: list[str] | None = None
    description: str | None = None
    generate_handler: Callable[[Any], Any] | None = None
    executor: type | None = None
    middlewares_before: list[Any] = field(default_factory=list)
    middlewares_after: list[Any] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def timeout(self) -> float | None:
        """``max_time`` under the name the TaskManager examples use."""
        return self.max_time

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        self.max_time = value

    def add_middlewares_before(self, middlewares: list[Any]) -> None:
        self.middlewares_before.extend(m for m in middlewares if m not in self.middlewares_before)

    def add_middlewares_after(self, middlewares: list[Any]) -> None:
        self.middlewares_after.extend(m for m in middlewares if m not in self.middlewares_after)


@dataclass(order=True)
class TaskPrioritySchema:
    """One delivered task as the worker and executor see it (``task_broker`` in hooks).

    Orders by (priority, created_at): lower priority values first, FIFO among equals.
    """

    priority: int
    uuid: UUID = field(compare=False)
    name: str = field(compare=False)
    args: list[Any] = field(compare=False, default_factory=list)
    kwargs: dict[str, Any] = field(compare=False, default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0
    extra: dict[str, Any] = field(compare=False, default_factory=dict)
