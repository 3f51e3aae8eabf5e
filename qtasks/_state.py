"""Process-wide pointers to the most recently created app (used by shared tasks and results)."""

from __future__ import annotations

import weakref
from typing import Any

app_main: Any = None
log_main: Any = None
apps: weakref.WeakSet[Any] = weakref.WeakSet()
"""Every live app, so a ``shared_task`` declared after an app was created still reaches it."""
