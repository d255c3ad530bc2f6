"""PostgreSQL: the run history table (``<prefix>_runs``) and the ``paused`` column's writes.

Part of a batch's one statement (see ``_postgres_writes``): :class:`RunWrites` collects
the batch's :class:`~jobify_trio.storage.SetPaused`, :class:`~jobify_trio.storage.RecordRun`
and :class:`~jobify_trio.storage.PruneRuns` writes and turns them into ``WITH`` clauses.
A flag set on a row the same batch upserts edits the upserted row (a row is touched once
per statement); one set on a row the batch deletes is dropped. The prunes of one batch
are merged into one ``DELETE``, which does not see the runs inserted by the same
statement: it keeps fewer stored runs of their jobs, so that ``per_job`` remain.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any, Final

import attrs

from ..storage import PruneRuns, RecordRun, SetPaused, StoredJob, StoredRun, Write
from ._columns import RUN_COLUMNS
from ._postgres_schema import Names

__all__ = ["RunWrites", "load_runs_sql", "row_to_run"]

_RUN_TYPES: Final = (
    "text[]", "text[]", "int[]", "text[]", "timestamptz[]", "timestamptz[]", "text[]",
    "boolean[]", "text[]",
)  # fmt: skip


class RunWrites:
    """The paused flags, runs and prunes of one batch."""

    __slots__ = ("paused", "prune", "runs")

    def __init__(self) -> None:
        self.paused: dict[str, bool] = {}  # flags of rows the batch does not upsert
        self.runs: list[StoredRun] = []
        self.prune: PruneRuns | None = None

    def add(self, write: Write, jobs: dict[str, StoredJob | None]) -> bool:
        """Take ``write`` if it is one of ours (``jobs``: the batch's net rows)."""
        if isinstance(write, RecordRun):
            self.runs.append(write.run)
        elif isinstance(write, SetPaused):
            if write.job_id not in jobs:
                self.paused[write.job_id] = write.paused
            elif (job := jobs[write.job_id]) is not None:
                jobs[write.job_id] = attrs.evolve(job, paused=write.paused)
        elif isinstance(write, PruneRuns):
            self.prune = _merged(self.prune, write)
        else:
            return False
        return True

    def clauses(self, names: Names, params: dict[str, Any]) -> list[str]:
        """The statements (for ``WITH``) of what the batch holds."""
        clauses: list[str] = []
        if self.paused:
            ids = sorted(self.paused)
            params["pj"], params["pp"] = ids, [self.paused[job_id] for job_id in ids]
            clauses.append(
                f"UPDATE {names.jobs} AS j SET paused = p.paused FROM unnest(%(pj)s::text[], "
                "%(pp)s::boolean[]) AS p(job_id, paused) WHERE j.job_id = p.job_id"
            )
        if self.runs:
            clauses.append(_insert_runs(names, self.runs, params))
        if self.prune is not None:
            clauses.append(_prune(names, self.prune, self.runs, params))
        return clauses


def _merged(old: PruneRuns | None, new: PruneRuns) -> PruneRuns:
    if old is None:
        return new
    ids = tuple(dict.fromkeys((*old.job_ids, *new.job_ids)))
    before = max(old.before, new.before)
    return PruneRuns(before=before, per_job=new.per_job, job_ids=ids, max_runs=new.max_runs)


def _insert_runs(names: Names, runs: list[StoredRun], params: dict[str, Any]) -> str:
    rows = [
        (r.job_id, r.task_name, r.attempt, r.status, r.started_at, r.ended_at, r.error,
         r.retried, r.instance)
        for r in runs
    ]  # fmt: skip
    keys = [f"h{i}" for i in range(len(_RUN_TYPES))]
    for i, key in enumerate(keys):
        params[key] = [row[i] for row in rows]
    args = ", ".join(f"%({key})s::{t}" for key, t in zip(keys, _RUN_TYPES, strict=True))
    return f"INSERT INTO {names.table('runs')} ({RUN_COLUMNS}) SELECT * FROM unnest({args})"


def _prune(names: Names, prune: PruneRuns, runs: list[StoredRun], params: dict[str, Any]) -> str:
    """One ``DELETE``, with the rules applied in order as the other stores do: a run is
    *doomed* if too old or past the latest ``per_job`` of a named job; of the others, those
    past the latest ``max_runs`` go too. It does not see the runs the same statement
    inserts: of a job that has ``k`` of them it keeps ``per_job - k`` stored runs, and
    ``max_runs`` minus all of them in all. (One scan of the table, once per prune: the
    table is kept to about ``max_runs`` rows.)"""
    table = names.table("runs")
    added = Counter(run.job_id for run in runs)
    params["rb"], params["rk"] = prune.before, list(prune.job_ids)
    params["rn"] = [max(0, prune.per_job - added[job_id]) for job_id in prune.job_ids]
    params["rm"] = None if prune.max_runs is None else max(0, prune.max_runs - len(runs))
    return (
        f"DELETE FROM {table} WHERE run_id IN (SELECT run_id FROM (SELECT run_id, doomed, "
        "row_number() OVER (PARTITION BY doomed ORDER BY run_id DESC) AS m FROM (SELECT "
        "r.run_id, (r.ended_at < %(rb)s OR coalesce(row_number() OVER (PARTITION BY "
        "r.job_id ORDER BY r.run_id DESC) > k.keep, false)) AS doomed "
        f"FROM {table} AS r LEFT JOIN unnest(%(rk)s::text[], %(rn)s::int[]) AS "
        "k(job_id, keep) ON r.job_id = k.job_id) AS marked) AS ranked "
        "WHERE doomed OR m > %(rm)s::bigint)"
    )


def load_runs_sql(names: Names, *, one_job: bool) -> str:
    """The query of :meth:`PostgresStorage.load_runs` (parameters: since, [job_id,] per_job)."""
    where = "ended_at >= %s" + (" AND job_id = %s" if one_job else "")
    return (
        f"SELECT {RUN_COLUMNS} FROM (SELECT *, row_number() OVER (PARTITION BY job_id "
        f"ORDER BY run_id DESC) AS n FROM {names.table('runs')} WHERE {where}) AS ranked "
        "WHERE n <= %s ORDER BY run_id"
    )


def row_to_run(raw: tuple[Any, ...]) -> StoredRun:
    """A row of ``RUN_COLUMNS`` back to a :class:`StoredRun`."""
    job_id, task, attempt, status, started, ended, error, retried, instance = raw
    ended_at: datetime = ended
    return StoredRun(
        job_id=job_id, task_name=task, attempt=attempt, status=status, started_at=started,
        ended_at=ended_at, error=error, retried=retried, instance=instance,
    )  # fmt: skip
