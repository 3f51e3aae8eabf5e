"""A thin logger wrapper that tags each record with a component ``subname``.

The library never adds handlers or sets levels on the root logger; the CLI does.
"""

from __future__ import annotations

import logging
from typing import Any

DEFAULT_FORMAT = "%(asctime)s [%(name)s: %(levelname)s] (%(subname)s) %(message)s"


class _SubnameFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "subname"):
            record.subname = "-"
        return True


class Logger:
    def __init__(
        self,
        name: str = "QueueTasks",
        subname: str | None = None,
        default_level: int | None = None,
        format: str | None = None,
    ) -> None:
        self.name = name
        self.subname = subname or name
        self.format = format or DEFAULT_FORMAT
        self.default_level = default_level
        self.logger = logging.getLogger(f"qtasks.{name}")
        if default_level is not None:
            self.logger.setLevel(default_level)

    def with_subname(self, new_subname: str, default_level: int | None = None,
                     format: str | None = None) -> Logger:
        return Logger(self.name, new_subname, default_level or self.default_level, format or self.format)

    def update_logger(self, **kw: Any) -> None:
        if "default_level" in kw and kw["default_level"] is not None:
            self.default_level = kw["default_level"]
            self.logger.setLevel(kw["default_level"])
        if kw.get("format"):
            self.format = kw["format"]

    def _log(self, level: int, msg: str, *args: Any, **kw: Any) -> None:
        if not self.logger.isEnabledFor(level):
            return
        extra = kw.pop("extra", None) or {}
        extra.setdefault("subname", self.subname)
        self.logger.log(level, msg, *args, extra=extra, stacklevel=3, **kw)

    def critical(self, msg: str, *args: Any, **kw: Any) -> None:
        self._log(logging.CRITICAL, msg, *args, **kw)

    def error(self, msg: str, *args: Any, **kw: Any) -> None:
        self._log(logging.ERROR, msg, *args, **kw)

    def exception(self, msg: str, *args: Any, **kw: Any) -> None:
        kw.setdefault("exc_info", True)
        self._log(logging.ERROR, msg, *args, **kw)

    def warning(self, msg: str, *args: Any, **kw: Any) -> None:
        self._log(logging.WARNING, msg, *args, **kw)

    def info(self, msg: str, *args: Any, **kw: Any) -> None:
        self._log(logging.INFO, msg, *args, **kw)

    def debug(self, msg: str, *args: Any, **kw: Any) -> None:
        self._log(logging.DEBUG, msg, *args, **kw)


def subname_filter() -> logging.Filter:
    """A filter for handlers that use ``%(subname)s`` with records from other libraries."""
    return _SubnameFilter()
