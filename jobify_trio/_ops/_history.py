"""In-memory run history: the last ``per_job`` attempts of each job, for ``max_jobs`` jobs.

A :class:`RunHistory` is fed the end of every attempt. It keeps the last ``per_job``
entries per job id, and at most ``max_jobs`` job ids: past that bound it forgets the job
that ended longest ago first, and only when every remembered job is still active the one
seen first. It is a batch sink of the app's operations hub (:mod:`._hub`): the hub logs
each attempt's end as a plain tuple with float times, and the history files a batch of
them at once, in plain lists and dicts, when the log is full or someone reads it;
:class:`RunRecord` values and datetimes are built only when someone reads the history.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Final

import attrs

from .._core._job import JobStatus
from ._hub import ERROR_TEXT_LIMIT, EndEntry, StartEntry, attach, error_text, sinks_of

if TYPE_CHECKING:
    from .._api._app import Jobify

__all__ = ["ERROR_TEXT_LIMIT", "RunHistory", "RunRecord", "error_text", "find_history"]

_SUCCESS = JobStatus.SUCCESS


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


# The runs of one job id: the hub's EndEntry tuple itself for a job seen once (the usual
# case: nothing is built to file it), a list of them (oldest first) from its second run.
_Runs = EndEntry | list[EndEntry]
_ID: Final = 0  # EndEntry fields: the job id,
_AGAIN: Final = 6  # and True while the job runs again


def _record(entry: EndEntry, tz: tzinfo) -> RunRecord:
    job_id, task, attempt, status, error, retried, _, ended, started = entry
    return RunRecord(
        job_id=job_id,
        task=task,
        attempt=attempt,
        status=status,
        started_at=None if started is None else datetime.fromtimestamp(started, tz),
        ended_at=datetime.fromtimestamp(ended, tz),
        error=error,
        retried=retried,
    )


def _entries(runs: _Runs) -> list[EndEntry]:
    return runs if type(runs) is list else [runs]  # type: ignore[list-item]


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
        self._jobs: dict[str, _Runs] = {}  # in the order first seen
        # the last entries of the jobs that ended for good, in the order they ended; an
        # item is current while it is its job's last entry (see _is_current)
        self._ends: deque[EndEntry] = deque()
        self._hub = attach(app, self, "RunHistory")

    wants_starts = False  # a run is recorded when it ends; the hub knows when it started

    def record(self, starts: Sequence[StartEntry], ends: Sequence[EndEntry]) -> None:
        """File the ends of attempts (called by the app's operations listener, in
        batches: see ``jobify_trio._ops._hub``). The usual entry (a job seen for the first
        time) is filed as it is, and evicts the job that ended longest ago: no object is
        built."""
        jobs, ends_seen, per_job, max_jobs = self._jobs, self._ends, self.per_job, self.max_jobs
        for entry in ends:
            job_id = entry[0]
            runs = jobs.get(job_id)
            if runs is None:
                jobs[job_id] = entry
                if len(jobs) > max_jobs:
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
                if len(ends_seen) > 2 * max_jobs:
                    self._ends = ends_seen = deque(self._current_ends())

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
        return [_record(entry, self._tz) for entry in _entries(runs)]

    def last(self, job_id: str) -> RunRecord | None:
        """The latest run of ``job_id``, or None."""
        self._hub.flush()
        runs = self._jobs.get(job_id)
        return None if runs is None else _record(_entries(runs)[-1], self._tz)

    def running_since(self, job_id: str) -> datetime | None:
        """When the running attempt of ``job_id`` started, or None if it is not running."""
        started = self._hub.started_at.get(job_id)
        return None if started is None else datetime.fromtimestamp(started, self._tz)

    def finished_ids(self, limit: int | None = None) -> list[str]:
        """Ids of jobs that ended for good, most recent first (at most ``limit``)."""
        self._hub.flush()
        ids = [entry[_ID] for entry in reversed(self._current_ends())]
        return ids if limit is None else ids[:limit]


def find_history(app: Jobify) -> RunHistory | None:
    """The :class:`RunHistory` attached to ``app``, if any."""
    return next(sinks_of(app, RunHistory), None)
