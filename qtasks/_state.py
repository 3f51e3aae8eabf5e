"""Process-wide pointers to the most recently created app (used by shared tasks and results)."""

from __future__ import annotations

from typing import Any

app_main: Any = None
log_main: Any = None
