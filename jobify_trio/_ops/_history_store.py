"""A :class:`~jobify_trio.RunHistory` kept in the app's storage too.

When the app's store keeps runs (``Storage.keeps_runs``: SQLite, PostgreSQL and
``MemoryStorage``), each recorded run of a durable job is also queued to the storage
writer as a :class:`~jobify_trio.storage.RecordRun`: a write nobody waits for, committed
in the writer's next batch with the other rows (group commit, never a commit of its own).

Stored runs are pruned in batches, by one :class:`~jobify_trio.storage.PruneRuns` write:
the runs that ended more than ``retention`` ago, the runs past the latest ``per_job``
of each job whose in-memory history overflowed since the last prune (only those can have
more than ``per_job`` stored), and the runs past the latest ``max_runs`` in all
(``per_job * max_jobs``: the stored history is bounded like the one in memory). A prune
is queued when the app starts, then at most every :data:`PRUNE_INTERVAL` seconds
(checked when a run is recorded) or once :data:`PRUNE_EVERY` jobs overflowed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ..storage import PruneRuns, RecordRun, Storage, StoredRun

if TYPE_CHECKING:
    from .._storage._writer import StorageWriter

__all__ = ["PRUNE_EVERY", "PRUNE_INTERVAL", "HistoryStore"]

PRUNE_EVERY = 1000
"""Jobs whose in-memory history overflowed that make a prune due at once."""

PRUNE_INTERVAL = 60.0
"""Seconds between two prunes at most (while runs are recorded)."""

_from_timestamp = datetime.fromtimestamp


class HistoryStore:
    """Writes, prunes and loads the stored runs of one running app (see the module docs)."""

    __slots__ = (
        "_max_runs", "_now", "_per_job", "_prune_at", "_retention", "_storage", "_touched",
        "_writer",
    )  # fmt: skip

    def __init__(
        self,
        storage: Storage,
        writer: StorageWriter,
        now: Callable[[], datetime],
        *,
        per_job: int,
        max_runs: int,
        retention: timedelta,
    ) -> None:
        self._storage = storage
        self._writer = writer
        self._now = now
        self._per_job = per_job
        self._max_runs = max_runs
        self._retention = retention
        self._touched: set[str] = set()  # jobs whose in-memory history overflowed
        self._prune_at = 0.0  # POSIX time of the next prune (the first one: at once)

    def record(
        self,
        job_id: str,
        task: str,
        attempt: int,
        status: str,
        started: float | None,
        ended: float,
        error: str | None,
        retried: bool,
        instance: str | None,
    ) -> None:
        """Queue one run (times: POSIX timestamps); queue a prune if one is due."""
        run = StoredRun(
            job_id=job_id,
            task_name=task,
            attempt=attempt,
            status=status,
            started_at=None if started is None else _from_timestamp(started, UTC),
            ended_at=_from_timestamp(ended, UTC),
            error=error,
            retried=retried,
            instance=instance,
        )
        self._writer.write_nowait(RecordRun(run=run))
        if ended >= self._prune_at or len(self._touched) >= PRUNE_EVERY:
            self.prune(ended)

    def overflowed(self, job_id: str) -> None:
        """``job_id``'s in-memory history dropped its oldest run: prune its stored runs."""
        self._touched.add(job_id)

    def prune(self, now: float) -> None:
        """Queue one :class:`PruneRuns` (expired runs, and the overflowed jobs' oldest)."""
        before = _from_timestamp(now, UTC) - self._retention
        ids, self._touched = tuple(self._touched), set()
        prune = PruneRuns(
            before=before, per_job=self._per_job, job_ids=ids, max_runs=self._max_runs
        )
        self._writer.write_nowait(prune)
        self._prune_at = now + PRUNE_INTERVAL

    async def load(self, job_id: str | None = None) -> list[StoredRun]:
        """The stored runs within the retention period, the latest ``per_job`` per job."""
        since = self._now() - self._retention
        return await self._storage.load_runs(since=since, per_job=self._per_job, job_id=job_id)
