"""Raw PostgreSQL ceilings (issue 9), measured in the same run as the PostgreSQL sides.

Run by ``run.py`` with the interpreter of the ``.bench/procrastinate-3`` virtualenv
(which has psycopg 3): ``python benchmarks/_raw_pg_side.py --metric pg_raw_insert``.

``pg_raw_insert``, in a fresh schema ``bench_raw_pg`` on the benchmark server, with the
server's own commit settings (reported): ``autocommit_rows_per_s``, a loop of single-row
``INSERT`` statements on a sync psycopg connection in autocommit mode (one commit per
row: the ceiling of a durable push loop); ``batched_rows_per_s``, ``executemany`` of the
same ``n`` rows in one transaction.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from typing import Any

from _common import Params, Registry, Values, now, per_round, side_main
from _pg_common import connect, fresh_schema, server_settings

registry = Registry(side="raw_pg")
SCHEMA = f"bench_raw_pg_{os.getpid()}"  # per run: two runs at once do not clash
TABLE = f"""CREATE TABLE {SCHEMA}.jobs (
    job_id TEXT PRIMARY KEY, task TEXT NOT NULL, next_run_at TIMESTAMPTZ NOT NULL,
    arguments BYTEA NOT NULL
)"""
INSERT = f"INSERT INTO {SCHEMA}.jobs (job_id, task, next_run_at, arguments) VALUES (%s, %s, %s, %s)"

try:
    import psycopg
except Exception as exc:  # reported as "unavailable", never a crash
    registry.unavailable = f"cannot import psycopg: {type(exc).__name__}: {exc}"


def _row(i: int) -> tuple[Any, ...]:
    return (f"job-{i}", "bench:noop", datetime.now(UTC), b'{"args":[1],"kwargs":{}}')


def _autocommit_round(conn: Any, n: int, base: int) -> float:
    start = now()
    with conn.cursor() as cur:
        for i in range(base, base + n):
            cur.execute(INSERT, _row(i))
    return n / (now() - start)


def _batched_round(conn: Any, n: int, base: int) -> float:
    start = now()
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(INSERT, [_row(i) for i in range(base, base + n)])
    return n / (now() - start)


@registry.metric("pg_raw_insert")
def pg_raw_insert(p: Params) -> dict[str, object]:
    with fresh_schema(psycopg, SCHEMA), connect(psycopg, autocommit=True) as conn:
        conn.execute(TABLE)
        settings = server_settings(conn)
        _autocommit_round(conn, 100, -1000)  # warm-up
        rounds: list[Values] = []
        for r in range(p.repeat):
            auto = _autocommit_round(conn, p.n, 2 * r * p.n)
            batched = _batched_round(conn, p.n, (2 * r + 1) * p.n)
            rounds.append({"autocommit_rows_per_s": auto, "batched_rows_per_s": batched})
    return per_round(rounds, n=p.n, **settings)


if __name__ == "__main__":
    sys.exit(side_main(registry))
