"""The protocol between actors: frozen message classes sent over trio memory channels.

Commands are imperative (:class:`RunJob`, :class:`ArmTimer`, :class:`DisarmTimer`);
events are past tense (:class:`AttemptFailed`). A message carries the job's
``generation`` at the time it was made: re-arming or replacing a job bumps the
generation, so a stale message that was already in flight is recognised and dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from ._job import Job

__all__ = ["ArmTimer", "AttemptFailed", "DisarmTimer", "RunJob", "TimerMessage"]


@attrs.frozen(kw_only=True, slots=True)
class RunJob:
    """Executor, run attempt ``attempt`` of ``job`` now."""

    job: Job[Any]
    generation: int
    attempt: int = 1


@attrs.frozen(kw_only=True, slots=True)
class ArmTimer:
    """Scheduler, send :class:`RunJob` for ``job`` when the wall clock reaches ``job.exec_at``."""

    job: Job[Any]
    generation: int
    attempt: int = 1


@attrs.frozen(kw_only=True, slots=True)
class DisarmTimer:
    """Scheduler, forget the timer of ``job`` (it was cancelled or re-armed)."""

    job: Job[Any]


@attrs.frozen(kw_only=True, slots=True)
class AttemptFailed:
    """Supervisor, attempt ``attempt`` of ``job`` raised ``exception`` (or timed out)."""

    job: Job[Any]
    generation: int
    attempt: int
    exception: BaseException


TimerMessage = ArmTimer | DisarmTimer
