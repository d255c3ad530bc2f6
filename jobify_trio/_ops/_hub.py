"""The one job listener the operations features share per app.

History and metrics are *sinks* of one :class:`OpsListener`, an
:class:`~.._runtime._dispatch.AttemptObserver`: the runtime tells it about each attempt
with plain values (building no event object), it reads the wall clock once for all
sinks, and it fans the attempt out. With no sink attached there is no listener at all,
so the runtime does nothing for them.

Batches: a :class:`BatchSink` (the run history, the metrics) is not called per attempt.
When an attempt starts, the hub keeps a plain tuple (a :data:`StartEntry`) on the job
itself (``Job._hub_start``: no dict, no log); when it ends, the hub appends one plain
tuple (an :data:`EndEntry`, holding that start entry) to a log, and hands the sinks the
log each time :data:`BATCH` attempts have ended (:meth:`OpsListener.flush`), so the
per-job cost is a clock read and a tuple per start and per end, and the sinks' work
runs in one loop over many attempts. Every read of a sink's state (``RunHistory.runs``,
a metrics scrape) flushes first, so readers never see a stale value; a reader that must
also see the attempts still running (the metrics count a start when it starts) reads
their start entries from the running jobs (:meth:`OpsListener.running_starts`), under
the flush's lock. The log holds no job and no exception: a failed attempt's error is
kept as its short text (:func:`error_text`). A :class:`Sink` (per-attempt calls) is
still called at once, for sinks that must see each attempt as it happens.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar, cast

from .._core._clock import stamp_reader
from .._core._job import Job, JobStatus, failure_status
from .._runtime._dispatch import AttemptObserver
from .._runtime._events import JobEvent, JobEventKind, JobListener, StartedEvent
from ..exceptions import ApplicationStateError

if TYPE_CHECKING:
    from .._api._app import Jobify
    from .._runtime._runtime import Runtime

__all__ = [
    "BATCH", "BatchSink", "EndEntry", "OpsListener", "Sink", "StartEntry", "attach",
    "error_text", "hub_of", "sinks_of",
]  # fmt: skip

S = TypeVar("S")

BATCH = 128
"""Attempt ends the hub logs before it hands them (and the starts) to the batch sinks
(128, not 32: each hand-over runs code the job path left cold, measured at about 0.2 to
0.3 µs per job more with 32; 512 gained nothing more)."""

ERROR_TEXT_LIMIT = 200
"""Characters of an error kept per run (the exception's type name and message)."""

StartEntry = tuple[str, int, float, datetime]
"""(task name, attempt, started, due): an attempt started at ``started`` (a POSIX
timestamp of the app's wall clock); ``due`` is the job's ``exec_at`` then. The hub keeps
it on the job while the attempt runs (``Job._hub_start``), and in the attempt's end."""

EndEntry = tuple[str, str, int, JobStatus, "str | None", bool, bool, float, "StartEntry | None"]
"""(job id, task name, attempt, status, error, retried, again, ended, start): an attempt
ended (see :class:`Sink` for ``retried`` and ``again``); ``start`` is the start entry of
the attempt (None if it never started, e.g. a job cancelled while scheduled); ``error``
is :func:`error_text` of its exception (None on success)."""

STARTED: Final = 2
"""The index of the start time in a :data:`StartEntry`."""


def error_text(exc: BaseException | None, limit: int = ERROR_TEXT_LIMIT) -> str | None:
    """``"TypeName: message"`` cut to ``limit`` characters, or None."""
    if exc is None:
        return None
    message = str(exc)
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


class BatchSink(Protocol):
    """Told about attempt ends in batches, in the order they happened (see the module
    docs); each end holds its attempt's start. A batch sink is also a :class:`Sink` in
    the sense that :func:`sinks_of` finds it.
    """

    async def _app_starting(self, runtime: Runtime) -> None: ...

    def _app_stopping(self) -> None: ...

    def record(self, ends: Sequence[EndEntry]) -> None: ...


class OpsListener(AttemptObserver):
    """The attempt observer fanning each attempt out to the attached sinks.

    It reads the wall clock once per attempt start and end for all sinks, and keeps each
    running attempt's start entry on its job (``Job._hub_start``). A sink that raises is
    logged, not propagated (the runtime calls this listener directly). Called as a plain
    listener with a :class:`JobEvent`, it feeds the sinks the same way (events of other
    kinds than STARTED, RETRYING and ENDED are not attempts: they are skipped).

    :meth:`flush` may run in another thread (a metrics scrape): a lock serialises
    flushes, and the hot path only appends to the logs (a flush takes and deletes the
    entries it saw, so an entry appended meanwhile waits for the next flush).
    """

    __slots__ = (
        "_app", "_batch_sinks", "_end_sinks", "_ends", "_lock", "_log_ends", "_stamp",
        "_start_sinks", "_then", "batch",
    )  # fmt: skip

    def __init__(self, app: Jobify) -> None:
        self._app = app
        self._stamp = stamp_reader(app.wall_clock)
        self._start_sinks: tuple[Sink, ...] = ()
        self._end_sinks: tuple[Sink, ...] = ()
        self._batch_sinks: tuple[BatchSink, ...] = ()
        self._log_ends = False
        self._ends: list[EndEntry] = []
        self._lock = threading.Lock()
        self.batch = BATCH
        """Attempt ends logged before a flush (1 while a run history stores runs: a
        stored run is queued to the storage writer when its attempt ends)."""
        self._then: JobListener | None = None  # the app's one plain listener (see tell)

    @property
    def sinks(self) -> tuple[Sink | BatchSink, ...]:
        return (*self._end_sinks, *self._batch_sinks)

    def add(self, sink: Sink | BatchSink) -> None:
        if hasattr(sink, "record"):
            self._batch_sinks += (cast(BatchSink, sink),)
            self._log_ends = True
            return
        self._end_sinks += (sink,)
        if sink.wants_starts:
            self._start_sinks += (sink,)

    async def app_starting(self, runtime: Runtime) -> None:
        """Storage is open and the jobs are restored: tell the sinks (the run history
        loads its stored runs)."""
        for sink in self.sinks:
            await sink._app_starting(runtime)

    def app_stopping(self) -> None:
        """Every job has ended: hand the logged attempts to the batch sinks (the run
        history queues the last stored runs before the storage writer's final flush)."""
        self.flush()
        for sink in self._batch_sinks:
            sink._app_stopping()

    def flush(self, then: Callable[[], None] | None = None) -> None:
        """Hand the logged attempt ends to the batch sinks (before reading them); then call
        ``then`` (a reader's own work, e.g. counting :meth:`running_starts`) under the
        same lock, which serialises it with every sink's ``record``."""
        with self._lock:
            ends = self._ends
            n_ends = len(ends)
            if n_ends:
                new_ends = ends[:n_ends]
                del ends[:n_ends]
                for sink in self._batch_sinks:
                    try:
                        sink.record(new_ends)
                    except Exception:
                        _log.exception("recording job attempts in %r failed", sink)
            if then is not None:
                then()

    def running_starts(self) -> Iterator[tuple[str, StartEntry]]:
        """(job id, start entry) of each attempt running now (any thread: each entry is
        read in one step from its job)."""
        for job in self._app.get_active_jobs():
            start = getattr(job, "_hub_start", None)
            if start is not None:
                yield job._id, start

    def tell(self, listener: JobListener | None) -> bool:
        """Call ``listener`` after each attempt's start and end with its event (see
        ``AttemptObserver.tell``): the dispatcher asks only on the system clock, whose
        reading the hub takes as the started event's time."""
        self._then = listener
        return listener is not None

    def started(self, job: Job[Any], attempt: int) -> None:
        stamp = self._stamp  # (read as an attribute: a method load of a slot is not specialised)
        now = stamp()
        job._hub_start = (job._task.name, attempt, now, job._exec_at)
        if self._start_sinks:
            try:
                for sink in self._start_sinks:
                    sink.started(job, attempt, now)
            except Exception:
                _log.exception("recording the start of job %r failed", job._id)
        then = self._then
        if then is not None:  # (what the dispatcher's _started_1 does, see tell)
            event = _new(StartedEvent)
            event.job = job
            event.attempt = attempt
            event.scheduled_at = job._exec_at
            event._started = now
            try:
                then(event)
            except Exception:
                _log.exception("job event listener %r failed on %s", then, event.kind)

    def retrying(
        self, job: Job[Any], attempt: int, exc: BaseException, next_attempt: int, delay: float
    ) -> None:
        self._attempt_ended(job, attempt, failure_status(exc), exc, True, True)

    def ended(self, job: Job[Any], status: JobStatus) -> None:
        # (the body of _attempt_ended, inlined: this runs once per job)
        stamp = self._stamp
        now = stamp()
        try:  # (_start_of, inlined)
            start: StartEntry | None = job._hub_start
        except AttributeError:  # (the hub never saw this job start)
            start = None
        else:
            job._hub_start = None
        again, attempt = job._status is _SCHEDULED, job._attempt
        if self._log_ends:
            error = None if status is _SUCCESS else error_text(job._exception)
            ends = self._ends
            ends.append((job._id, job._task.name, attempt, status, error, False, again, now, start))
            if len(ends) >= self.batch:
                self.flush()
        if self._end_sinks:
            exception = None if status is _SUCCESS else job._exception
            started = None if start is None else start[STARTED]
            try:
                for sink in self._end_sinks:
                    sink.ended(job, attempt, status, exception, False, again, now, started)
            except Exception:
                _log.exception("recording the end of job %r failed", job._id)
        then = self._then
        if then is not None:  # (what the dispatcher's _ended_1 does, see tell)
            event = _new(JobEvent)
            event.kind = _ENDED
            event.job = job
            event.attempt = attempt
            event.status = status
            event.exception = None if status is _SUCCESS else job._exception
            event.next_run = job._exec_at if again else None
            try:
                then(event)
            except Exception:
                _log.exception("job event listener %r failed on %s", then, event.kind)

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
        start = _start_of(job)
        if self._log_ends:
            error = error_text(exception)
            entry = (job._id, job._task.name, attempt, status, error, retried, again, now, start)
            self._ends.append(entry)
            if len(self._ends) >= self.batch:
                self.flush()
        started = None if start is None else start[STARTED]
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
_new = object.__new__  # (builds an event without its __init__, as the dispatcher does)


def _start_of(job: Job[Any]) -> StartEntry | None:
    """The start entry of ``job``'s attempt that ends now (None if it never started), which
    the job forgets."""
    try:
        start: StartEntry | None = job._hub_start
    except AttributeError:  # (the hub never saw this job start)
        return None
    job._hub_start = None
    return start


def hub_of(app: Jobify) -> OpsListener | None:
    """The operations listener of ``app``, if any."""
    for listener in app._listeners:
        if isinstance(listener, OpsListener):
            return listener
    return None


def attach(app: Jobify, sink: Sink | BatchSink, what: str) -> OpsListener:
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
