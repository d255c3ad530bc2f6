"""Job events for observers: what :meth:`Jobify.add_listener` callbacks receive.

Every event is a :class:`JobEvent`; its ``kind`` says what happened, and the kinds that
carry more than the common fields have a subclass (``isinstance`` or ``match`` on it):

* attempts: STARTED (:class:`StartedEvent`: when it was due, how late it started),
  RETRYING (:class:`RetryingEvent`: the next attempt and the delay), ENDED;
* decisions the scheduler made: SLOTS_SKIPPED (:class:`SlotsSkippedEvent`), DST_GAP and
  DST_OVERLAP (:class:`DstEvent`), LEASE_TAKEN_OVER (:class:`LeaseTakenOverEvent`),
  SLOT_CLAIMED_ELSEWHERE (:class:`SlotClaimedElsewhereEvent`); see :mod:`._decision_events`.

Cost: the runtime builds an event only when at least one listener is registered; with
none, the actors test one attribute against ``None`` and do nothing else. Events are
plain ``__slots__`` objects with a plain ``__init__`` (two are built per job, so an
attrs class's frozen ``__init__`` was most of a listener's cost); the runtime's hot paths
build started and ended events without it, setting the slots themselves (see
``_dispatch._new`` and the hub's ``tell``): a field added here must be set there too
(``tests/test_ops_listener.py`` fails on a slot they leave unset).
A started event keeps the system clock's reading as a float and builds its
``started_at`` datetime only if it is read (``datetime.now`` costs about four times
``time.time``). They are values: read them, never assign to them (every listener gets
the same object).

Listeners are called synchronously inside the actors, so they must be quick and must not
block (hand slow work to a channel or a thread). An exception raised by a listener is
logged on the ``jobify_trio`` logger and otherwise ignored.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from .._core._job import Job, JobStatus

__all__ = ["JobEvent", "JobEventKind", "JobListener", "RetryingEvent", "StartedEvent"]

_ZERO = timedelta(0)


class JobEventKind(enum.StrEnum):
    """What happened to the job."""

    STARTED = "started"
    """An attempt started running (:class:`StartedEvent`)."""
    RETRYING = "retrying"
    """An attempt failed or timed out and will be retried at ``next_run``
    (:class:`RetryingEvent`)."""
    ENDED = "ended"
    """A run ended with ``status``; ``next_run`` is set when the job runs again (cron)."""
    PAUSED = "paused"
    """The job was paused (``job.pause()``, a command, the CLI or the dashboard)."""
    RESUMED = "resumed"
    """The job was resumed; ``next_run`` is when it runs next."""
    SLOTS_SKIPPED = "slots_skipped"
    """A late cron job's misfire policy skipped slots, or coalesced them into one run
    (:class:`SlotsSkippedEvent`)."""
    DST_GAP = "dst_gap"
    """A cron slot whose wall time does not exist (a spring-forward gap) runs at the end of
    the gap (:class:`DstEvent`)."""
    DST_OVERLAP = "dst_overlap"
    """A fixed-time cron slot whose wall time happens twice (a fall-back overlap) runs
    once, in the first occurrence (:class:`DstEvent`)."""
    LEASE_TAKEN_OVER = "lease_taken_over"
    """This instance adopted a job whose owner died or stopped (shared store,
    :class:`LeaseTakenOverEvent`)."""
    SLOT_CLAIMED_ELSEWHERE = "slot_claimed_elsewhere"
    """Another instance claimed a cron job's slot: the job runs there from now on (shared
    store, :class:`SlotClaimedElsewhereEvent`)."""


class JobEvent:
    """One event in the life of a job, as seen by a listener.

    ``status`` is the outcome of the attempt or run (``RUNNING`` for ``STARTED``; for
    ``RETRYING`` the status the attempt would have ended with, ``FAILED`` or ``TIMEOUT``;
    for a decision event the job's status when it was made). ``job`` is the live handle:
    read it during the callback, its fields change later. Events of some kinds are
    instances of a subclass with more fields (see :class:`JobEventKind`).
    """

    __slots__ = ("attempt", "exception", "job", "kind", "next_run", "status")

    _fields: ClassVar[tuple[str, ...]] = (
        "kind", "job", "attempt", "status", "exception", "next_run",
    )  # fmt: skip

    #: What happened.
    kind: JobEventKind
    #: The job (a live handle).
    job: Job[Any]
    #: The attempt number, 1 for the first (0 for a job that has not run yet).
    attempt: int
    #: The outcome, as described above.
    status: JobStatus
    #: The exception of a failed or timed-out attempt, else None.
    exception: BaseException | None
    #: When the job runs next (a retry, or a cron job's next run), else None.
    next_run: datetime | None

    def __init__(
        self,
        kind: JobEventKind,
        job: Job[Any],
        attempt: int,
        status: JobStatus,
        exception: BaseException | None = None,
        next_run: datetime | None = None,
    ) -> None:
        self.kind = kind
        self.job = job
        self.attempt = attempt
        self.status = status
        self.exception = exception
        self.next_run = next_run

    @property
    def task_name(self) -> str:
        """The name of the job's task."""
        return self.job._task.name

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self), self._values()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({fields})"


