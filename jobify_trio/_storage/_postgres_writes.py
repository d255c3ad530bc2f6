"""PostgreSQL: rows to and from :class:`~jobify_trio.storage.StoredJob`, and ``apply()``.

A batch is one transaction in few round trips: each run of consecutive writes of one kind
becomes one statement over arrays (``unnest``), whatever its length, and the statements
of a batch go out in one pipeline. A batch that holds an unowned row, a release, a
command or a result also sends one ``NOTIFY`` on the store's channel (delivered at
commit), which wakes the other instances' claimers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import psycopg

from ..storage import (
    Delete,
    PutResult,
    Release,
    SendCommand,
    StorageError,
    StoredJob,
    StoredState,
    Trigger,
    Upsert,
    Write,
)
from ._postgres_schema import Names
from ._shared import Command, StoredResult

__all__ = ["COLUMNS", "apply_writes", "row_to_job"]

COLUMNS = (
    "job_id, task, trigger, next_run_at, arguments, attempt, state, cron, "
    "lease_owner, lease_expires_at, origin"
)
_JOB_TYPES = (
    "text[]",
    "text[]",
    "text[]",
    "timestamptz[]",
    "bytea[]",
    "int[]",
    "text[]",
    "text[]",
    "text[]",
    "timestamptz[]",
    "text[]",
)
_TRIGGERS = {trigger.value: trigger for trigger in Trigger}
_STATES = {state.value: state for state in StoredState}
Statement = tuple[str, Sequence[Any]]


def row_to_job(raw: Sequence[Any]) -> StoredJob:
    """Columns of ``COLUMNS`` back to a row; ``ValueError`` for an unknown trigger/state."""
    trigger, state = _TRIGGERS.get(raw[2]), _STATES.get(raw[6])
    if trigger is None or state is None:
        raise ValueError(f"unknown trigger {raw[2]!r} or state {raw[6]!r}")
    arguments = raw[4] if type(raw[4]) is bytes else bytes(raw[4])
    return StoredJob._trusted(raw[0], raw[1], trigger, raw[3], arguments, raw[5], state, *raw[7:11])


def job_values(job: StoredJob) -> tuple[Any, ...]:
    """The column values of a row, in ``COLUMNS`` order."""
    return (
        job.job_id,
        job.task_name,
        job.trigger.value,
        job.next_run_at,
        job.arguments,
        job.attempt,
        job.state.value,
        job.cron,
        job.lease_owner,
        job.lease_expires_at,
        job.origin,
    )


def upsert_sql(jobs: str, source: str, condition: str = "") -> str:
    """``INSERT ... ON CONFLICT (job_id) DO UPDATE`` of every column from ``source``."""
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS.split(", ")[1:])
    return (
        f"INSERT INTO {jobs} ({COLUMNS}) {source} ON CONFLICT (job_id) DO UPDATE SET "
        f"{updates}{condition}"
    )


def _unnest(types: Sequence[str]) -> str:
    return "SELECT * FROM unnest(" + ", ".join(f"%s::{t}" for t in types) + ")"


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    return [[row[i] for row in rows] for i in range(width)]


def _kind(write: Write) -> str:
    if isinstance(write, Upsert):
        return "upsert"
    if isinstance(write, Delete):
        return "delete"
    if isinstance(write, PutResult):
        return "result"
    if isinstance(write, Release):
        return "release"
    if isinstance(write, SendCommand):
        return "command"
    raise StorageError(f"PostgresStorage cannot apply {type(write).__name__} writes")


def _runs(writes: Sequence[Write]) -> Iterator[tuple[str, list[Write]]]:
    run: list[Write] = []
    current = ""
    for write in writes:
        kind = _kind(write)
        if kind != current and run:
            yield current, run
            run = []
        current = kind
        run.append(write)
    if run:
        yield current, run


def statements(names: Names, writes: Sequence[Write]) -> tuple[list[Statement], bool]:
    """The statements of a batch, and whether it should notify the other instances."""
    out: list[Statement] = []
    notify = False
    for kind, run in _runs(writes):
        if kind == "upsert":
            last = {w.job.job_id: job_values(w.job) for w in run if isinstance(w, Upsert)}
            rows = [last[job_id] for job_id in sorted(last)]  # one lock order: no deadlocks
            notify = notify or any(row[8] is None for row in rows)
            out.append((upsert_sql(names.jobs, _unnest(_JOB_TYPES)), _columns(rows, 11)))
        elif kind == "delete":
            ids = [w.job_id for w in run if isinstance(w, Delete)]
            out.append((f"DELETE FROM {names.jobs} WHERE job_id = ANY(%s::text[])", [ids]))
        else:
            notify = True
            out.append(_other(names, kind, run))
    return out, notify


def _other(names: Names, kind: str, run: list[Write]) -> Statement:
    if kind == "result":
        return _results(names, [w.result for w in run if isinstance(w, PutResult)])
    if kind == "release":
        pairs = [(w.job_id, w.owner) for w in run if isinstance(w, Release)]
        sql = (
            f"UPDATE {names.jobs} AS j SET lease_owner = NULL, lease_expires_at = NULL "
            "FROM unnest(%s::text[], %s::text[]) AS r(job_id, owner) "
            "WHERE j.job_id = r.job_id AND j.lease_owner = r.owner"
        )
        return sql, _columns(pairs, 2)
    return _commands(names, [w.command for w in run if isinstance(w, SendCommand)])


def _results(names: Names, results: list[StoredResult]) -> Statement:
    last = {r.job_id: r for r in results}  # ON CONFLICT cannot touch a row twice
    rows = [
        (r.job_id, r.origin, r.status.value, r.value, r.error, r.finished_at) for r in last.values()
    ]
    types = ("text[]", "text[]", "text[]", "bytea[]", "text[]", "timestamptz[]")
    sql = (
        f"INSERT INTO {names.table('results')} (job_id, origin, status, value, error, "
        f"finished_at) {_unnest(types)} ON CONFLICT (job_id) DO UPDATE SET "
        "origin = EXCLUDED.origin, status = EXCLUDED.status, value = EXCLUDED.value, "
        "error = EXCLUDED.error, finished_at = EXCLUDED.finished_at"
    )
    return sql, _columns(rows, 6)


def _commands(names: Names, commands: list[Command]) -> Statement:
    rows = [(c.target, c.job_id, c.kind.value, c.payload, c.created_at) for c in commands]
    types = ("text[]", "text[]", "text[]", "bytea[]", "timestamptz[]")
    sql = (
        f"INSERT INTO {names.table('commands')} (target, job_id, kind, payload, created_at) "
        + _unnest(types)
    )
    return sql, _columns(rows, 5)


def apply_writes(conn: psycopg.Connection[Any], names: Names, writes: Sequence[Write]) -> None:
    """Apply the batch in one transaction (one statement: one round trip, autocommit)."""
    batch, notify = statements(names, writes)
    if notify:
        batch.append(("SELECT pg_notify(%s, '')", [names.channel_name]))
    if len(batch) == 1:
        conn.execute(*batch[0])
        return
    with conn.pipeline(), conn.transaction():
        for sql, params in batch:
            conn.execute(sql, params)
