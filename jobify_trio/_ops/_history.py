"""In-memory run history: the last ``per_job`` attempts of each job, for ``max_jobs`` jobs.

A :class:`RunHistory` is fed every job event. It keeps one ring buffer (a bounded deque) per
job id, and at most ``max_jobs`` job ids: past that bound it forgets the job that ended
longest ago first, and only when every remembered job is still active the one seen
first. The hot path (one call per event) stores plain tuples; :class:`RunRecord`
values are built only when someone reads the history.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

import attrs

from .._core._job import JobStatus
from .._runtime._events import JobEvent, JobEventKind
from ._hub import attach, sinks_of

if TYPE_CHECKING:
    from .._api._app import Jobify

__all__ = ["JobRuns", "RunHistory", "RunRecord", "error_text", "find_history"]

_RETRYING, _SUCCESS = JobEventKind.RETRYING, JobStatus.SUCCESS

ERROR_TEXT_LIMIT = 200
"""Characters of an error kept per run (the exception's type name and message)."""


def error_text(exc: BaseException | None, limit: int = ERROR_TEXT_LIMIT) -> str | None:
    """``"TypeName: message"`` cut to ``limit`` characters, or None."""
    if exc is None:
        return None
    message = str(exc)
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


@attrs.frozen(kw_only=True)
class RunRecord:
    """One attempt of a job that has ended (or a job cancelled before it ran).

    ``status`` is how the attempt ended; ``retried`` is True when a retry followed it.
    ``started_at`` is None for a job cancelled while it was only scheduled.
    """

    job_id: str
    task: str
    attempt: int
    status: JobStatus
    started_at: datetime | None
    ended_at: datetime
    error: str | None = None
    retried: bool = False

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, or None if the attempt never started."""
        if self.started_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


# (attempt, status, started_at, ended_at, error, retried): what the hot path stores
_Entry = tuple[int, JobStatus, "datetime | None", datetime, "str | None", bool]


class JobRuns:
    """The remembered runs of one job id, newest last."""

    __slots__ = ("entries", "finished", "job_id", "task")

    def __init__(self, job_id: str, task: str, per_job: int) -> None:
        self.job_id = job_id
        self.task = task
        self.entries: deque[_Entry] = deque(maxlen=per_job)
        self.finished = False

    def records(self, tz: tzinfo | None = None) -> list[RunRecord]:
        """The runs as values, oldest first, times converted to ``tz`` if given."""
        return [self._record(entry, tz) for entry in self.entries]

    def last(self, tz: tzinfo | None = None) -> RunRecord | None:
        """The latest run, or None."""
        return self._record(self.entries[-1], tz) if self.entries else None

    def _record(self, entry: _Entry, tz: tzinfo | None) -> RunRecord:
        attempt, status, started, ended, error, retried = entry
        if tz is not None:
            started = None if started is None else started.astimezone(tz)
            ended = ended.astimezone(tz)
        return RunRecord(
            job_id=self.job_id,
            task=self.task,
            attempt=attempt,
            status=status,
            started_at=started,
            ended_at=ended,
            error=error,
            retried=retried,
        )


def _check_bound(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"RunHistory: {name} must be an int >= 1, got {value!r}")
    return value


class RunHistory:
    """The last ``per_job`` runs of each job, for at most ``max_jobs`` jobs, in memory.

    ``RunHistory(app)`` attaches itself to ``app``'s job events (before the app starts),
    so it costs nothing unless created. Read it with :meth:`runs`, :meth:`last`,
    :meth:`running_since` and :meth:`finished_ids`; times are in the app's time zone.
    """

    def __init__(self, app: Jobify, *, per_job: int = 20, max_jobs: int = 1000) -> None:
        self.per_job = _check_bound("per_job", per_job)
        self.max_jobs = _check_bound("max_jobs", max_jobs)
        self._tz = app.tz
        # OrderedDict: popping the oldest is O(1) (a dict's iteration skips deleted slots)
        self._jobs: OrderedDict[str, JobRuns] = OrderedDict()  # in the order first seen
        self._finished: OrderedDict[str, None] = OrderedDict()  # in the order they ended
        self._hub = attach(app, self, "RunHistory")

    wants_starts = False  # a run is recorded when it ends; the hub knows when it started

    def record(self, event: JobEvent, now: datetime, started: datetime | None) -> None:
        """Record the end of an attempt (called by the app's operations listener)."""
        job = event.job
        runs = self._jobs.get(job._id)
        if runs is None or runs.finished:
            runs = self._start_job(job._id, job._task.name, runs)
        status = event.status
        error = None if status is _SUCCESS else error_text(event.exception)
        retried = event.kind is _RETRYING
        runs.entries.append((event.attempt, status, started, now, error, retried))
        if not retried and event.next_run is None:  # ENDED for good
            runs.finished = True
            self._finished[job._id] = None

    def _start_job(self, job_id: str, task: str, runs: JobRuns | None) -> JobRuns:
        """The runs of a job id seen for the first time, or reused by a new job."""
        if runs is not None:  # a new job under an id used before
            runs.finished = False
            runs.task = task
            del self._finished[job_id]
            return runs
        runs = self._jobs[job_id] = JobRuns(job_id, task, self.per_job)
        if len(self._jobs) > self.max_jobs:
            if self._finished:
                del self._jobs[self._finished.popitem(last=False)[0]]
            else:
                self._jobs.popitem(last=False)
        return runs

    # -- reading -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._jobs)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._jobs

    def runs(self, job_id: str) -> list[RunRecord]:
        """The remembered runs of ``job_id``, oldest first (empty if unknown)."""
        runs = self._jobs.get(job_id)
        return [] if runs is None else runs.records(self._tz)

    def last(self, job_id: str) -> RunRecord | None:
        """The latest run of ``job_id``, or None."""
        runs = self._jobs.get(job_id)
        return None if runs is None else runs.last(self._tz)

    def running_since(self, job_id: str) -> datetime | None:
        """When the running attempt of ``job_id`` started, or None if it is not running."""
        started = self._hub.started.get(job_id)
        return None if started is None else started.astimezone(self._tz)

    def finished_ids(self, limit: int | None = None) -> list[str]:
        """Ids of jobs that ended for good, most recent first (at most ``limit``)."""
        ids = reversed(self._finished)
        if limit is None:
            return list(ids)
        return [job_id for _, job_id in zip(range(limit), ids, strict=False)]


def find_history(app: Jobify) -> RunHistory | None:
    """The :class:`RunHistory` attached to ``app``, if any."""
    return next(sinks_of(app, RunHistory), None)
