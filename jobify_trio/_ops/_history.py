"""Run history: the last ``per_job`` attempts of each job, for ``max_jobs`` jobs.

A :class:`RunHistory` is fed the end of every attempt. It keeps the last ``per_job``
entries per job id, and at most ``max_jobs`` job ids: past that bound it forgets the job
that ended longest ago first, and only when every remembered job is still active the one
seen first. The hot path (one call per attempt) stores plain tuples with float times in
plain lists and dicts (about a microsecond per job); :class:`RunRecord` values and
datetimes are built only when someone reads the history.

With a store that keeps runs, the runs of durable jobs are stored too (see
``_history_store``), and the stored runs are loaded into memory when the app starts.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .._core._job import Job, JobStatus
from ..storage import StoredRun
from ._history_store import HistoryStore
from ._hub import attach, sinks_of

if TYPE_CHECKING:
    from .._api._app import Jobify
    from .._runtime._runtime import Runtime

__all__ = ["RunHistory", "RunRecord", "error_text", "find_history"]

_SUCCESS = JobStatus.SUCCESS

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
    ``started_at`` is None for a job cancelled while it was only scheduled. ``instance``
    is the app instance that ran it, on a shared store (else None).
    """

    job_id: str
    task: str
    attempt: int
    status: JobStatus
    started_at: datetime | None
    ended_at: datetime
    error: str | None = None
    retried: bool = False
    instance: str | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, or None if the attempt never started."""
        if self.started_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


# (attempt, status, started_at, ended_at, error, retried, instance): what the hot path
# stores, the times as POSIX timestamps of the app's wall clock (datetimes are built when
# read)
_Entry = tuple[int, JobStatus, "float | None", float, "str | None", bool, "str | None"]

# The runs of one job id are one list (cheaper to build than an object, once per job):
# [end number (-1 while the job is active), task name, entry, entry, ...], oldest first.
_END, _TASK, _FIRST = 0, 1, 2
_ACTIVE = -1


def _record(job_id: str, runs: list[Any], entry: _Entry, tz: tzinfo) -> RunRecord:
    attempt, status, started, ended, error, retried, instance = entry
    return RunRecord(
        job_id=job_id,
        task=runs[_TASK],
        attempt=attempt,
        status=status,
        started_at=None if started is None else datetime.fromtimestamp(started, tz),
        ended_at=datetime.fromtimestamp(ended, tz),
        error=error,
        retried=retried,
        instance=instance,
    )


def _entry(run: StoredRun) -> _Entry | None:
    """A stored run as a hot-path entry (None if its status is unknown)."""
    try:
        status = JobStatus(run.status)
    except ValueError:
        return None
    started = None if run.started_at is None else run.started_at.timestamp()
    ended = run.ended_at.timestamp()
    return (run.attempt, status, started, ended, run.error, run.retried, run.instance)


def _check_retention(value: object) -> timedelta:
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise ValueError(f"RunHistory: retention must be a positive timedelta, got {value!r}")
    return value


def _check_bound(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"RunHistory: {name} must be an int >= 1, got {value!r}")
    return value


class RunHistory:
    """The last ``per_job`` runs of each job, for at most ``max_jobs`` jobs, in memory,
    and in the app's storage.

    ``RunHistory(app)`` attaches itself to ``app``'s job events (before the app starts),
    so it costs nothing unless created. Read it with :meth:`runs`, :meth:`last`,
    :meth:`running_since`, :meth:`finished_ids` and :meth:`stored_runs`; times are in
    the app's time zone.

    If the app's store keeps runs (:attr:`Storage.keeps_runs
    <jobify_trio.storage.Storage.keeps_runs>`: SQLite, PostgreSQL, ``MemoryStorage``) and
    ``stored`` is True, the runs of durable jobs are stored too, for ``retention`` (7 days
    by default) and at most ``per_job`` per job, and the stored runs are loaded when the
    app starts: the history survives a restart, and on a shared store
    :meth:`stored_runs` also shows the runs of the other instances.
    """

    def __init__(
        self,
        app: Jobify,
        *,
        per_job: int = 20,
        max_jobs: int = 1000,
        retention: timedelta = timedelta(days=7),
        stored: bool = True,
    ) -> None:
        self.per_job = _check_bound("per_job", per_job)
        self.max_jobs = _check_bound("max_jobs", max_jobs)
        self.retention = _check_retention(retention)
        self.stored = bool(stored)
        self._store: HistoryStore | None = None  # while the app runs on a store that keeps runs
        self._instance: str | None = None
        self._app = app
        self._tz = app.tz
        self._longest = per_job + _FIRST  # a runs list this long drops its oldest entry
        self._jobs: dict[str, list[Any]] = {}  # in the order first seen
        # (end number, job id) of the jobs that ended for good, in the order they ended; an
        # item is current while the job's runs list holds that end number
        self._ends: deque[tuple[int, str]] = deque()
        self._ended = 0
        self._hub = attach(app, self, "RunHistory")

    wants_starts = False  # a run is recorded when it ends; the hub knows when it started

    def started(self, job: Job[Any], attempt: int, now: float) -> None:
        """Not called (``wants_starts`` is False): the hub remembers when attempts start."""

    async def _app_starting(self, runtime: Runtime) -> None:
        """The app starts: with a store that keeps runs, load the stored runs (and queue a
        first prune); else stay in memory only."""
        self._store = None
        durability = runtime.durability
        sharing = runtime.sharing
        self._instance = None if sharing is None else sharing.me
        if not self.stored or durability is None or not durability.storage.keeps_runs:
            return
        store = HistoryStore(
            durability.storage, durability.writer, runtime.now,
            per_job=self.per_job, max_runs=self.per_job * self.max_jobs,
            retention=self.retention,
        )  # fmt: skip
        self._load(await store.load())
        store.prune(runtime.now().timestamp())
        self._store = store

    def _load(self, stored: list[StoredRun]) -> None:
        """Put the stored runs (oldest first) in memory, as jobs that ended, replacing what
        memory held for those ids; the ``max_jobs`` with the latest runs are kept."""
        loaded: dict[str, list[Any]] = {}
        for run in stored:
            entry = _entry(run)
            if entry is not None:
                runs = loaded.pop(run.job_id, None) or [_ACTIVE, run.task_name]
                runs.append(entry)
                loaded[run.job_id] = runs  # (re-inserted: the order of their last runs)
        for job_id, runs in list(loaded.items())[-self.max_jobs :]:
            self._ended += 1
            runs[_END] = self._ended
            self._jobs.pop(job_id, None)
            self._jobs[job_id] = runs[:_FIRST] + runs[_FIRST:][-self.per_job :]
            self._ends.append((self._ended, job_id))
        while len(self._jobs) > self.max_jobs:
            self._forget_one()

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
    ) -> None:
        """Record the end of an attempt (called by the app's operations listener)."""
        job_id = job._id
        error = None if status is _SUCCESS else error_text(exception)
        entry = (attempt, status, started, now, error, retried, self._instance)
        store = self._store
        runs = self._jobs.get(job_id)
        if runs is None:
            runs = self._jobs[job_id] = [_ACTIVE, job._task.name, entry]
            if len(self._jobs) > self.max_jobs:
                ends = self._ends  # (inline: the job that ended longest ago goes, usually)
                if ends and self._jobs.get(ends[0][1], runs)[_END] == ends[0][0]:
                    del self._jobs[ends.popleft()[1]]
                else:
                    self._forget_one()
        else:
            if runs[_END] != _ACTIVE:  # a new job under an id that had ended
                runs[_END], runs[_TASK] = _ACTIVE, job._task.name
            runs.append(entry)
            if len(runs) > self._longest:
                del runs[_FIRST]
                if store is not None:
                    store.overflowed(job_id)
        if not again:  # ended for good
            self._ended += 1
            runs[_END] = self._ended
            self._ends.append((self._ended, job_id))
            if len(self._ends) > 2 * self.max_jobs:
                self._ends = deque(self._current_ends())
        if store is not None and job._task.options.durable is not False:
            store.record(
                job_id, job._task.name, attempt, status.value, started, now, error, retried,
                self._instance,
            )  # fmt: skip

    def _forget_one(self) -> None:
        """Forget the job that ended longest ago, else (none ended) the one seen first."""
        ends, jobs = self._ends, self._jobs
        while ends:
            number, job_id = ends.popleft()
            runs = jobs.get(job_id)
            if runs is not None and runs[_END] == number:
                del jobs[job_id]
                return
        del jobs[next(iter(jobs))]

    def _current_ends(self) -> list[tuple[int, str]]:
        jobs = self._jobs
        return [(n, i) for n, i in self._ends if (r := jobs.get(i)) is not None and r[_END] == n]

    # -- reading -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._jobs)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._jobs

    def runs(self, job_id: str) -> list[RunRecord]:
        """The remembered runs of ``job_id``, oldest first (empty if unknown)."""
        runs = self._jobs.get(job_id)
        if runs is None:
            return []
        return [_record(job_id, runs, entry, self._tz) for entry in runs[_FIRST:]]

    def last(self, job_id: str) -> RunRecord | None:
        """The latest run of ``job_id``, or None."""
        runs = self._jobs.get(job_id)
        return None if runs is None else _record(job_id, runs, runs[-1], self._tz)

    def running_since(self, job_id: str) -> datetime | None:
        """When the running attempt of ``job_id`` started, or None if it is not running."""
        started = self._hub.started_at.get(job_id)
        return None if started is None else datetime.fromtimestamp(started, self._tz)

    async def stored_runs(self, job_id: str) -> list[RunRecord]:
        """The stored runs of ``job_id`` (within the retention period, at most ``per_job``),
        oldest first: on a shared store, the runs of every instance. While the app does
        not run on a store that keeps runs, the runs in memory (:meth:`runs`)."""
        store = self._store
        if store is None or not self._app.is_running:
            await trio.lowlevel.checkpoint()
            return self.runs(job_id)
        records = []
        for run in await store.load(job_id):
            entry = _entry(run)
            if entry is not None:
                records.append(_record(job_id, [_ACTIVE, run.task_name], entry, self._tz))
        return records

    def finished_ids(self, limit: int | None = None) -> list[str]:
        """Ids of jobs that ended for good, most recent first (at most ``limit``)."""
        ids = [job_id for _, job_id in reversed(self._current_ends())]
        return ids if limit is None else ids[:limit]


def find_history(app: Jobify) -> RunHistory | None:
    """The :class:`RunHistory` attached to ``app``, if any."""
    return next(sinks_of(app, RunHistory), None)
