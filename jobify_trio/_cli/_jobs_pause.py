"""``jobify-trio jobs pause ID`` / ``resume ID`` on a SQLite job store.

A live app that holds the job (the row's lease owner, or the one app instance registered
on a file that is not shared) is sent a PAUSE or RESUME command, which it applies at its
next heartbeat as if ``job.pause()`` had been called there. With no live app, a cron
job's stored state is updated (the paused flag; on resume the next slot after now, so the
paused slots are not caught up when an app restores it), and a one-off job's ``paused``
column is set (an app restores it paused; due meanwhile, it runs at resume). A file
written before schema version 3 has no such column: pausing a one-off job in it with no
live app is refused. No table is ever created.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TextIO

import attrs

from .._cron._expression import CronExhausted
from .._cron._state import cron_from_json, cron_to_json
from .._storage._sqlite import SQLiteDatabase, from_db_time, row_to_job, to_db_time
from ..storage import CommandKind, StoredJob, Trigger
from ._cron import CliError

__all__ = ["LIVE_WITHIN", "pause_job"]

LIVE_WITHIN = timedelta(seconds=30)
"""An instance whose last heartbeat is older than this (the default lease) is not live."""


def pause_job(db: SQLiteDatabase, job_id: str, *, paused: bool, out: TextIO) -> int:
    """Pause (or resume) ``job_id``; the exit code."""
    verb = "pause" if paused else "resume"
    now = datetime.now(UTC)
    row = _row(db, job_id)
    if row is None:
        raise CliError(f"no stored job {job_id!r}")
    holder = _live_holder(db, row, now)
    if holder is not None:
        kind = CommandKind.PAUSE if paused else CommandKind.RESUME
        with db._transaction("send command") as conn:
            conn.execute(
                f"INSERT INTO {db.table}_commands (target, job_id, kind, payload, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (holder, job_id, kind.value, b"", to_db_time(now)),
            )
        print(f"{verb} of {job_id!r} sent to instance {holder!r} (applied at its next "
              "heartbeat)", file=out)  # fmt: skip
        return 0
    if row.trigger is not Trigger.CRON:
        _store_one_off(db, job_id, paused=paused, verb=verb)
    else:
        _store(db, row, paused=paused, now=now)
    print(f"{job_id!r} {verb}d in the store (an app restoring it sees that)", file=out)
    return 0


def _row(db: SQLiteDatabase, job_id: str) -> StoredJob | None:
    columns = db._existing_columns()
    with db._errors("read"):
        raw = db._conn.execute(
            f"SELECT {columns} FROM {db.table} WHERE job_id = ?", (job_id,)
        ).fetchone()
    if raw is None:
        return None
    try:
        return row_to_job(raw)
    except (TypeError, ValueError) as exc:
        raise CliError(f"the row of job {job_id!r} is unreadable: {exc}") from None


def _live_holder(db: SQLiteDatabase, row: StoredJob, now: datetime) -> str | None:
    """The live instance that holds ``row``, if any."""
    expires = row.lease_expires_at
    if row.lease_owner is not None and expires is not None and expires > now:
        return row.lease_owner
    if row.lease_owner is not None or not _has_table(db, f"{db.table}_instances"):
        return None
    with db._errors("read"):
        beats = db._conn.execute(
            f"SELECT instance_id, heartbeat_at FROM {db.table}_instances"
        ).fetchall()
    live = [name for name, beat in beats if from_db_time(beat) > now - LIVE_WITHIN]
    return live[0] if len(live) == 1 else None  # one app on the file holds every row


def _has_table(db: SQLiteDatabase, name: str) -> bool:
    with db._errors("read"):
        found = db._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()
    return found is not None


def _store_one_off(db: SQLiteDatabase, job_id: str, *, paused: bool, verb: str) -> None:
    """Set a one-off job's ``paused`` column (schema version 3)."""
    if "paused" not in db._existing_columns():
        raise CliError(
            f"job {job_id!r} is a one-off job, no live app holds it, and this file (schema "
            f"version < 3) cannot store its paused state; {verb} it from its app while it runs"
        )
    with db._transaction("write") as conn:
        conn.execute(f"UPDATE {db.table} SET paused = ? WHERE job_id = ?", (int(paused), job_id))


def _store(db: SQLiteDatabase, row: StoredJob, *, paused: bool, now: datetime) -> None:
    """Write the cron state with its paused flag (compare-and-set on the cron text)."""
    try:
        cron, state = cron_from_json(row.cron or "")
    except ValueError as exc:
        raise CliError(f"job {row.job_id!r}: {exc}") from None
    state = attrs.evolve(state, paused=paused)
    next_run_at = row.next_run_at
    if not paused and state.next_run_at is not None and state.next_run_at <= now:
        # the next slot after now: in the cron's zone, else at the offset stored with the row
        zone = cron.tz or state.next_run_at.tzinfo
        try:
            following = cron.compile(hash_id=row.job_id).next_after(now.astimezone(zone))
        except CronExhausted:
            following = None
        state = attrs.evolve(state, next_run_at=following, offset=now.astimezone(zone))
        next_run_at = following or now
    with db._transaction("write") as conn:
        changed = conn.execute(
            f"UPDATE {db.table} SET cron = ?, next_run_at = ? WHERE job_id = ? AND cron = ?",
            (cron_to_json(cron, state), to_db_time(next_run_at), row.job_id, row.cron),
        ).rowcount
    if changed != 1:
        raise CliError(f"job {row.job_id!r} changed meanwhile (an app took it?): try again")
