"""SQLite: the run history table (``<table>_runs``) and the ``paused`` column's writes.

:class:`~jobify_trio.storage.RecordRun` rows are inserted in the
batch that carries them (the storage writer groups them with the job rows: no commit of
their own). :class:`~jobify_trio.storage.PruneRuns` deletes by end time (a scan of a
table it keeps small: no index to update on every insert), keeps the latest ``per_job``
runs of each named job (index on ``(job_id, run_id)``: one short index range per job),
and the latest ``max_runs`` in all (by ``run_id``, the rowid). :func:`load_runs` reads
the latest runs of each job with a window function.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any, Final

from ..storage import PruneRuns, RecordRun, SetPaused, StoredRun
from ._columns import RUN_COLUMNS
from ._sqlite_rows import from_db_time, to_db_time

__all__ = ["RUN_SQL", "load_runs", "prune_runs", "row_to_run", "run_params"]

RUN_SQL: Final = {
    "paused": "UPDATE {t} SET paused = ? WHERE job_id = ?",
    "run": f"INSERT INTO {{t}}_runs ({RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
}
"""The statement of each kind of write this module handles (``{t}``: the job table)."""

_KEEP_LATEST: Final = (
    "DELETE FROM {t}_runs WHERE job_id = ? AND run_id < ("
    "SELECT run_id FROM {t}_runs WHERE job_id = ? ORDER BY run_id DESC LIMIT 1 OFFSET ?)"
)


def run_params(write: SetPaused | RecordRun | PruneRuns) -> tuple[str, tuple[Any, ...]]:
    """The kind and parameters of one write (``_sqlite._runs`` groups them by kind)."""
    if type(write) is RecordRun:  # (first: one per run)
        r = write.run
        started = None if r.started_at is None else to_db_time(r.started_at)
        return "run", (
            r.job_id, r.task_name, r.attempt, r.status, started, to_db_time(r.ended_at),
            r.error, int(r.retried), r.instance,
        )  # fmt: skip
    if isinstance(write, SetPaused):
        return "paused", (int(write.paused), write.job_id)
    return "prune", (write,)


def prune_runs(conn: sqlite3.Connection, table: str, prune: PruneRuns) -> None:
    """Apply one :class:`PruneRuns` (inside the caller's transaction)."""
    conn.execute(f"DELETE FROM {table}_runs WHERE ended_at < ?", (to_db_time(prune.before),))
    if prune.job_ids:
        conn.executemany(
            _KEEP_LATEST.format(t=table),
            [(job_id, job_id, prune.per_job - 1) for job_id in prune.job_ids],
        )
    if prune.max_runs is not None:  # (last: of what the other rules keep)
        conn.execute(
            f"DELETE FROM {table}_runs WHERE run_id < (SELECT run_id FROM {table}_runs "
            "ORDER BY run_id DESC LIMIT 1 OFFSET ?)",
            (prune.max_runs - 1,),
        )


def load_runs(
    conn: sqlite3.Connection, table: str, *, since: datetime, per_job: int, job_id: str | None
) -> list[StoredRun]:
    """The latest ``per_job`` runs of each job (or of ``job_id``) that ended at or after
    ``since``, oldest first."""
    where, params = "ended_at >= ?", [to_db_time(since)]
    if job_id is not None:
        where, params = where + " AND job_id = ?", [*params, job_id]
    rows = conn.execute(
        f"SELECT {RUN_COLUMNS} FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY job_id "
        f"ORDER BY run_id DESC) AS n FROM {table}_runs WHERE {where}) "
        "WHERE n <= ? ORDER BY run_id",
        (*params, per_job),
    ).fetchall()
    return [row_to_run(row) for row in rows]


def row_to_run(raw: tuple[Any, ...]) -> StoredRun:
    """Column values (``RUN_COLUMNS`` order) back to a :class:`StoredRun`."""
    job_id, task, attempt, status, started, ended, error, retried, instance = raw
    return StoredRun(
        job_id=job_id,
        task_name=task,
        attempt=attempt,
        status=status,
        started_at=None if started is None else from_db_time(started),
        ended_at=from_db_time(ended),
        error=error,
        retried=bool(retried),
        instance=instance,
    )
