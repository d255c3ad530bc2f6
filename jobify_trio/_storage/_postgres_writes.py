"""PostgreSQL: rows to and from :class:`~jobify_trio.storage.StoredJob`, and ``apply()``.

A batch is **one statement** (one round trip, its own transaction), whatever it holds.
First the ordered writes are reduced to their net effect on each job row (an upsert then
a delete is a delete; a delete then an upsert is the upsert, which replaces every column;
a release after an upsert of the same row edits the upserted lease), so each row is
touched once. Then each kind becomes one data-modifying ``WITH`` clause over arrays
(``unnest``): upserts, deletes, releases, results, commands. A batch that holds an
unowned row, a release, a command or a result also sends one ``NOTIFY`` on the store's
channel (delivered at commit), which wakes the other instances' claimers. A single
statement in autocommit mode costs one round trip, against four for
``BEGIN``/statements/``COMMIT``, and is about twice as fast for single-row batches.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import attrs

from ..storage import (
    Delete,
    PutResult,
    Release,
    SendCommand,
    StorageError,
    StoredJob,
    Upsert,
    Write,
)
from ._columns import COLUMNS, STATES, TRIGGERS
from ._postgres_runs import RunWrites
from ._postgres_schema import Names
from ._shared import Command, StoredResult

__all__ = ["COLUMNS", "compile_batch", "job_values", "row_to_job", "upsert_sql"]

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
    "boolean[]",
)


def row_to_job(raw: Sequence[Any]) -> StoredJob:
    """Columns of ``COLUMNS`` back to a row; ``ValueError`` for an unknown trigger/state."""
    trigger, state = TRIGGERS.get(raw[2]), STATES.get(raw[6])
    if trigger is None or state is None:
        raise ValueError(f"unknown trigger {raw[2]!r} or state {raw[6]!r}")
    arguments = raw[4] if type(raw[4]) is bytes else bytes(raw[4])
    return StoredJob._trusted(raw[0], raw[1], trigger, raw[3], arguments, raw[5], state, *raw[7:12])


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
        job.paused,
    )


def upsert_sql(jobs: str, source: str, condition: str = "") -> str:
    """``INSERT ... ON CONFLICT (job_id) DO UPDATE`` of every column from ``source``."""
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS.split(", ")[1:])
    return (
        f"INSERT INTO {jobs} ({COLUMNS}) {source} ON CONFLICT (job_id) DO UPDATE SET "
        f"{updates}{condition}"
    )


def _unnest(types: Sequence[str], names: Sequence[str]) -> str:
    args = ", ".join(f"%({name})s::{t}" for name, t in zip(names, types, strict=True))
    return f"SELECT * FROM unnest({args})"


class _Net:
    """The net effect of a batch: at most one of upsert/delete/releases per job row."""

    def __init__(self) -> None:
        self.jobs: dict[str, StoredJob | None] = {}  # None: delete
        self.releases: dict[tuple[str, str], None] = {}
        self.results: dict[str, StoredResult] = {}
        self.commands: list[Command] = []
        self.others = RunWrites()  # paused flags and the run history

    def add(self, write: Write) -> None:
        if isinstance(write, Upsert):
            self._touch(write.job.job_id, write.job)
        elif isinstance(write, Delete):
            self._touch(write.job_id, None)
        elif isinstance(write, Release):
            self._release(write.job_id, write.owner)
        elif isinstance(write, PutResult):
            self.results[write.result.job_id] = write.result
        elif isinstance(write, SendCommand):
            self.commands.append(write.command)
        elif not self.others.add(write, self.jobs):
            raise StorageError(f"PostgresStorage cannot apply {type(write).__name__} writes")

    def _touch(self, job_id: str, job: StoredJob | None) -> None:
        if self.releases:  # replaced or deleted: an earlier release no longer matters
            for key in [key for key in self.releases if key[0] == job_id]:
                del self.releases[key]
        self.jobs[job_id] = job
        if self.others.paused:  # the row is replaced or deleted: its flag goes with it
            self.others.paused.pop(job_id, None)

    def _release(self, job_id: str, owner: str) -> None:
        if not job_id:  # the heartbeat's barrier: no row has an empty id, nothing to wake
            return
        if job_id not in self.jobs:
            self.releases[job_id, owner] = None
            return
        job = self.jobs[job_id]
        if job is not None and job.lease_owner == owner:
            self.jobs[job_id] = attrs.evolve(job, lease_owner=None, lease_expires_at=None)


def compile_batch(
    names: Names, writes: Sequence[Write], *, insert_new: bool = True
) -> tuple[str, dict[str, Any]]:
    """One statement applying ``writes`` (see the module docs), and its parameters.

    With ``insert_new``, a batch whose upserts are all ``new`` (ids just generated)
    inserts them without ``ON CONFLICT``: cheaper for the server (no speculative
    insertion, about 10 % less WAL per row). Should one of those ids exist after all, the
    statement fails with a unique violation and the caller compiles the batch again
    without ``insert_new``."""
    if len(writes) == 1 and type(writes[0]) is Upsert:  # a push, alone (the usual batch)
        return _compile_one(names, writes[0], insert_new)
    for write in writes:
        if type(write) is not Upsert and type(write) is not Delete:
            return _compile_any(names, writes)
    return _compile_rows(names, writes, insert_new)


def _compile_rows(
    names: Names, writes: Sequence[Write], insert_new: bool
) -> tuple[str, dict[str, Any]]:
    """The usual batch, only upserts and deletes (each push, each ended job): its SQL
    depends on a few counts, so it is built once (:func:`_rows_sql`)."""
    rows: dict[str, StoredJob | None] = {}  # None: delete
    insert = insert_new
    for write in writes:
        if isinstance(write, Upsert):
            rows[write.job.job_id] = write.job
            insert = insert and write.new
        elif isinstance(write, Delete):
            rows[write.job_id] = None
    params: dict[str, Any] = {}
    upserts, deletes = _row_params(rows, params)
    notify = any(job.lease_owner is None for job in upserts)
    if notify:
        params["channel"] = names.channel_name
    return _rows_sql(names, min(len(upserts), 2), deletes, notify, insert), params


def _compile_one(names: Names, write: Upsert, insert_new: bool) -> tuple[str, dict[str, Any]]:
    """:func:`_compile_rows` of one upsert, without its loops and sorts."""
    job = write.job
    params = dict(zip(_KEYS, job_values(job), strict=True))
    notify = job.lease_owner is None
    if notify:
        params["channel"] = names.channel_name
    return _rows_sql(names, 1, False, notify, insert_new and write.new), params


@functools.lru_cache(maxsize=64)
def _rows_sql(names: Names, upserts: int, deletes: bool, notify: bool, insert: bool) -> str:
    """The SQL of :func:`_compile_rows` (``upserts``: 0, 1 or 2 for several; ``insert``:
    without ``ON CONFLICT``)."""
    return _statement(_row_clauses(names, upserts, deletes, insert=insert), notify)


def _row_params(
    rows: dict[str, StoredJob | None], params: dict[str, Any]
) -> tuple[list[StoredJob], bool]:
    """Put the parameters of the upserts and deletes of ``rows`` (None: delete) in
    ``params``; the upserted rows, in job_id order (concurrent batches lock rows in one
    order), and whether there are deletes."""
    upserts = sorted((j for j in rows.values() if j is not None), key=_job_id)
    if upserts:
        _upsert_params(upserts, params)
    deletes = sorted(job_id for job_id, job in rows.items() if job is None)
    if deletes:
        params["d"] = deletes
    return upserts, bool(deletes)


def _row_clauses(names: Names, upserts: int, deletes: bool, *, insert: bool = False) -> list[str]:
    """The upsert clause (of ``upserts`` rows; a plain ``INSERT`` if ``insert``) and the
    delete clause, where there are any."""
    clauses: list[str] = []
    if upserts:
        source = _upsert_source(upserts)
        sql = f"INSERT INTO {names.jobs} ({COLUMNS}) {source}" if insert else None
        clauses.append(sql or upsert_sql(names.jobs, source))
    if deletes:
        clauses.append(_DELETE.format(jobs=names.jobs))
    return clauses


def _compile_any(names: Names, writes: Sequence[Write]) -> tuple[str, dict[str, Any]]:
    net = _Net()
    for write in writes:
        net.add(write)
    params: dict[str, Any] = {}
    upserts, deletes = _row_params(net.jobs, params)
    clauses = _row_clauses(names, len(upserts), deletes)
    clauses.extend(_shared_clauses(names, net, params))
    clauses.extend(net.others.clauses(names, params))
    notify = bool(net.releases or net.results or net.commands)
    notify = notify or any(job.lease_owner is None for job in upserts)
    if notify:
        params["channel"] = names.channel_name
    return _statement(clauses, notify), params


_DELETE = "DELETE FROM {jobs} WHERE job_id = ANY(%(d)s::text[])"
_KEYS = tuple(f"u{i}" for i in range(12))


def _statement(clauses: list[str], notify: bool) -> str:
    """``clauses`` as one statement; it sends a ``NOTIFY`` if asked."""
    final = "SELECT pg_notify(%(channel)s, '')" if notify else "SELECT 1"
    if len(clauses) == 1 and not notify:  # one statement needs no WITH
        return clauses[0]
    named = ", ".join(f"w{i} AS ({clause} RETURNING 1)" for i, clause in enumerate(clauses))
    return (f"WITH {named} " if clauses else "") + final


def _upsert_params(upserts: list[StoredJob], params: dict[str, Any]) -> None:
    if len(upserts) == 1:  # VALUES: ~1.6x faster than unnest for one row (no arrays)
        params.update(zip(_KEYS, job_values(upserts[0]), strict=True))
    else:
        params.update(zip(_KEYS, _columns([job_values(j) for j in upserts], 12), strict=True))


def _upsert_source(count: int) -> str:
    if count == 1:
        return "VALUES (" + ", ".join(f"%({key})s" for key in _KEYS) + ")"
    return _unnest(_JOB_TYPES, _KEYS)


def _job_id(job: StoredJob) -> str:
    return job.job_id


def _shared_clauses(names: Names, net: _Net, params: dict[str, Any]) -> list[str]:
    clauses: list[str] = []
    if net.releases:
        pairs = sorted(net.releases)
        params["rj"], params["ro"] = _columns(pairs, 2)
        clauses.append(
            f"UPDATE {names.jobs} AS j SET lease_owner = NULL, lease_expires_at = NULL "
            "FROM unnest(%(rj)s::text[], %(ro)s::text[]) AS r(job_id, owner) "
            "WHERE j.job_id = r.job_id AND j.lease_owner = r.owner"
        )
    if net.results:
        clauses.append(_results_clause(names, list(net.results.values()), params))
    if net.commands:
        clauses.append(_commands_clause(names, net.commands, params))
    return clauses


def _results_clause(names: Names, results: list[StoredResult], params: dict[str, Any]) -> str:
    rows = [(r.job_id, r.origin, r.status.value, r.value, r.error, r.finished_at) for r in results]
    keys = [f"s{i}" for i in range(6)]
    params.update(zip(keys, _columns(rows, 6), strict=True))
    types = ("text[]", "text[]", "text[]", "bytea[]", "text[]", "timestamptz[]")
    return (
        f"INSERT INTO {names.table('results')} (job_id, origin, status, value, "
        f"error, finished_at) {_unnest(types, keys)} ON CONFLICT (job_id) DO UPDATE SET "
        "origin = EXCLUDED.origin, status = EXCLUDED.status, value = EXCLUDED.value, "
        "error = EXCLUDED.error, finished_at = EXCLUDED.finished_at"
    )


def _commands_clause(names: Names, commands: list[Command], params: dict[str, Any]) -> str:
    rows = [(c.target, c.job_id, c.kind.value, c.payload, c.created_at) for c in commands]
    keys = [f"c{i}" for i in range(5)]
    params.update(zip(keys, _columns(rows, 5), strict=True))
    types = ("text[]", "text[]", "text[]", "bytea[]", "timestamptz[]")
    return (
        f"INSERT INTO {names.table('commands')} (target, job_id, kind, payload, "
        f"created_at) {_unnest(types, keys)}"
    )


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    return [[row[i] for row in rows] for i in range(width)]
