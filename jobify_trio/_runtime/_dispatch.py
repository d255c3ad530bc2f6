"""Building job events and calling the listeners: :class:`EventDispatcher`.

The runtime creates one dispatcher only when the app has listeners (``Outcomes.events``
stays None otherwise), so with no listener no event is ever built and no decision is
enumerated (skipped slots, DST shifts). Each method builds one event and calls every
listener with it, in the order they were added; a listener that raises is logged, not
propagated.

A listener that is an :class:`AttemptObserver` (the operations hub feeding the run
history and the metrics) is told about attempts by plain calls instead: with only
observers registered, no event object is built at all, and with only one the runtime
calls it directly. The usual mixes (one listener, with or without the hub) share one
method per event, without the loops; on the system clock, the hub with one listener
builds that listener's events itself (:meth:`AttemptObserver.tell`), and the runtime
calls the hub alone.
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .._core._clock import SystemWallClock, WallClock
from .._core._job import Job, JobStatus, failure_status
from .._cron._dst import DstShift, DstShiftKind
from .._cron._misfire import NextAfter, Skipped, list_skipped
from .._cron._values import AnyMisfirePolicy
from ._decision_events import (
    DstEvent,
    LeaseTakenOverEvent,
    SlotClaimedElsewhereEvent,
    SlotsSkippedEvent,
)
from ._events import JobEvent, JobEventKind, JobListener, RetryingEvent, StartedEvent

if TYPE_CHECKING:
    from ._runtime import Runtime

__all__ = ["AttemptObserver", "EventDispatcher"]

_log = logging.getLogger("jobify_trio")

_ENDED, _SCHEDULED, _SUCCESS = JobEventKind.ENDED, JobStatus.SCHEDULED, JobStatus.SUCCESS
_new = object.__new__
"""Builds an event without running its ``__init__``, whose fields the hot paths then set
themselves: a class's Python ``__init__`` is called through C with a frame of its own,
about 600 to 800 instructions per event more (measured with callgrind, Python 3.11)."""
_DST_KINDS = {
    DstShiftKind.GAP: JobEventKind.DST_GAP,
    DstShiftKind.OVERLAP: JobEventKind.DST_OVERLAP,
}


class AttemptObserver(abc.ABC):
    """A listener told about attempts by plain calls, with the runtime's own arguments:
    no event object is built for it, and it reads the clock itself if it needs to.

    When it is the app's only listener, the dispatcher hands the runtime its methods
    themselves (no call in between). It must not raise. It is not told about decision
    events, nor called by :meth:`EventDispatcher.__call__`.
    """

    __slots__ = ()

    @abc.abstractmethod
    def started(self, job: Job[Any], attempt: int) -> None:
        """Attempt ``attempt`` of ``job`` starts now."""

    @abc.abstractmethod
    def retrying(
        self, job: Job[Any], attempt: int, exc: BaseException, next_attempt: int, delay: float
    ) -> None:
        """Attempt ``attempt`` failed with ``exc``; ``next_attempt`` runs in ``delay`` s."""

    @abc.abstractmethod
    def ended(self, job: Job[Any], status: JobStatus) -> None:
        """A run of ``job`` ended with ``status`` (``job.status`` is SCHEDULED if it runs
        again, a cron job's next slot)."""

    def tell(self, listener: JobListener | None) -> bool:
        """Whether it will call ``listener``, the app's one plain listener, itself after
        its own work in :meth:`started` and :meth:`ended`, with the events the dispatcher
        would build (on the system clock: a started event's time is the observer's own
        reading of it). Then the runtime calls the observer alone, one call per attempt
        less. Told None, it forgets any listener told before. The default tells no one."""
        return False

    async def app_starting(self, runtime: Runtime) -> None:  # noqa: B027 (optional hook)
        """The app's storage is open and its jobs restored; no job has run yet."""

    def app_stopping(self) -> None:  # noqa: B027 (optional hook)
        """Every job has ended; the storage writer is flushed next."""


class EventDispatcher:
    """Builds each event and calls every listener with it (see the module docs).

    ``started``, ``retrying`` and ``ended`` are what the runtime calls when an attempt
    starts, fails and will be retried, or a run ends. ``instance`` is this instance's id
    once it shares a store (set by the runtime).
    """

    __slots__ = (
        "_listeners", "_now", "_observer", "_observers", "ended", "instance", "retrying", "started",
    )  # fmt: skip

    started: Callable[[Job[Any], int], None]
    retrying: Callable[[Job[Any], int, BaseException, int, float], None]
    ended: Callable[[Job[Any], JobStatus], None]

    def __init__(self, listeners: Iterable[JobListener], clock: WallClock) -> None:
        observers: list[AttemptObserver] = []
        others: list[JobListener] = []
        for listener in listeners:
            if isinstance(listener, AttemptObserver):
                observers.append(listener)
            else:
                others.append(listener)
        for observer in observers:  # (a listener told at an earlier start is forgotten)
            observer.tell(None)
        self._observers = tuple(observers)
        self._listeners = tuple(others)
        self._observer = observers[0] if len(observers) == 1 else None  # (for _started_1)
        # a started event's time: the system clock as a float (the event builds its
        # datetime only if read), any other clock as its datetime
        self._now: Callable[[], datetime | float] = (
            time.time if type(clock) is SystemWallClock else clock.now
        )
        self.instance: str | None = None
        if not others and len(observers) == 1:  # only the operations hub: straight to it
            (observer,) = observers
            self.started, self.retrying, self.ended = (
                observer.started, observer.retrying, observer.ended,
            )  # fmt: skip
        elif len(observers) <= 1 and len(others) == 1:  # one listener (and the hub): no loops
            self.started, self.retrying, self.ended = self._started_1, self._retrying, self._ended_1
            if observers and self._now is time.time and observers[0].tell(others[0]):
                self.started, self.ended = observers[0].started, observers[0].ended
        else:
            self.started, self.retrying, self.ended = self._started, self._retrying, self._ended

    async def app_starting(self, runtime: Runtime) -> None:
        """Tell every observer that the app's storage is open (see ``AttemptObserver``)."""
        for observer in self._observers:
            await observer.app_starting(runtime)

    def app_stopping(self) -> None:
        """Tell every observer that every job has ended (see ``AttemptObserver``)."""
        for observer in self._observers:
            observer.app_stopping()

    def __call__(self, event: JobEvent) -> None:
        """Call every listener (not the observers) with ``event``."""
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                _log.exception("job event listener %r failed on %s", listener, event.kind)

    # -- attempts ------------------------------------------------------------------------

    def _started(self, job: Job[Any], attempt: int) -> None:
        for observer in self._observers:
            observer.started(job, attempt)
        if self._listeners:  # (the listener loop of __call__, inlined: once per job)
            event = StartedEvent(job, attempt, job._exec_at, self._now())
            for listener in self._listeners:
                try:
                    listener(event)
                except Exception:
                    _log.exception("job event listener %r failed on %s", listener, event.kind)

    def _started_1(self, job: Job[Any], attempt: int) -> None:
        # (_started for one listener and at most one observer, the loops unrolled: this
        # runs once per job, and the hub plus a listener have no call in between)
        observer = self._observer
        if observer is not None:
            observer.started(job, attempt)
        event = _new(StartedEvent)  # (StartedEvent.__init__, inlined: see _new)
        event.job = job
        event.attempt = attempt
        event.scheduled_at = job._exec_at
        event._started = self._now()
        try:
            self._listeners[0](event)
        except Exception:
            _log.exception("job event listener %r failed on %s", self._listeners[0], event.kind)

    def _ended_1(self, job: Job[Any], status: JobStatus) -> None:
        # (_ended for one listener and at most one observer, as _started_1: once per job)
        observer = self._observer
        if observer is not None:
            observer.ended(job, status)
        event = _new(JobEvent)  # (JobEvent.__init__, inlined: see _new)
        event.kind = _ENDED
        event.job = job
        event.attempt = job._attempt
        event.status = status
        event.exception = None if status is _SUCCESS else job._exception
        event.next_run = job._exec_at if job._status is _SCHEDULED else None
        try:
            self._listeners[0](event)
        except Exception:
            _log.exception("job event listener %r failed on %s", self._listeners[0], event.kind)

    def _retrying(
        self, job: Job[Any], attempt: int, exc: BaseException, next_attempt: int, delay: float
    ) -> None:
        for observer in self._observers:
            observer.retrying(job, attempt, exc, next_attempt, delay)
        if self._listeners:
            status, retry_delay = failure_status(exc), timedelta(seconds=delay)
            next_run = job._exec_at
            self(RetryingEvent(job, attempt, status, exc, next_run, next_attempt, retry_delay))

    def _ended(self, job: Job[Any], status: JobStatus) -> None:
        for observer in self._observers:
            observer.ended(job, status)
        if self._listeners:  # (the listener loop of __call__, inlined: once per job)
            next_run = job._exec_at if job._status is _SCHEDULED else None
            exception = None if status is _SUCCESS else job._exception
            event = JobEvent(_ENDED, job, job._attempt, status, exception, next_run)
            for listener in self._listeners:
                try:
                    listener(event)
                except Exception:
                    _log.exception("job event listener %r failed on %s", listener, event.kind)

    # -- decisions -----------------------------------------------------------------------

    def slots_skipped(
        self,
        job: Job[Any],
        policy: AnyMisfirePolicy,
        skipped: Skipped,
        next_after: NextAfter,
        next_run: datetime | None,
    ) -> None:
        """The misfire policy did not run the slots of ``skipped`` (listed here, bounded)."""
        times, truncated = list_skipped(skipped, next_after)
        if not times:
            return
        event = SlotsSkippedEvent(
            job, policy=policy, times=times, truncated=truncated,
            coalesced_into=skipped.coalesced_into, next_run=next_run,
        )  # fmt: skip
        self(event)

    def dst_shifted(self, job: Job[Any], shift: DstShift) -> None:
        kind = _DST_KINDS[shift.kind]
        slot, wall_time, skipped = shift.slot, shift.wall_time, shift.skipped
        self(DstEvent(kind, job, slot=slot, wall_time=wall_time, skipped=skipped))

    def lease_taken_over(self, job: Job[Any], origin: str | None) -> None:
        self(LeaseTakenOverEvent(job, instance=self.instance or "", origin=origin))

    def slot_claimed_elsewhere(self, job: Job[Any], slot: datetime) -> None:
        self(SlotClaimedElsewhereEvent(job, slot=slot, instance=self.instance or ""))
