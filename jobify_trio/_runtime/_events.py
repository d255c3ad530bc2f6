"""Job events for observers: what :meth:`Jobify.add_listener` callbacks receive.

The runtime builds a :class:`JobEvent` only when at least one listener is registered;
with none, the actors test one attribute against ``None`` and do nothing else.
Listeners are called synchronously inside the actors, so they must be quick and must
not block (hand slow work to a channel or a thread). An exception raised by a listener
is logged on the ``jobify_trio`` logger and otherwise ignored.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import attrs

from .._core._job import Job, JobStatus, failure_status

__all__ = ["EventDispatcher", "JobEvent", "JobEventKind", "JobListener"]

_log = logging.getLogger("jobify_trio")


class JobEventKind(enum.StrEnum):
    """What happened to the job."""

    STARTED = "started"
    """An attempt started running."""
    RETRYING = "retrying"
    """An attempt failed or timed out and will be retried at ``next_run``."""
    ENDED = "ended"
    """A run ended with ``status``; ``next_run`` is set when the job runs again (cron)."""
    PAUSED = "paused"  # the job was paused (job.pause(), a command, the CLI or the dashboard)
    RESUMED = "resumed"  # the job was resumed; ``next_run`` is when it runs next


@attrs.frozen(kw_only=True)
class JobEvent:
    """One event in the life of a job, as seen by a listener.

    ``status`` is the outcome of the attempt or run (``RUNNING`` for ``STARTED``; for
    ``RETRYING`` the status the attempt would have ended with, ``FAILED`` or ``TIMEOUT``).
    ``job`` is the live handle: read it during the callback, its fields change later.
    """

    #: What happened.
    kind: JobEventKind
    #: The job (a live handle).
    job: Job[Any]
    #: The attempt number, 1 for the first.
    attempt: int
    #: The outcome, as described above.
    status: JobStatus
    #: The exception of a failed or timed-out attempt, else None.
    exception: BaseException | None = None
    #: When the job runs next (a retry, or a cron job's next run), else None.
    next_run: datetime | None = None

    @property
    def task_name(self) -> str:
        """The name of the job's task."""
        return self.job._task.name


JobListener = Callable[[JobEvent], object]
"""A callable taking a :class:`JobEvent`; its return value is ignored."""


class EventDispatcher:
    """Calls every listener with an event; a failing listener is logged, not propagated."""

    __slots__ = ("_listeners",)

    def __init__(self, listeners: Iterable[JobListener]) -> None:
        self._listeners = tuple(listeners)

    def __call__(self, event: JobEvent) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                _log.exception("job event listener %r failed on %s", listener, event.kind)

    def started(self, job: Job[Any], attempt: int) -> None:
        self(JobEvent(kind=JobEventKind.STARTED, job=job, attempt=attempt, status=job.status))

    def retrying(self, job: Job[Any], attempt: int, exc: BaseException, at: datetime) -> None:
        status = failure_status(exc)
        self(
            JobEvent(
                kind=JobEventKind.RETRYING,
                job=job,
                attempt=attempt,
                status=status,
                exception=exc,
                next_run=at,
            )
        )

    def ended(self, job: Job[Any], status: JobStatus) -> None:
        again = job.status is JobStatus.SCHEDULED
        self(
            JobEvent(
                kind=JobEventKind.ENDED,
                job=job,
                attempt=job._attempt,
                status=status,
                exception=None if status is JobStatus.SUCCESS else job.exception,
                next_run=job.exec_at if again else None,
            )
        )
