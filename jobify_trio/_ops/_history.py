"""Run history: the last ``per_job`` attempts of each job, for ``max_jobs`` jobs.

A :class:`RunHistory` is fed the end of every attempt. It keeps the last ``per_job``
entries per job id, and at most ``max_jobs`` job ids: past that bound it forgets the job
that ended longest ago first, and only when every remembered job is still active the one
seen first. It is a batch sink of the app's operations hub (:mod:`._hub`): the hub logs
each attempt's end as a plain tuple with float times, and the history files a batch of
them at once, in plain lists and dicts, when the log is full or someone reads it;
:class:`RunRecord` values and datetimes are built only when someone reads the history.

With a store that keeps runs, the runs of durable jobs are stored too (see
``_history_store``), and the stored runs are loaded into memory when the app starts.
Then the hub hands each attempt's end over at once (a batch of one), so a stored run is
queued to the storage writer when it ends, not a batch later: a crash loses at most the
runs of the writer's last uncommitted batch.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Final, cast

import attrs
import trio

from .._core._job import JobStatus
from ..storage import StoredRun
from ._history_store import HistoryStore
from ._hub import (
    BATCH,
    ERROR_TEXT_LIMIT,
    STARTED,
    EndEntry,
    StartEntry,
    attach,
    error_text,
    sinks_of,
)

if TYPE_CHECKING:
    from .._api._app import Jobify
    from .._runtime._runtime import Runtime

__all__ = ["ERROR_TEXT_LIMIT", "RunHistory", "RunRecord", "error_text", "find_history"]

_SUCCESS = JobStatus.SUCCESS


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


# The runs of one job id: the hub's EndEntry tuple itself for a job seen once (the usual
# case: nothing is built to file it), a list of them (oldest first) from its second run.
# A run loaded from storage is an EndEntry with a tenth item: the instance that ran it.
# (An EndEntry holds its attempt's StartEntry: its start time is start[STARTED].)
_Runs = EndEntry | list[EndEntry]
_ID: Final = 0  # EndEntry fields: the job id,
_AGAIN: Final = 6  # and True while the job runs again
_INSTANCE: Final = 9  # (stored runs only)


def _record(entry: EndEntry, tz: tzinfo, instance: str | None) -> RunRecord:
    job_id, task, attempt, status, error, retried, _, ended, start = entry[:9]
    started = None if start is None else start[STARTED]
    if len(entry) > _INSTANCE:
        instance = cast(Any, entry)[_INSTANCE]
    return RunRecord(
        job_id=job_id,
        task=task,
        attempt=attempt,
        status=status,
        started_at=None if started is None else datetime.fromtimestamp(started, tz),
        ended_at=datetime.fromtimestamp(ended, tz),
        error=error,
        retried=retried,
        instance=instance,
    )


def _entries(runs: _Runs) -> list[EndEntry]:
    return runs if type(runs) is list else [runs]  # type: ignore[list-item]


def _entry(run: StoredRun) -> EndEntry | None:
    """A stored run as an entry (None if its status is unknown)."""
    try:
        status = JobStatus(run.status)
    except ValueError:
        return None
    start: StartEntry | None = None
    if run.started_at is not None:  # (its due time is not stored: the start stands in)
        start = (run.task_name, run.attempt, run.started_at.timestamp(), run.started_at)
    entry = (
        run.job_id, run.task_name, run.attempt, status, run.error, run.retried, False,
        run.ended_at.timestamp(), start, run.instance,
    )  # fmt: skip
    return cast(EndEntry, entry)


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
        self._durable: dict[str, bool] = {}  # task name: its runs are stored
        self._unstored: list[EndEntry] = []  # filed, not yet queued to the store
        self._loop_thread = threading.get_ident()  # the app's trio thread (at start)
        self._app = app
        self._tz = app.tz
        self._jobs: dict[str, _Runs] = {}  # in the order first seen
        # the last entries of the jobs that ended for good, in the order they ended; an
        # item is current while it is its job's last entry (see _is_current)
        self._ends: deque[EndEntry] = deque()
        self._hub = attach(app, self, "RunHistory")

    def record(self, ends: Sequence[EndEntry]) -> None:
        """File the ends of attempts (called by the app's operations listener, in
        batches: see ``jobify_trio._ops._hub``). The usual entry (a job seen for the first
        time) is filed as it is, and evicts the job that ended longest ago: no object is
        built."""
        jobs, ends_seen, per_job, max_jobs = self._jobs, self._ends, self.per_job, self.max_jobs
        size = len(jobs)  # (kept here: one len() less per entry)
        for entry in ends:
            job_id = entry[0]
            runs = jobs.get(job_id)
            if runs is None:
                jobs[job_id] = entry
                if size < max_jobs:
                    size += 1
                else:  # one job is forgotten for this one
                    oldest = ends_seen[0] if ends_seen else None
                    if oldest is not None and jobs.get(oldest[0]) is oldest:
                        del jobs[oldest[0]]  # (inline: what _forget_one does, usually)
                        ends_seen.popleft()
                    else:
                        self._forget_one()
            elif type(runs) is list:
                runs.append(entry)
                if len(runs) > per_job:
                    del runs[0]
            else:
                jobs[job_id] = [runs, entry] if per_job > 1 else entry  # type: ignore[list-item]
            if not entry[_AGAIN]:  # ended for good
                ends_seen.append(entry)
        if len(ends_seen) > 2 * max_jobs:  # (checked per batch: it may exceed by one batch)
            self._ends = deque(self._current_ends())
        if self._store is not None:
            self._unstored.extend(ends)
            if threading.get_ident() == self._loop_thread:  # (not a scrape's thread)
                self._store_unstored()

    def _store_unstored(self) -> None:
        """Queue the runs of durable jobs filed since the last call to the store (a job
        whose memory is full may have overflowed: its stored runs are pruned to
        ``per_job`` at the next prune). Only on the app's thread: the storage writer is a
        trio object, and a metrics scrape may flush the hub from another thread."""
        store, ends = self._store, self._unstored
        if store is None or not ends:
            return
        self._unstored = []
        durable, tasks, jobs = self._durable, self._app.tasks, self._jobs
        for job_id, task, attempt, status, error, retried, _, ended, start in ends:
            keep = durable.get(task)
            if keep is None:
                found = tasks.get(task)
                keep = durable[task] = found is None or found.options.durable is not False
            if keep:
                runs = jobs.get(job_id)
                if self.per_job == 1 or (type(runs) is list and len(runs) >= self.per_job):
                    store.overflowed(job_id)  # (before a prune that record may queue)
                started = None if start is None else start[STARTED]
                store.record(
                    job_id, task, attempt, status.value, started, ended, error, retried,
                    self._instance,
                )  # fmt: skip

    def _app_stopping(self) -> None:
        """Every job has ended (the hub was flushed): queue the runs not stored yet."""
        self._store_unstored()

    async def _app_starting(self, runtime: Runtime) -> None:
        """The app starts: with a store that keeps runs, load the stored runs (and queue a
        first prune); else stay in memory only."""
        self._store = None
        self._hub.batch = BATCH
        self._durable, self._unstored = {}, []
        self._loop_thread = threading.get_ident()
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
        self._hub.flush()  # (runs of an earlier start stay in memory only)
        self._load(await store.load())
        store.prune(runtime.now().timestamp())
        self._store = store
        self._hub.batch = 1  # each run is queued to the writer as it ends (module docs)

    def _load(self, stored: list[StoredRun]) -> None:
        """Put the stored runs (oldest first) in memory, as jobs that ended, replacing what
        memory held for those ids; the ``max_jobs`` with the latest runs are kept."""
        loaded: dict[str, list[EndEntry]] = {}
        for run in stored:
            entry = _entry(run)
            if entry is not None:
                runs = loaded.pop(run.job_id, None) or []
                runs.append(entry)
                loaded[run.job_id] = runs  # (re-inserted: the order of their last runs)
        for job_id, runs in list(loaded.items())[-self.max_jobs :]:
            kept = runs[-self.per_job :]
            self._jobs.pop(job_id, None)
            self._jobs[job_id] = kept if len(kept) > 1 else kept[0]
            self._ends.append(kept[-1])
        while len(self._jobs) > self.max_jobs:
            self._forget_one()

    def _is_current(self, entry: EndEntry) -> bool:
        """Whether ``entry`` (in ``_ends``) is still the last entry of its job."""
        runs = self._jobs.get(entry[_ID])
        return runs is entry or (type(runs) is list and runs[-1] is entry)

    def _forget_one(self) -> None:
        """Forget the job that ended longest ago, else (none ended) the one seen first."""
        ends, jobs = self._ends, self._jobs
        while ends:
            entry = ends.popleft()
            if self._is_current(entry):
                del jobs[entry[_ID]]
                return
        del jobs[next(iter(jobs))]

    def _current_ends(self) -> list[EndEntry]:
        return [entry for entry in self._ends if self._is_current(entry)]

    # -- reading -------------------------------------------------------------------------

    def __len__(self) -> int:
        self._hub.flush()
        return len(self._jobs)

    def __contains__(self, job_id: object) -> bool:
        self._hub.flush()
        return job_id in self._jobs

    def runs(self, job_id: str) -> list[RunRecord]:
        """The remembered runs of ``job_id``, oldest first (empty if unknown)."""
        self._hub.flush()
        runs = self._jobs.get(job_id)
        if runs is None:
            return []
        return [_record(entry, self._tz, self._instance) for entry in _entries(runs)]

    def last(self, job_id: str) -> RunRecord | None:
        """The latest run of ``job_id``, or None."""
        self._hub.flush()
        runs = self._jobs.get(job_id)
        return None if runs is None else _record(_entries(runs)[-1], self._tz, self._instance)

    def running_since(self, job_id: str) -> datetime | None:
        """When the running attempt of ``job_id`` started, or None if it is not running."""
        job = self._app.find_job(job_id)
        start = None if job is None else getattr(job, "_hub_start", None)
        return None if start is None else datetime.fromtimestamp(start[STARTED], self._tz)

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
                records.append(_record(entry, self._tz, None))
        return records

    def finished_ids(self, limit: int | None = None) -> list[str]:
        """Ids of jobs that ended for good, most recent first (at most ``limit``)."""
        self._hub.flush()
        ids = [entry[_ID] for entry in reversed(self._current_ends())]
        return ids if limit is None else ids[:limit]


def find_history(app: Jobify) -> RunHistory | None:
    """The :class:`RunHistory` attached to ``app``, if any."""
    return next(sinks_of(app, RunHistory), None)
