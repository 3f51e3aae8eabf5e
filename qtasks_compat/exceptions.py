"""Celery's exception tree (``celery.exceptions``), with the same base classes so ``except`` clauses match.

Hierarchy (as Celery 5.7)::

    Exception
      CeleryError
        ImproperlyConfigured, SecurityError
        TaskPredicate: Ignore, Reject, Retry (= RetryTaskError)
        TaskError: QueueNotFound(KeyError), IncompleteStream, NotRegistered(KeyError), AlreadyRegistered,
                   TimeoutError, MaxRetriesExceededError, TaskRevokedError, InvalidTaskError, ChordError
      BackendError: BackendGetMetaError, BackendStoreError
      KombuError: OperationalError                    (kombu's; not a CeleryError)
      SoftTimeLimitExceeded, TimeLimitExceeded,       (billiard's; plain Exceptions)
      WorkerLostError, Terminated
    SystemExit: WorkerShutdown, WorkerTerminate (= SystemTerminate)
    UserWarning: CeleryWarning: CompatWarning, AlwaysEagerIgnored, ...

Every exception is rebuilt by ``cls(*exc.args)`` (what results store as ``exc_module``/``exc_type``/``exc_args``),
so it pickles and survives a JSON round trip; :func:`exception_fields` / :func:`exception_from_fields` do both
directions. :func:`unsupported` builds the error for a Celery feature qtasks_compat does not provide.
"""

from __future__ import annotations

import builtins
import numbers
import sys
from datetime import datetime
from types import TracebackType
from typing import Any, NoReturn

__all__ = (
    "AlreadyRegistered",
    "AlwaysEagerIgnored",
    "BackendError",
    "BackendGetMetaError",
    "BackendStoreError",
    "CDeprecationWarning",
    "CPendingDeprecationWarning",
    "CeleryCommandException",
    "CeleryError",
    "CeleryWarning",
    "ChordError",
    "CompatWarning",
    "DuplicateNodenameWarning",
    "DuplicateTaskNameWarning",
    "FixupWarning",
    "Ignore",
    "ImproperlyConfigured",
    "IncompleteStream",
    "InvalidTaskError",
    "KombuError",
    "MaxRetriesExceededError",
    "NotConfigured",
    "NotRegistered",
    "OperationalError",
    "QueueNotFound",
    "Reject",
    "Retry",
    "RetryTaskError",
    "SecurityError",
    "SecurityWarning",
    "SoftTimeLimitExceeded",
    "SystemTerminate",
    "TaskError",
    "TaskPredicate",
    "TaskRevokedError",
    "Terminated",
    "TimeLimitExceeded",
    "TimeoutError",
    "UnsupportedFeature",
    "WorkerLostError",
    "WorkerShutdown",
    "WorkerTerminate",
    "exception_fields",
    "exception_from_fields",
    "reraise",
    "unsupported",)

#: Where every NotImplementedError of the compat layer points the reader.
UNSUPPORTED_DOC = "migration_guide/unsupported.md"

UNREGISTERED_FMT = "Task of kind {0} never registered, please make sure it's imported."


def reraise(tp: type[BaseException] | None, value: BaseException, tb: TracebackType | None = None) -> NoReturn:
    """Re-raise ``value`` with traceback ``tb`` (Celery's helper; ``tp`` is ignored as in Celery)."""
    if value.__traceback__ is not tb:
        raise value.with_traceback(tb)
    raise value


# ---------------------------------------------------------------------------------------------- warnings
class CeleryWarning(UserWarning):
    """Base class for all Celery warnings."""


class CompatWarning(CeleryWarning):
    """A Celery setting or option was accepted but has no effect on qtasks (named in the message)."""


class AlwaysEagerIgnored(CeleryWarning):
    """send_task ignores the ``task_always_eager`` option."""


class DuplicateNodenameWarning(CeleryWarning):
    """Multiple workers are using the same nodename."""


class DuplicateTaskNameWarning(CeleryWarning):
    """Multiple callables are registered under the same task name."""


class FixupWarning(CeleryWarning):
    """Fixup related warning."""


class NotConfigured(CeleryWarning):
    """Celery hasn't been configured, as no config module has been found."""


class SecurityWarning(CeleryWarning):
    """Potential security issue found."""


class CPendingDeprecationWarning(PendingDeprecationWarning):
    """Warning of pending deprecation."""


class CDeprecationWarning(DeprecationWarning):
    """Warning of deprecation."""


