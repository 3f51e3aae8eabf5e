"""``DjangoTask``: publish a task only once the database transaction commits (Celery >= 5.4).

The default task class of a ``Celery`` app created while ``DJANGO_SETTINGS_MODULE`` is set (unless the app
was given ``task_cls=``). Importing this module imports ``django.db``.
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import transaction

from qtasks_compat.task import Task

__all__ = ["DjangoTask"]


class DjangoTask(Task):
    """A :class:`~qtasks_compat.task.Task` with ``delay_on_commit`` / ``apply_async_on_commit``."""

    def delay_on_commit(self, *args: Any, **kwargs: Any) -> None:
        """``delay(*args, **kwargs)`` when the current transaction commits (now, outside one); nothing on
        rollback. Returns None: the task id does not exist until the commit."""
        transaction.on_commit(functools.partial(self.delay, *args, **kwargs))

    def apply_async_on_commit(self, *args: Any, **kwargs: Any) -> None:
        """``apply_async(*args, **kwargs)`` when the current transaction commits; see :meth:`delay_on_commit`."""
        transaction.on_commit(functools.partial(self.apply_async, *args, **kwargs))
