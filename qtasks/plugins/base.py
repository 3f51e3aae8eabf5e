"""``BasePlugin``: what ``app.add_plugin`` takes.

A plugin maps trigger names to handlers (``handlers = {"worker_add": self.on_add}``)
or overrides :meth:`trigger`. Handlers and ``start``/``stop`` may be plain
functions or coroutines on either app: the runner awaits what needs awaiting.
Handlers run on the worker's event loop, so they should be quick.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class BasePlugin:
    raise_errors: bool = False
    """Error policy. False (default): an exception in this plugin is logged with its traceback and the
    operation goes on as if the plugin had returned None. True: the exception propagates to the caller
    (the task fails, ``add_task`` raises...) — for plugins that validate."""

    def __init__(self, name: str | None = None, *args: Any, **kwargs: Any) -> None:
        self.name = name or type(self).__name__
        self.handlers: dict[str, Callable[..., Any]] = dict(getattr(self, "handlers", None) or {})
        self.plugin_cache: dict[str, Any] = {}

    def trigger(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Dispatch to ``self.handlers[name]``; None (no change) when there is no handler."""
        handler = self.handlers.get(name)
        if handler is None:
            return None
        return handler(*args, **kwargs)

    def start(self, *args: Any, **kwargs: Any) -> Any:
        """Called once by the Starter when the worker starts."""

    def stop(self, *args: Any, **kwargs: Any) -> Any:
        """Called once by the Starter when the worker stops."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class AsyncPlugin(BasePlugin):
    """The same class under the 1.7.3 async name."""


class SyncPlugin(BasePlugin):
    """The same class under the 1.7.3 sync name."""