# ---------------------------------------------------------------------------------------------- core
class CeleryError(Exception):
    """Base class for all Celery errors."""


class ImproperlyConfigured(CeleryError):
    """Celery is somehow improperly configured."""


class SecurityError(CeleryError):
    """Security related exception."""


class KombuError(Exception):
    """Common base of messaging (kombu) errors."""


class OperationalError(KombuError):
    """Recoverable message transport connection error (not a CeleryError, as in Celery)."""


# ---------------------------------------------------------------------------------------------- predicates
class TaskPredicate(CeleryError):
    """Base class for task-related semi-predicates."""


class Retry(TaskPredicate):
    """The task is to be retried later (raised by ``Task.retry``).

    ``exc`` is the exception that caused the retry (or its text), ``when`` the countdown in seconds or the
    ETA ``datetime``.
    """

    message: str | None = None
    exc: BaseException | None = None
    when: float | datetime | None = None

    def __init__(self, message: str | None = None, exc: BaseException | str | None = None,
                 when: float | datetime | None = None, is_eager: bool = False, sig: Any = None) -> None:
        self.message = message
        self.excs: str | None
        if isinstance(exc, str):
            self.exc, self.excs = None, exc
        else:
            self.exc, self.excs = exc, (repr(exc) if exc is not None else None)
        self.when = when
        self.is_eager = is_eager
        self.sig = sig
        # args carry only JSON-friendly values so a stored Retry rebuilds with cls(*args).
        super().__init__(message, self.excs, _when_arg(when))

    def humanize(self) -> str:
        if isinstance(self.when, numbers.Number):
            return f"in {self.when}s"
        return f"at {self.when}"

    def __str__(self) -> str:
        if self.message:
            return self.message
        if self.excs:
            return f"Retry {self.humanize()}: {self.excs}"
        return f"Retry {self.humanize()}"

    def __reduce__(self) -> tuple[Any, ...]:
        return self.__class__, (self.message, self.exc if self.exc is not None else self.excs, self.when)


def _when_arg(when: float | datetime | None) -> float | str | None:
    return when.isoformat() if isinstance(when, datetime) else when


RetryTaskError = Retry


class Ignore(TaskPredicate):
    """A task can raise this to ignore doing state updates."""


class Reject(TaskPredicate):
    """A task can raise this to reject the message (``requeue=True``: put it back on the queue)."""

    def __init__(self, reason: Any = None, requeue: bool = False) -> None:
        self.reason = reason
        self.requeue = requeue
        super().__init__(reason, requeue)

    def __repr__(self) -> str:
        return f"reject requeue={self.requeue}: {self.reason}"


# ---------------------------------------------------------------------------------------------- task errors
class TaskError(CeleryError):
    """Task related errors."""


class QueueNotFound(KeyError, TaskError):
    """Task routed to a queue not in ``conf.task_queues``."""


class IncompleteStream(TaskError):
    """Found the end of a stream of data, but the data isn't complete."""


class NotRegistered(KeyError, TaskError):
    """The task is not registered."""

    def __repr__(self) -> str:
        return UNREGISTERED_FMT.format(self)


class AlreadyRegistered(TaskError):
    """The task is already registered."""


class TimeoutError(TaskError):
    """The operation timed out."""


class MaxRetriesExceededError(TaskError):
    """The task's max retry limit has been exceeded."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.task_args: Any = kwargs.pop("task_args", [])
        self.task_kwargs: Any = kwargs.pop("task_kwargs", {})
        super().__init__(*args, **kwargs)


class TaskRevokedError(TaskError):
    """The task has been revoked, so no result available."""


class InvalidTaskError(TaskError):
    """The task has invalid data or isn't properly constructed."""


class ChordError(TaskError):
    """A task part of the chord raised an exception."""


# ---------------------------------------------------------------------------------------------- backend
class BackendError(Exception):
    """An issue writing or reading to/from the backend."""


class BackendGetMetaError(BackendError):
    """An issue reading from the backend."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args)
        self.task_id: str = kwargs.get("task_id", "")

    def __repr__(self) -> str:
        return super().__repr__() + " task_id:" + self.task_id


class BackendStoreError(BackendError):
    """An issue writing to the backend."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args)
        self.state: str = kwargs.get("state", "")
        self.task_id: str = kwargs.get("task_id", "")

    def __repr__(self) -> str:
        return super().__repr__() + " state:" + self.state + " task_id:" + self.task_id


