"""Celery task state names and sets (``celery.states``).

The strings are the ones Celery stores, so records written by either engine read the same. A task id the
backend does not know reads as :data:`PENDING`; :data:`STARTED` is written only with ``track_started``;
:data:`RECEIVED` and :data:`REJECTED` appear only in events.
"""

from __future__ import annotations

__all__ = (
    "ALL_STATES",
    "EXCEPTION_STATES",
    "FAILURE",
    "IGNORED",
    "PENDING",
    "PRECEDENCE",
    "PROPAGATE_STATES",
    "READY_STATES",
    "RECEIVED",
    "REJECTED",
    "RETRY",
    "REVOKED",
    "STARTED",
    "SUCCESS",
    "UNREADY_STATES",
    "precedence",
    "state",
)

#: Task state is unknown (assumed pending since you know the id).
PENDING = "PENDING"
#: Task was received by a worker (only used in events).
RECEIVED = "RECEIVED"
#: Task was started by a worker (``task_track_started``).
STARTED = "STARTED"
#: Task succeeded.
SUCCESS = "SUCCESS"
#: Task failed.
FAILURE = "FAILURE"
#: Task was revoked.
REVOKED = "REVOKED"
#: Task was rejected (only used in events).
REJECTED = "REJECTED"
#: Task is waiting for retry.
RETRY = "RETRY"
#: The task raised ``Ignore``: no state is stored for it.
IGNORED = "IGNORED"

READY_STATES = frozenset({SUCCESS, FAILURE, REVOKED})
UNREADY_STATES = frozenset({PENDING, RECEIVED, STARTED, REJECTED, RETRY})
EXCEPTION_STATES = frozenset({RETRY, FAILURE, REVOKED})
PROPAGATE_STATES = frozenset({FAILURE, REVOKED})
# Celery leaves REJECTED and IGNORED out of ALL_STATES; kept identical so set arithmetic matches.
ALL_STATES = frozenset({PENDING, RECEIVED, STARTED, SUCCESS, FAILURE, RETRY, REVOKED})

#: Lower index means higher precedence; ``None`` stands for any custom state (e.g. ``"PROGRESS"``).
PRECEDENCE: list[str | None] = [SUCCESS, FAILURE, None, REVOKED, STARTED, RECEIVED, REJECTED, RETRY, PENDING]
_PRECEDENCE_LOOKUP = {name: index for index, name in enumerate(PRECEDENCE)}
_NONE_PRECEDENCE = _PRECEDENCE_LOOKUP[None]


def precedence(state: str | None) -> int:
    """Precedence index of ``state`` (lower is higher); custom states rank just below FAILURE."""
    return _PRECEDENCE_LOOKUP.get(state, _NONE_PRECEDENCE)


class state(str):
    """A state string whose comparisons follow precedence: ``state(PENDING) < state(SUCCESS)``."""

    __slots__ = ()

    def __gt__(self, other: str) -> bool:
        return precedence(self) < precedence(other)

    def __ge__(self, other: str) -> bool:
        return precedence(self) <= precedence(other)

    def __lt__(self, other: str) -> bool:
        return precedence(self) > precedence(other)

    def __le__(self, other: str) -> bool:
        return precedence(self) >= precedence(other)
