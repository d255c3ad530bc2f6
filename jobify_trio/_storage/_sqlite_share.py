"""The sharing protocol on SQLite: presence, leases, claims, slot claims, results, commands.

Functions of an open :class:`~jobify_trio._storage._sqlite.SQLiteDatabase`, run on its
connection's thread. Every write runs in one ``BEGIN IMMEDIATE`` transaction: SQLite has
one writer at a time across processes, so a claim is atomic without row locks. A row is
*owned* while its ``lease_owner`` is set and ``lease_expires_at > now``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from ..storage import StoredJob
from ._shared import Command, Heartbeat, InstanceInfo, ResultStatus, SlotClaim, StoredResult
from ._sqlite import COLUMNS, SQLiteDatabase
from ._sqlite_rows import from_db_time, job_to_row, row_to_job, to_db_time

__all__ = [
    "adopt_orphans",
    "claim_cron_slots",
    "claim_due",
    "fetch_results",
    "get_job",
    "heartbeat",
    "instances",
    "next_due_at",
    "next_lease_expiry",
    "prune",
    "register_instance",
    "try_delete",
    "try_take",
    "unregister_instance",
]

_FREE = "(lease_owner IS NULL OR lease_expires_at IS NULL OR lease_expires_at <= ?)"
_ONE_OFF = "trigger != 'cron' AND state != 'permanently_failed'"
_SPARE = 8  # rows read beyond a claim's limit, in case some are corrupt (skipped)
_MAX_IDS = 500  # ids per IN (...) list: far below SQLite's variable limit


def register_instance(db: SQLiteDatabase, info: InstanceInfo) -> None:
    with db._transaction("register instance") as conn:
        conn.execute(
            f"INSERT OR REPLACE INTO {db.table}_instances (instance_id, host, pid, started_at, "
            "heartbeat_at) VALUES (?, ?, ?, ?, ?)",
            (
                info.instance_id,
                info.host,
                info.pid,
                to_db_time(info.started_at),
                to_db_time(info.heartbeat_at),
            ),
        )


def heartbeat(
    db: SQLiteDatabase, *, instance_id: str, now: datetime, lease_until: datetime
) -> Heartbeat:
    t = db.table
    with db._transaction("heartbeat") as conn:
        conn.execute(
            f"UPDATE {t}_instances SET heartbeat_at = ? WHERE instance_id = ?",
            (to_db_time(now), instance_id),
        )
        conn.execute(
            f"UPDATE {t} SET lease_expires_at = ? WHERE lease_owner = ?",
            (to_db_time(lease_until), instance_id),
        )
        owned = conn.execute(f"SELECT job_id FROM {t} WHERE lease_owner = ?", (instance_id,))
        ids = frozenset(row[0] for row in owned.fetchall())
        raw = conn.execute(
            f"DELETE FROM {t}_commands WHERE target = ? RETURNING command_id, target, job_id, "
            "kind, payload, created_at",
            (instance_id,),
        ).fetchall()
    commands = sorted(
        (
            Command(
                command_id=r[0],
                target=r[1],
                job_id=r[2],
                kind=r[3],
                payload=r[4],
                created_at=from_db_time(r[5]),
            )
            for r in raw
        ),
        key=lambda command: command.command_id,
    )
    return Heartbeat(owned=ids, commands=tuple(commands))


def instances(db: SQLiteDatabase) -> list[InstanceInfo]:
    with db._errors("read"):
        raw = db._conn.execute(
            f"SELECT instance_id, host, pid, started_at, heartbeat_at FROM {db.table}_instances "
            "ORDER BY started_at, instance_id"
        ).fetchall()
    return [
        InstanceInfo(
            instance_id=r[0],
            host=r[1],
            pid=r[2],
            started_at=from_db_time(r[3]),
            heartbeat_at=from_db_time(r[4]),
        )
        for r in raw
    ]


def unregister_instance(db: SQLiteDatabase, *, instance_id: str) -> None:
    t = db.table
    with db._transaction("unregister instance") as conn:
        conn.execute(f"DELETE FROM {t}_instances WHERE instance_id = ?", (instance_id,))
        conn.execute(
            f"UPDATE {t} SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = ?",
            (instance_id,),
        )


def _lease(db: SQLiteDatabase, where: str, params: tuple[Any, ...], **kw: Any) -> list[StoredJob]:
    """Select rows ``where`` (earliest first, up to ``limit``) and lease them to ``owner``."""
    owner: str = kw["owner"]
    until = kw["now"] + kw["lease"]
    limit: int = kw["limit"]
    with db._transaction("claim") as conn:
        raw = conn.execute(
            f"SELECT {COLUMNS} FROM {db.table} WHERE {where} ORDER BY next_run_at, job_id LIMIT ?",
            (*params, limit + _SPARE),
        ).fetchall()
        jobs = [job for job in (_leased(row, owner, until) for row in raw) if job][:limit]
        conn.executemany(
            f"UPDATE {db.table} SET lease_owner = ?, lease_expires_at = ? WHERE job_id = ?",
            [(owner, to_db_time(until), job.job_id) for job in jobs],
        )
    return jobs


def _leased(raw: tuple[Any, ...], owner: str, until: datetime) -> StoredJob | None:
    """The row leased to ``owner``; None if it is corrupt (it is then not leased: a full
    ``load`` reports it, and it cannot block the claims of the others)."""
    try:
        return row_to_job((*raw[:8], owner, to_db_time(until), *raw[10:]))
    except (ValueError, TypeError):
        return None


def claim_due(
    db: SQLiteDatabase, *, owner: str, now: datetime, lease: timedelta, limit: int
) -> list[StoredJob]:
    stamp = to_db_time(now)
    where = f"next_run_at <= ? AND {_ONE_OFF} AND {_FREE}"
    return _lease(db, where, (stamp, stamp), owner=owner, now=now, lease=lease, limit=limit)


def adopt_orphans(
    db: SQLiteDatabase, *, owner: str, now: datetime, lease: timedelta, limit: int
) -> list[StoredJob]:
    where = (
        "state != 'permanently_failed' AND ((lease_owner IS NOT NULL AND "
        "(lease_expires_at IS NULL OR lease_expires_at <= ?)) "
        "OR (lease_owner IS NULL AND (trigger = 'cron' OR next_run_at > ?)))"
    )
    params = (to_db_time(now), to_db_time(now))
    return _lease(db, where, params, owner=owner, now=now, lease=lease, limit=limit)


def next_due_at(db: SQLiteDatabase, *, now: datetime) -> datetime | None:
    with db._errors("read"):
        row = db._conn.execute(
            f"SELECT min(next_run_at) FROM {db.table} WHERE {_ONE_OFF} AND {_FREE}",
            (to_db_time(now),),
        ).fetchone()
    return None if row is None or row[0] is None else from_db_time(row[0])


def next_lease_expiry(db: SQLiteDatabase, *, owner: str, now: datetime) -> datetime | None:
    with db._errors("read"):
        row = db._conn.execute(
            f"SELECT min(lease_expires_at) FROM {db.table} WHERE lease_owner IS NOT NULL "
            "AND lease_owner != ? AND lease_expires_at > ? AND state != 'permanently_failed'",
            (owner, to_db_time(now)),
        ).fetchone()
    return None if row is None or row[0] is None else from_db_time(row[0])


def claim_cron_slots(
    db: SQLiteDatabase, claims: Sequence[SlotClaim], *, now: datetime, lease: timedelta
) -> set[str]:
    t, stamp, until = db.table, to_db_time(now), to_db_time(now + lease)
    won: set[str] = set()
    with db._transaction("claim cron slots") as conn:
        for claim in claims:
            slot = to_db_time(claim.slot)
            changed = conn.execute(
                f"UPDATE {t} SET cron = ?, next_run_at = ?, lease_owner = ?, "
                "lease_expires_at = ? WHERE job_id = ? AND next_run_at = ? AND "
                f"(lease_owner = ? OR {_FREE}) AND NOT EXISTS "
                f"(SELECT 1 FROM {t}_claims WHERE job_id = ? AND slot = ?)",
                (
                    claim.cron,
                    to_db_time(claim.next_run_at),
                    claim.owner,
                    until,
                    claim.job_id,
                    to_db_time(claim.expected_next_run_at),
                    claim.owner,
                    stamp,
                    claim.job_id,
                    slot,
                ),
            ).rowcount
            if changed == 1:
                conn.execute(
                    f"INSERT INTO {t}_claims (job_id, slot, owner, claimed_at) VALUES (?, ?, ?, ?)",
                    (claim.job_id, slot, claim.owner, stamp),
                )
                won.add(claim.job_id)
    return won


def _live_owner(conn: Any, table: str, job_id: str, owner: str | None, stamp: str) -> str | None:
    row = conn.execute(
        f"SELECT lease_owner FROM {table} WHERE job_id = ? AND lease_owner IS NOT NULL "
        "AND lease_expires_at > ?",
        (job_id, stamp),
    ).fetchone()
    if row is None or row[0] == owner:
        return None
    return str(row[0])


def try_take(db: SQLiteDatabase, job: StoredJob, *, now: datetime) -> str | None:
    with db._transaction("take") as conn:
        other = _live_owner(conn, db.table, job.job_id, job.lease_owner, to_db_time(now))
        if other is None:
            conn.execute(
                f"INSERT OR REPLACE INTO {db.table} ({COLUMNS}) VALUES ({','.join('?' * 12)})",
                job_to_row(job),
            )
    return other


def try_delete(db: SQLiteDatabase, job_id: str, *, owner: str, now: datetime) -> str | None:
    with db._transaction("delete") as conn:
        other = _live_owner(conn, db.table, job_id, owner, to_db_time(now))
        if other is None:
            conn.execute(f"DELETE FROM {db.table} WHERE job_id = ?", (job_id,))
    return other


def get_job(db: SQLiteDatabase, job_id: str) -> StoredJob | None:
    with db._errors("read"):
        row = db._conn.execute(
            f"SELECT {COLUMNS} FROM {db.table} WHERE job_id = ?", (job_id,)
        ).fetchone()
    return None if row is None else row_to_job(row)


def fetch_results(db: SQLiteDatabase, job_ids: Sequence[str]) -> list[StoredResult]:
    found: list[StoredResult] = []
    ids = list(dict.fromkeys(job_ids))
    with db._errors("read"):
        for start in range(0, len(ids), _MAX_IDS):
            chunk = ids[start : start + _MAX_IDS]
            raw = db._conn.execute(
                "SELECT job_id, origin, status, value, error, finished_at FROM "
                f"{db.table}_results WHERE job_id IN ({','.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
            found.extend(
                StoredResult(
                    job_id=r[0],
                    origin=r[1],
                    status=ResultStatus(r[2]),
                    value=r[3],
                    error=r[4],
                    finished_at=from_db_time(r[5]),
                )
                for r in raw
            )
    return found


def prune(
    db: SQLiteDatabase,
    *,
    results_before: datetime,
    claims_before: datetime,
    instances_before: datetime,
) -> None:
    t = db.table
    with db._transaction("prune") as conn:
        conn.execute(
            f"DELETE FROM {t}_results WHERE finished_at < ?", (to_db_time(results_before),)
        )
        conn.execute(f"DELETE FROM {t}_claims WHERE claimed_at < ?", (to_db_time(claims_before),))
        conn.execute(
            f"DELETE FROM {t}_instances WHERE heartbeat_at < ?", (to_db_time(instances_before),)
        )
        conn.execute(
            f"DELETE FROM {t}_commands WHERE created_at < ? "
            f"AND target NOT IN (SELECT instance_id FROM {t}_instances)",
            (to_db_time(instances_before),),
        )
