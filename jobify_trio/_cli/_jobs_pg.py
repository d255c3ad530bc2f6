"""``jobify-trio jobs --db postgresql://...``: inspect and change a PostgreSQL job store.

Usage::

    jobify-trio jobs --db postgresql://user@host/db [--schema public] [--prefix jobify] [list]
    jobify-trio jobs --db postgresql://... instances
    jobify-trio jobs --db postgresql://... claims [--limit 50]
    jobify-trio jobs --db postgresql://... delete JOB_ID [JOB_ID ...]
    jobify-trio jobs --db postgresql://... --app MODULE:APP purge-unknown [--dry-run]
    jobify-trio jobs --db postgresql://... pause JOB_ID   (and resume JOB_ID)
    jobify-trio jobs --db postgresql://... history JOB_ID [--limit 20]

``list`` prints each stored job with its lease (owner and expiry); ``instances`` the app
instances with the age of their last heartbeat and whether they are live; ``claims`` the
latest cron slot claims; ``history`` the stored run history of a job (newest first).
These (and ``purge-unknown --dry-run``) run in a read-only
transaction on a session whose default transaction is read-only: they never write,
never create tables. ``delete``, ``purge-unknown``, ``pause`` and ``resume`` change rows
in one transaction per job that locks the job's row (``FOR UPDATE``), and never yank a
job from a live instance that holds it: that instance is sent a command (see
:mod:`._jobs_ops`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from ..storage import Command, StorageError, StoredJob, StoredResult
from ._cron import CliError, report_error
from ._db import ENV_VAR, postgres_url
from ._jobs import add_actions, known_tasks, purge
from ._jobs_history import print_runs
from ._jobs_ops import decoded_row, delete_jobs, pause_job
from ._tables import (
    CLAIMS_HEADER,
    INSTANCES_HEADER,
    LIST_HEADER,
    Instance,
    instance_cells,
    print_table,
    rows_as_cells,
)

__all__ = ["pg_jobs_main"]

_READ_ONLY = "-c default_transaction_read_only=on -c TimeZone=UTC -c statement_timeout=30000"
_READ_WRITE = "-c TimeZone=UTC -c statement_timeout=30000 -c lock_timeout=5000"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobify-trio jobs",
        description="Inspect and change the jobs, instances and slot claims of a PostgreSQL "
        "job store.",
    )
    parser.add_argument("--db", help=f"postgresql:// URL (default: ${ENV_VAR})")
    parser.add_argument("--schema", default="public", help="schema (default: public)")
    parser.add_argument("--prefix", default="jobify", help="table prefix (default: jobify)")
    parser.add_argument("--app", help="MODULE:APP of the Jobify app (for purge-unknown)")
    parser.add_argument("--app-dir", default=".", help="directory put first on sys.path")
    parser.add_argument(
        "--traceback", action="store_true", help="show the full traceback of an error"
    )
    add_actions(parser.add_subparsers(dest="action", metavar="ACTION"))
    return parser


def pg_jobs_main(argv: Sequence[str], *, out: TextIO | None = None) -> int:
    """Run ``jobify-trio jobs`` against PostgreSQL; the exit code (2 on errors)."""
    stream = sys.stdout if out is None else out
    args = _parser().parse_args(list(argv))
    url = postgres_url(argv)
    try:
        if url is None:
            raise CliError(f"expected a postgresql:// URL in --db or ${ENV_VAR}")
        return _dispatch(url, args, stream)
    except (CliError, StorageError) as exc:
        report_error("jobs", exc, traceback=args.traceback)
        return 2


def _dispatch(url: str, args: argparse.Namespace, out: TextIO) -> int:
    from .._storage._postgres_schema import Names

    try:
        names = Names(args.schema, args.prefix)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    action = args.action or "list"
    known = known_tasks(args.app, Path(args.app_dir)) if args.app else None
    if action == "purge-unknown" and known is None:
        raise CliError("purge-unknown needs --app MODULE:APP to know the app's tasks")
    writes = action in ("delete", "pause", "resume") or (
        action == "purge-unknown" and not args.dry_run
    )
    with _connect(url, names, writable=writes) as conn:
        now = datetime.now(UTC)
        store = PostgresOps(conn, names)
        if action in ("pause", "resume"):
            return pause_job(store, args.job_id, paused=action == "pause", now=now, out=out)
        if action == "delete":
            return delete_jobs(store, args.job_ids, now, out, wait=args.wait)
        if action == "history":
            with conn.transaction():
                runs = conn.execute(_select(action, names, args.limit), (args.job_id,)).fetchall()
            print_runs(runs, args.job_id, out)
            return 0
        with conn.transaction():
            rows = conn.execute(_select(action, names, getattr(args, "limit", 50))).fetchall()
        if action == "purge-unknown":
            doomed = [str(row[0]) for row in rows if row[1] not in (known or set())]
            return purge(store, doomed, dry_run=args.dry_run, now=now, out=out)
        _print(action, rows, known, now, out)
    return 0


@contextmanager
def _connect(url: str, names: Any, *, writable: bool) -> Iterator[Any]:
    """A session (read-only unless ``writable``) on a store whose tables exist; psycopg
    errors become :class:`StorageError` naming the server."""
    import psycopg

    from .._storage._postgres_conn import describe, explain

    try:
        options = _READ_WRITE if writable else _READ_ONLY
        with psycopg.connect(url, connect_timeout=5, options=options) as conn:
            conn.read_only = not writable
            with conn.transaction():
                if not _has_tables(conn, names):
                    raise CliError(
                        f"{describe(url)} has no job tables {names.jobs} "
                        "(check --schema and --prefix)"
                    )
            yield conn
    except psycopg.Error as exc:
        raise StorageError(
            explain(describe(url), "read" if not writable else "write", exc)
        ) from exc


_QUERIES = {
    "list": "SELECT job_id, task, trigger, next_run_at, state, attempt, lease_owner, "
    "lease_expires_at FROM {jobs} ORDER BY next_run_at, job_id",
    "purge-unknown": "SELECT job_id, task FROM {jobs} ORDER BY next_run_at, job_id",
    "instances": "SELECT i.instance_id, i.host, i.pid, i.started_at, i.heartbeat_at, "
    "(SELECT max(lease_expires_at) FROM {jobs} WHERE lease_owner = i.instance_id) "
    "FROM {instances} AS i ORDER BY i.started_at, i.instance_id",
    "claims": "SELECT job_id, slot, owner, claimed_at FROM {claims} ORDER BY claimed_at DESC, "
    "job_id LIMIT {limit}",
    "history": "SELECT attempt, status, started_at, ended_at, retried, instance, error FROM {runs} "
    "WHERE job_id = %s ORDER BY run_id DESC LIMIT {limit}",
}


def _select(action: str, names: Any, limit: int) -> str:
    return _QUERIES[action].format(
        jobs=names.jobs,
        instances=names.table("instances"),
        claims=names.table("claims"),
        runs=names.table("runs"),
        limit=max(1, int(limit)),
    )


def _has_tables(conn: Any, names: Any) -> bool:
    row = conn.execute(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
        (names.schema, f"{names.prefix}_meta"),
    ).fetchone()
    return row is not None


def _instance(row: Sequence[Any]) -> Instance:
    return Instance(
        instance_id=row[0], host=row[1], pid=row[2], started_at=row[3], heartbeat_at=row[4],
        lease_until=row[5],
    )  # fmt: skip


def _print(
    action: str, rows: list[tuple[Any, ...]], known: set[str] | None, now: datetime, out: TextIO
) -> None:
    if action == "instances":
        found = [_instance(row) for row in rows]
        print_table(INSTANCES_HEADER, instance_cells(found, now), f"{len(rows)} instance(s)", out)
    elif action == "claims":
        print_table(CLAIMS_HEADER, rows_as_cells(rows), f"{len(rows)} slot claim(s)", out)
    else:
        lines = rows_as_cells(rows)
        if known is not None:
            lines = [
                (*line[:4], line[4] + ("" if line[1] in known else " (unknown task)"), *line[5:])
                for line in lines
            ]
        print_table(LIST_HEADER, lines, f"{len(rows)} stored job(s)", out)


class PostgresOps:
    """:class:`~._jobs_ops.OpsStore` on a read-write PostgreSQL session."""

    always_leased = True  # every row a live instance holds is leased to it

    def __init__(self, conn: Any, names: Any) -> None:
        self.conn, self.names = conn, names

    @contextmanager
    def transaction(self) -> Iterator[_Tx]:
        with self.conn.transaction():
            yield _Tx(self.conn, self.names)


class _Tx:
    def __init__(self, conn: Any, names: Any) -> None:
        self.conn, self.names = conn, names

    def row(self, job_id: str) -> StoredJob | None:
        from .._storage._columns import COLUMNS
        from .._storage._postgres_writes import row_to_job

        raw = self.conn.execute(
            f"SELECT {COLUMNS} FROM {self.names.jobs} WHERE job_id = %s FOR UPDATE", (job_id,)
        ).fetchone()
        return decoded_row(raw, job_id, row_to_job)

    def instances(self) -> list[Instance]:
        rows = self.conn.execute(_select("instances", self.names, 1)).fetchall()
        return [_instance(row) for row in rows]

    def delete(self, job_id: str) -> None:
        self.conn.execute(f"DELETE FROM {self.names.jobs} WHERE job_id = %s", (job_id,))

    def send(self, command: Command) -> None:
        self.conn.execute(
            f"INSERT INTO {self.names.table('commands')} (target, job_id, kind, payload, "
            "created_at) VALUES (%s, %s, %s, %s, %s)",
            (command.target, command.job_id, command.kind.value, command.payload,
             command.created_at),
        )  # fmt: skip
        self.conn.execute("SELECT pg_notify(%s, '')", (self.names.channel_name,))

    def put_result(self, result: StoredResult) -> None:
        self.conn.execute(
            f"INSERT INTO {self.names.table('results')} (job_id, origin, status, value, error, "
            "finished_at) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (job_id) DO UPDATE SET "
            "origin = EXCLUDED.origin, status = EXCLUDED.status, value = EXCLUDED.value, "
            "error = EXCLUDED.error, finished_at = EXCLUDED.finished_at",
            (result.job_id, result.origin, result.status.value, result.value, result.error,
             result.finished_at),
        )  # fmt: skip
        self.conn.execute("SELECT pg_notify(%s, '')", (self.names.channel_name,))

    def set_cron(self, row: StoredJob, cron: str, next_run_at: datetime) -> None:
        self.conn.execute(
            f"UPDATE {self.names.jobs} SET cron = %s, next_run_at = %s WHERE job_id = %s",
            (cron, next_run_at, row.job_id),
        )

    def set_paused(self, job_id: str, paused: bool) -> bool:
        self.conn.execute(
            f"UPDATE {self.names.jobs} SET paused = %s WHERE job_id = %s", (paused, job_id)
        )
        return True
