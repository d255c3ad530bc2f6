"""The one job listener the operations features share per app.

History and metrics are *sinks* of one :class:`OpsListener`, an
:class:`~.._runtime._dispatch.AttemptObserver`: the runtime tells it about each attempt
with plain values and a float timestamp (reading the wall clock once for all sinks, and
building no event object), and it fans that out. With no sink attached there is no
listener at all, so the runtime does nothing for them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .._core._clock import stamp_reader
from .._core._job import Job, JobStatus, failure_status
from .._runtime._dispatch import AttemptObserver
from .._runtime._events import JobEvent, JobEventKind
from ..exceptions import ApplicationStateError

if TYPE_CHECKING:
    from .._api._app import Jobify
    from .._runtime._runtime import Runtime

__all__ = ["OpsListener", "Sink", "attach", "hub_of", "sinks_of"]

S = TypeVar("S")


class Sink(Protocol):
    """Told about attempts (times are POSIX timestamps of the app's wall clock).

    :meth:`started` is called only if ``wants_starts``. :meth:`ended` gets ``started``,
    the start of the attempt it ends (None if the attempt never started, e.g. a job
    cancelled while scheduled); ``retried``: a retry follows; ``again``: the job runs
    again (a retry or a cron job's next slot), so False means it ended for good.
    """

    wants_starts: bool

    async def _app_starting(self, runtime: Runtime) -> None: ...

    def started(self, job: Job[Any], attempt: int, now: float) -> None: ...

    def ended(
        self,
        job: Job[Any],
        attempt: int,
        status: JobStatus,
        exception: BaseException | None,
        retried: bool,
        again: bool,
        now: float,
        started: float | None,
    ) -> None: ...


class OpsListener(AttemptObserver):
    """The attempt observer fanning each attempt out to the attached sinks.

    It reads the wall clock once per attempt start and end for all sinks, and remembers
    when each running attempt started. A sink that raises is logged, not propagated (the
    runtime calls this listener directly). Called as a plain listener with a
    :class:`JobEvent`, it feeds the sinks the same way (events of other kinds than
    STARTED, RETRYING and ENDED are not attempts: they are skipped).
    """

    __slots__ = ("_end_sinks", "_stamp", "_start_sinks", "started_at")

    def __init__(self, app: Jobify) -> None:
        self._stamp = stamp_reader(app.wall_clock)
        self._start_sinks: tuple[Sink, ...] = ()
        self._end_sinks: tuple[Sink, ...] = ()
        self.started_at: dict[str, float] = {}
        """When the running attempt of each job (by id) started (a POSIX timestamp)."""

    @property
    def sinks(self) -> tuple[Sink, ...]:
        return self._end_sinks

    def add(self, sink: Sink) -> None:
        self._end_sinks += (sink,)
        if sink.wants_starts:
            self._start_sinks += (sink,)

    async def app_starting(self, runtime: Runtime) -> None:
        """Storage is open and the jobs are restored: tell the sinks (the run history
        loads its stored runs)."""
        for sink in self._end_sinks:
            await sink._app_starting(runtime)

    def started(self, job: Job[Any], attempt: int) -> None:
        now = self.started_at[job._id] = self._stamp()
        try:
            for sink in self._start_sinks:
                sink.started(job, attempt, now)
        except Exception:
            _log.exception("recording the start of job %r failed", job._id)

    def retrying(
        self, job: Job[Any], attempt: int, exc: BaseException, next_attempt: int, delay: float
    ) -> None:
        self._attempt_ended(job, attempt, failure_status(exc), exc, True, True)

    def ended(self, job: Job[Any], status: JobStatus) -> None:
        # (the body of _attempt_ended, inlined: this runs once per job)
        now = self._stamp()
        started = self.started_at.pop(job._id, None)
        exception = None if status is _SUCCESS else job._exception
        again, attempt = job._status is _SCHEDULED, job._attempt
        try:
            for sink in self._end_sinks:
                sink.ended(job, attempt, status, exception, False, again, now, started)
        except Exception:
            _log.exception("recording the end of job %r failed", job._id)

    def _attempt_ended(
        self,
        job: Job[Any],
        attempt: int,
        status: JobStatus,
        exception: BaseException | None,
        retried: bool,
        again: bool,
    ) -> None:
        now = self._stamp()
        started = self.started_at.pop(job._id, None)
        try:
            for sink in self._end_sinks:
                sink.ended(job, attempt, status, exception, retried, again, now, started)
        except Exception:
            _log.exception("recording the end of job %r failed", job._id)

    def __call__(self, event: JobEvent) -> None:
        kind = event.kind
        if kind is _STARTED:
            self.started(event.job, event.attempt)
        elif kind is _ENDED or kind is _RETRYING:
            again = kind is _RETRYING or event.next_run is not None
            job, exception = event.job, event.exception
            self._attempt_ended(
                job, event.attempt, event.status, exception, kind is _RETRYING, again
            )


_STARTED, _RETRYING, _ENDED = JobEventKind.STARTED, JobEventKind.RETRYING, JobEventKind.ENDED
_SUCCESS, _SCHEDULED = JobStatus.SUCCESS, JobStatus.SCHEDULED
_log = logging.getLogger("jobify_trio")


def hub_of(app: Jobify) -> OpsListener | None:
    """The operations listener of ``app``, if any."""
    for listener in app._listeners:
        if isinstance(listener, OpsListener):
            return listener
    return None


def attach(app: Jobify, sink: Sink, what: str) -> OpsListener:
    """Feed ``sink`` with ``app``'s job events (before the app starts)."""
    if app.is_running:
        raise ApplicationStateError(f"create the {what} before the app starts")
    listener = hub_of(app)
    if listener is None:
        listener = OpsListener(app)
        app.add_listener(listener)
    listener.add(sink)
    return listener


def sinks_of(app: Jobify, kind: type[S]) -> Iterator[S]:
    """The sinks of type ``kind`` attached to ``app``."""
    listener = hub_of(app)
    for sink in () if listener is None else listener.sinks:
        if isinstance(sink, kind):
            yield sink