# ---------------------------------------------------------------------------------------------- pool
class TimeLimitExceeded(Exception):
    """The hard time limit has been exceeded and the job has been terminated."""

    def __str__(self) -> str:
        return f"TimeLimitExceeded{self.args!r}"


class SoftTimeLimitExceeded(Exception):
    """The soft time limit has been exceeded; raised inside the task so it can clean up."""

    def __str__(self) -> str:
        return f"SoftTimeLimitExceeded{self.args!r}"


class WorkerLostError(Exception):
    """The worker processing a job has exited prematurely."""


class Terminated(Exception):
    """The worker processing a job has been terminated by user request."""


class WorkerTerminate(SystemExit):
    """Signals that the worker should terminate immediately."""


SystemTerminate = WorkerTerminate


class WorkerShutdown(SystemExit):
    """Signals that the worker should perform a warm shutdown."""


class CeleryCommandException(Exception):
    """A command-line error carrying an exit code (Celery's derives from click's ClickException)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message, exit_code)
        self.message = message
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


# ---------------------------------------------------------------------------------------------- unsupported
class UnsupportedFeature(NotImplementedError):
    """A Celery feature qtasks_compat does not implement; ``feature`` names it."""

    def __init__(self, feature: str) -> None:
        super().__init__(feature)
        self.feature = feature

    def __str__(self) -> str:
        return (f"{self.feature} is not supported by qtasks_compat; see {UNSUPPORTED_DOC} "
                "for the list and the alternatives")


def unsupported(feature: str) -> NotImplementedError:
    """The error to raise for a Celery feature we do not provide: ``raise unsupported("Task.replace")``."""
    if not feature or not isinstance(feature, str):
        raise TypeError("unsupported() needs the feature name as a non-empty string")
    return UnsupportedFeature(feature)


# ---------------------------------------------------------------------------------------------- (de)serialize
# Records written by a real Celery worker name Celery's modules; they map onto ours.
_MODULE_ALIASES = {
    "celery.exceptions": __name__,
    "billiard.exceptions": __name__,
    "kombu.exceptions": __name__,
}


def exception_fields(exc: BaseException) -> tuple[str, str, list[Any]]:
    """``(exc_module, exc_type, exc_args)`` to store for ``exc``; args that are not JSON types become reprs."""
    cls = type(exc)
    return cls.__module__, cls.__qualname__, [_jsonable(a) for a in exc.args]


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _jsonable(v) for k, v in value.items()}
    return repr(value)


def exception_from_fields(exc_module: str | None, exc_type: str, exc_args: list[Any] | tuple[Any, ...] = ()
                          ) -> BaseException:
    """Rebuild a stored exception as Celery does: ``cls(*args)`` for a class of an already imported module.

    Modules are looked up in ``sys.modules`` only (never imported: the record may come from anyone), and the
    name must resolve to an exception class, else :class:`SecurityError`. An unknown class becomes a new
    ``Exception`` subclass with that name, so ``type(exc).__name__`` still reads right.
    """
    if not exc_type:
        raise ValueError("exception information must include the exception type")
    module_name = _MODULE_ALIASES.get(exc_module or "", exc_module)
    cls: Any
    if module_name is None:
        cls = _synthetic_exception(exc_type)
    else:
        cls = sys.modules.get(module_name, builtins if module_name == "builtins" else None)
        try:
            if cls is None:
                raise AttributeError(module_name)
            for part in exc_type.split("."):
                cls = getattr(cls, part)
        except AttributeError:
            cls = _synthetic_exception(exc_type)
    if not isinstance(cls, type) or not issubclass(cls, BaseException):
        raise SecurityError(f"expected an exception class, got {exc_module}.{exc_type} with payload {exc_args!r}")
    args = list(exc_args) if isinstance(exc_args, (list, tuple)) else [exc_args]
    try:
        return cls(*args)
    except Exception:  # the class's __init__ does not take its own args back: keep the text
        return Exception(f"{cls.__qualname__}({', '.join(map(repr, args))})")


_synthetic: dict[str, type[Exception]] = {}


def _synthetic_exception(name: str) -> type[Exception]:
    # One class per name, so two reads of the same failure compare equal by type.
    cls = _synthetic.get(name)
    if cls is None:
        cls = type(name.rsplit(".", 1)[-1], (Exception,), {"__module__": __name__, "__qualname__": name})
        _synthetic[name] = cls
    return cls