class StartedEvent(JobEvent):
    """An attempt started (kind ``STARTED``, status ``RUNNING``): when it was due and how
    late it started."""

    __slots__ = ("_started", "scheduled_at")

    _fields = (*JobEvent._fields, "scheduled_at", "started_at")

    # the same in every started event: class attributes, which shadow JobEvent's slots
    kind: JobEventKind = JobEventKind.STARTED
    status: JobStatus = JobStatus.RUNNING
    exception: BaseException | None = None
    next_run: datetime | None = None

    #: When the attempt was due: ``job.exec_at`` (the cron slot, the retry's time, the
    #: time a pushed job was pushed).
    scheduled_at: datetime

    def __init__(
        self, job: Job[Any], attempt: int, scheduled_at: datetime, started_at: datetime | float
    ) -> None:
        # (the fields are set here, not through super().__init__: this runs once per job;
        # those that are the same in every started event are class attributes)
        self.job = job
        self.attempt = attempt
        self.scheduled_at = scheduled_at
        self._started = started_at

    @property
    def started_at(self) -> datetime:
        """When it started, by the app's wall clock.

        (The runtime reads the system clock as a POSIX timestamp, a float: the datetime is
        built, in UTC, only if a listener reads this field.)
        """
        started = self._started
        if type(started) is float:
            started = self._started = datetime.fromtimestamp(started, UTC)
        return started  # type: ignore[return-value]

    @property
    def lateness(self) -> timedelta:
        """How late the attempt started: ``started_at - scheduled_at``, never negative (a
        timer may fire up to a millisecond early: that is on time)."""
        late = self.started_at - self.scheduled_at
        return late if late > _ZERO else _ZERO


class RetryingEvent(JobEvent):
    """A failed attempt will be retried (kind ``RETRYING``): which attempt comes next, and
    after how long. ``attempt`` is the attempt that failed, ``exception`` its error,
    ``status`` ``FAILED`` or ``TIMEOUT``, ``next_run`` when the next attempt is due."""

    __slots__ = ("delay", "next_attempt")

    _fields = (*JobEvent._fields, "next_attempt", "delay")

    #: The number of the attempt that will run (``attempt + 1``).
    next_attempt: int
    #: The delay the retry policy chose (``next_run`` minus the time of the failure).
    delay: timedelta

    def __init__(
        self,
        job: Job[Any],
        attempt: int,
        status: JobStatus,
        exception: BaseException,
        next_run: datetime,
        next_attempt: int,
        delay: timedelta,
    ) -> None:
        super().__init__(JobEventKind.RETRYING, job, attempt, status, exception, next_run)
        self.next_attempt = next_attempt
        self.delay = delay


JobListener = Callable[[JobEvent], object]
"""A callable taking a :class:`JobEvent`; its return value is ignored."""
