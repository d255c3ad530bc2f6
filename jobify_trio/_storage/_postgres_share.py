"""The sharing protocol on PostgreSQL: presence, leases, claims, slot claims, results.

Functions of an open psycopg connection (autocommit; a function that needs several
statements opens a transaction). Claims lock rows with ``FOR UPDATE SKIP LOCKED``, so
concurrent claimers never get the same row and never wait for each other; a row is
*owned* while ``lease_owner`` is set and ``lease_expires_at > now``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg

from ..storage import StoredJob
from ._postgres_schema import Names
from ._postgres_writes import COLUMNS, job_values, row_to_job, upsert_sql
from ._shared import Command, Heartbeat, InstanceInfo, SlotClaim, StoredResult

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

Conn = psycopg.Connection[Any]
_FREE = "(lease_owner IS NULL OR lease_expires_at IS NULL OR lease_expires_at <= %(now)s)"
_ONE_OFF = "trigger <> 'cron' AND state <> 'permanently_failed'"
_RETURNING = ", ".join(f"j.{c}" for c in COLUMNS.split(", "))


def register_instance(conn: Conn, names: Names, info: InstanceInfo) -> None:
    conn.execute(
        f"INSERT INTO {names.table('instances')} (instance_id, host, pid, started_at, "
        "heartbeat_at) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (instance_id) DO UPDATE SET "
        "host = EXCLUDED.host, pid = EXCLUDED.pid, started_at = EXCLUDED.started_at, "
        "heartbeat_at = EXCLUDED.heartbeat_at",
        (info.instance_id, info.host, info.pid, info.started_at, info.heartbeat_at),
    )


def heartbeat(
    conn: Conn, names: Names, *, instance_id: str, now: datetime, lease_until: datetime
) -> Heartbeat:
    with conn.pipeline(), conn.transaction():
        conn.execute(
            f"UPDATE {names.table('instances')} SET heartbeat_at = %s WHERE instance_id = %s",
            (now, instance_id),
        )
        owned = conn.execute(
            f"UPDATE {names.jobs} SET lease_expires_at = %s WHERE job_id IN (SELECT job_id "
            f"FROM {names.jobs} WHERE lease_owner = %s ORDER BY job_id FOR UPDATE) "
            "RETURNING job_id",  # rows locked in job_id order, as slot claims lock them
            (lease_until, instance_id),
        )
        taken = conn.execute(
            f"DELETE FROM {names.table('commands')} WHERE target = %s RETURNING command_id, "
            "target, job_id, kind, payload, created_at",
            (instance_id,),
        )
    ids = frozenset(row[0] for row in owned.fetchall())
    commands = sorted(
        (
            Command(
                command_id=r[0],
                target=r[1],
                job_id=r[2],
                kind=r[3],
                payload=bytes(r[4]),
                created_at=r[5],
            )
            for r in taken.fetchall()
        ),
        key=lambda command: command.command_id,
    )
    return Heartbeat(owned=ids, commands=tuple(commands))


def instances(conn: Conn, names: Names) -> list[InstanceInfo]:
    rows = conn.execute(
        "SELECT instance_id, host, pid, started_at, heartbeat_at FROM "
        f"{names.table('instances')} ORDER BY started_at, instance_id"
    ).fetchall()
    return [
        InstanceInfo(instance_id=r[0], host=r[1], pid=r[2], started_at=r[3], heartbeat_at=r[4])
        for r in rows
    ]


def unregister_instance(conn: Conn, names: Names, *, instance_id: str) -> None:
    with conn.pipeline(), conn.transaction():
        conn.execute(
            f"DELETE FROM {names.table('instances')} WHERE instance_id = %s", (instance_id,)
        )
        conn.execute(
            f"UPDATE {names.jobs} SET lease_owner = NULL, lease_expires_at = NULL "
            "WHERE lease_owner = %s",
            (instance_id,),
        )
        conn.execute("SELECT pg_notify(%s, '')", (names.channel_name,))


def _readable() -> str:
    """Rows :func:`row_to_job` can read (a corrupt row is never leased: a full ``load``
    reports it, and it cannot block the claims of the others)."""
    from ..storage import StoredState, Trigger

    triggers = ", ".join(f"'{t.value}'" for t in Trigger)
    states = ", ".join(f"'{s.value}'" for s in StoredState)
    return f"trigger IN ({triggers}) AND state IN ({states})"


_READABLE = _readable()


def _lease(conn: Conn, names: Names, where: str, params: dict[str, Any]) -> list[StoredJob]:
    rows = conn.execute(
        f"WITH c AS (SELECT job_id FROM {names.jobs} WHERE ({where}) AND {_READABLE} "
        "ORDER BY next_run_at, job_id LIMIT %(limit)s FOR UPDATE SKIP LOCKED) "
        f"UPDATE {names.jobs} AS j SET lease_owner = %(owner)s, lease_expires_at = %(until)s "
        f"FROM c WHERE j.job_id = c.job_id RETURNING {_RETURNING}",
        params,
    ).fetchall()
    jobs = [row_to_job(row) for row in rows]
    jobs.sort(key=lambda job: (job.next_run_at, job.job_id))
    return jobs


def claim_due(
    conn: Conn, names: Names, *, owner: str, now: datetime, lease: timedelta, limit: int
) -> list[StoredJob]:
    params = {"owner": owner, "now": now, "until": now + lease, "limit": limit}
    return _lease(conn, names, f"next_run_at <= %(now)s AND {_ONE_OFF} AND {_FREE}", params)


def adopt_orphans(
    conn: Conn, names: Names, *, owner: str, now: datetime, lease: timedelta, limit: int
) -> list[StoredJob]:
    where = (
        "state <> 'permanently_failed' AND ((lease_owner IS NOT NULL AND "
        "(lease_expires_at IS NULL OR lease_expires_at <= %(now)s)) "
        "OR (lease_owner IS NULL AND (trigger = 'cron' OR next_run_at > %(now)s)))"
    )
    params = {"owner": owner, "now": now, "until": now + lease, "limit": limit}
    return _lease(conn, names, where, params)


def next_due_at(conn: Conn, names: Names, *, now: datetime) -> datetime | None:
    row = conn.execute(
        f"SELECT min(next_run_at) FROM {names.jobs} WHERE {_ONE_OFF} AND {_FREE}", {"now": now}
    ).fetchone()
    return None if row is None else row[0]


def next_lease_expiry(conn: Conn, names: Names, *, owner: str, now: datetime) -> datetime | None:
    row = conn.execute(
        f"SELECT min(lease_expires_at) FROM {names.jobs} WHERE lease_owner <> %(owner)s "
        "AND lease_expires_at > %(now)s AND state <> 'permanently_failed'",
        {"owner": owner, "now": now},
    ).fetchone()
    return None if row is None else row[0]


def _slot_sql(names: Names) -> str:
    """Lock the rows whose claim holds, insert their slot claims; the won job ids.

    The rows are updated by a second statement (:func:`_slot_update_sql`): joining the
    claims inserted here back to the claim data in the same statement made PostgreSQL
    pick a nested loop over two CTE scans it estimated at one row, quadratic in the
    batch (37 ms of a 46 ms statement for 269 claims).
    """
    return (
        "WITH c AS (SELECT * FROM unnest(%(ids)s::text[], %(slots)s::timestamptz[], "
        "%(expected)s::timestamptz[], %(owners)s::text[]) AS c(job_id, slot, expected, owner)), "
        f"ok AS (SELECT c.* FROM c JOIN {names.jobs} AS j ON j.job_id = c.job_id "
        "AND j.next_run_at = c.expected AND (j.lease_owner IS NULL OR j.lease_owner = c.owner "
        "OR j.lease_expires_at IS NULL OR j.lease_expires_at <= %(now)s) "
        "ORDER BY c.job_id FOR UPDATE OF j) "
        f"INSERT INTO {names.table('claims')} (job_id, slot, owner, claimed_at) "
        "SELECT job_id, slot, owner, %(now)s FROM ok ON CONFLICT DO NOTHING RETURNING job_id"
    )


def _slot_update_sql(names: Names) -> str:
    """The won rows take the cron state, next run and lease of their claims."""
    return (
        f"UPDATE {names.jobs} AS j SET cron = u.cron, next_run_at = u.next_run_at, "
        "lease_owner = u.owner, lease_expires_at = %(until)s FROM unnest(%(ids)s::text[], "
        "%(owners)s::text[], %(crons)s::text[], %(nexts)s::timestamptz[]) "
        "AS u(job_id, owner, cron, next_run_at) WHERE j.job_id = u.job_id"
    )


def _rounds(claims: Sequence[SlotClaim]) -> list[list[SlotClaim]]:
    """Claims split so that no job appears twice in one statement (order kept per job)."""
    rounds: list[list[SlotClaim]] = []
    depth: dict[str, int] = {}
    for claim in claims:
        level = depth.get(claim.job_id, 0)
        depth[claim.job_id] = level + 1
        if level == len(rounds):
            rounds.append([])
        rounds[level].append(claim)
    return rounds


def claim_cron_slots(
    conn: Conn, names: Names, claims: Sequence[SlotClaim], *, now: datetime, lease: timedelta
) -> set[str]:
    won: set[str] = set()
    claim_sql, update_sql = _slot_sql(names), _slot_update_sql(names)
    with conn.transaction():
        for batch in _rounds(claims):
            params = {
                "ids": [c.job_id for c in batch],
                "slots": [c.slot for c in batch],
                "expected": [c.expected_next_run_at for c in batch],
                "owners": [c.owner for c in batch],
                "now": now,
            }
            got = {row[0] for row in conn.execute(claim_sql, params).fetchall()}
            if not got:
                continue
            mine = [c for c in batch if c.job_id in got]  # a job appears once in a round
            conn.execute(
                update_sql,
                {
                    "ids": [c.job_id for c in mine],
                    "owners": [c.owner for c in mine],
                    "crons": [c.cron for c in mine],
                    "nexts": [c.next_run_at for c in mine],
                    "until": now + lease,
                },
            )
            won.update(got)
    return won


def try_take(conn: Conn, names: Names, job: StoredJob, *, now: datetime) -> str | None:
    placeholders = "(" + ", ".join(["%s"] * 12) + ")"
    condition = (
        f" WHERE {names.jobs}.lease_owner IS NULL OR {names.jobs}.lease_owner = "
        f"EXCLUDED.lease_owner OR {names.jobs}.lease_expires_at IS NULL OR "
        f"{names.jobs}.lease_expires_at <= %s"
    )
    with conn.transaction():
        done = conn.execute(
            upsert_sql(names.jobs, f"VALUES {placeholders}", condition) + " RETURNING job_id",
            (*job_values(job), now),
        ).fetchone()
        if done is not None:
            return None
        row = conn.execute(
            f"SELECT lease_owner FROM {names.jobs} WHERE job_id = %s", (job.job_id,)
        ).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def try_delete(conn: Conn, names: Names, job_id: str, *, owner: str, now: datetime) -> str | None:
    with conn.transaction():
        row = conn.execute(
            f"SELECT lease_owner, lease_expires_at FROM {names.jobs} WHERE job_id = %s FOR UPDATE",
            (job_id,),
        ).fetchone()
        if row is None:
            return None
        holder, until = row
        if holder is not None and holder != owner and until is not None and until > now:
            return str(holder)
        conn.execute(f"DELETE FROM {names.jobs} WHERE job_id = %s", (job_id,))
    return None


def get_job(conn: Conn, names: Names, job_id: str) -> StoredJob | None:
    row = conn.execute(
        f"SELECT {COLUMNS} FROM {names.jobs} WHERE job_id = %s", (job_id,)
    ).fetchone()
    return None if row is None else row_to_job(row)


def fetch_results(conn: Conn, names: Names, job_ids: Sequence[str]) -> list[StoredResult]:
    rows = conn.execute(
        "SELECT job_id, origin, status, value, error, finished_at FROM "
        f"{names.table('results')} WHERE job_id = ANY(%s::text[]) ORDER BY job_id",
        (list(job_ids),),
    ).fetchall()
    return [
        StoredResult(
            job_id=r[0],
            origin=r[1],
            status=r[2],
            value=None if r[3] is None else bytes(r[3]),
            error=r[4],
            finished_at=r[5],
        )
        for r in rows
    ]


def prune(
    conn: Conn,
    names: Names,
    *,
    results_before: datetime,
    claims_before: datetime,
    instances_before: datetime,
) -> None:
    with conn.pipeline(), conn.transaction():
        conn.execute(
            f"DELETE FROM {names.table('results')} WHERE finished_at < %s", (results_before,)
        )
        conn.execute(f"DELETE FROM {names.table('claims')} WHERE claimed_at < %s", (claims_before,))
        conn.execute(
            f"DELETE FROM {names.table('instances')} WHERE heartbeat_at < %s",
            (instances_before,),
        )
        conn.execute(
            f"DELETE FROM {names.table('commands')} WHERE created_at < %s "
            f"AND target NOT IN (SELECT instance_id FROM {names.table('instances')})",
            (instances_before,),
        )
