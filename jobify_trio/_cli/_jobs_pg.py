"""``jobify-trio jobs --db postgresql://...``: inspect a PostgreSQL job store, read-only.

Usage::

    jobify-trio jobs --db postgresql://user@host/db [--schema public] [--prefix jobify] [list]
    jobify-trio jobs --db postgresql://... instances
    jobify-trio jobs --db postgresql://... claims [--limit 50]
    jobify-trio jobs --db postgresql://... history JOB_ID [--limit 20]

``list`` prints each stored job with its lease (owner and expiry) and origin;
``instances`` the app instances with their last heartbeat; ``claims`` the latest cron slot
claims; ``history`` the stored run history of a job (newest first). Every query runs in
a read-only transaction on a session whose default transaction is read-only: the command
never writes to the database, never creates tables.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TextIO

from ..storage import StorageError
from ._cron import CliError, report_error
from ._db import ENV_VAR, postgres_url
from ._jobs_history import HEADER, print_runs

__all__ = ["pg_jobs_main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobify-trio jobs",
        description="Inspect the jobs, instances and slot claims of a PostgreSQL job store "
        "(read-only).",
    )
    parser.add_argument("--db", help=f"postgresql:// URL (default: ${ENV_VAR})")
    parser.add_argument("--schema", default="public", help="schema (default: public)")
    parser.add_argument("--prefix", default="jobify", help="table prefix (default: jobify)")
    parser.add_argument(
        "--traceback", action="store_true", help="show the full traceback of an error"
    )
    commands = parser.add_subparsers(dest="action", metavar="ACTION")
    commands.add_parser("list", help="list stored jobs with their leases (the default)")
    commands.add_parser("instances", help="list app instances and their heartbeats")
    claims = commands.add_parser("claims", help="list the latest cron slot claims")
    claims.add_argument("--limit", type=int, default=50, help="how many (default: 50)")
    history = commands.add_parser("history", help="the stored run history of a job")
    history.add_argument("job_id", metavar="JOB_ID")
    history.add_argument("--limit", type=int, default=20, help="how many runs (default: 20)")
    return parser


def pg_jobs_main(argv: Sequence[str], *, out: TextIO | None = None) -> int:
    """Run ``jobify-trio jobs`` against PostgreSQL; the exit code (2 on errors)."""
    stream = sys.stdout if out is None else out
    args = _parser().parse_args(list(argv))
    url = postgres_url(argv)
    try:
        if url is None:
            raise CliError(f"expected a postgresql:// URL in --db or ${ENV_VAR}")
        if args.action in ("delete", "purge-unknown"):
            raise CliError(f"{args.action} is not available on PostgreSQL")
        rows = _query(url, args)
    except (CliError, StorageError) as exc:
        report_error("jobs", exc, traceback=args.traceback)
        return 2
    if args.action == "history":
        print_runs(rows, args.job_id, stream)
        return 0
    _print(rows, args.action or "list", stream)
    return 0


_QUERIES = {
    "list": (
        ("ID", "TASK", "TRIGGER", "NEXT RUN (UTC)", "STATE", "ATTEMPT", "OWNER", "LEASE UNTIL"),
        "SELECT job_id, task, trigger, next_run_at, state, attempt, lease_owner, "
        "lease_expires_at FROM {jobs} ORDER BY next_run_at, job_id",
    ),
    "instances": (
        ("INSTANCE", "HOST", "PID", "STARTED (UTC)", "LAST HEARTBEAT (UTC)"),
        "SELECT instance_id, host, pid, started_at, heartbeat_at FROM {instances} "
        "ORDER BY started_at",
    ),
    "claims": (
        ("JOB", "SLOT (UTC)", "OWNER", "CLAIMED AT (UTC)"),
        "SELECT job_id, slot, owner, claimed_at FROM {claims} ORDER BY claimed_at DESC, "
        "job_id LIMIT {limit}",
    ),
    "history": (
        HEADER,
        "SELECT attempt, status, started_at, ended_at, retried, instance, error FROM {runs} "
        "WHERE job_id = %s ORDER BY run_id DESC LIMIT {limit}",
    ),
}


def _query(url: str, args: argparse.Namespace) -> list[tuple[Any, ...]]:
    import psycopg

    from .._storage._postgres_conn import describe, explain
    from .._storage._postgres_schema import Names

    try:
        names = Names(args.schema, args.prefix)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    action = args.action or "list"
    sql = _QUERIES[action][1].format(
        jobs=names.jobs,
        instances=names.table("instances"),
        claims=names.table("claims"),
        runs=names.table("runs"),
        limit=max(1, int(getattr(args, "limit", 50))),
    )
    params = (args.job_id,) if action == "history" else ()
    options = "-c default_transaction_read_only=on -c TimeZone=UTC -c statement_timeout=30000"
    try:
        with psycopg.connect(url, connect_timeout=5, options=options) as conn:
            conn.read_only = True
            with conn.transaction():
                if not _has_tables(conn, names):
                    raise CliError(
                        f"{describe(url)} has no job tables {names.jobs} "
                        "(check --schema and --prefix)"
                    )
                return conn.execute(sql, params).fetchall()
    except psycopg.Error as exc:
        raise StorageError(explain(describe(url), "read", exc)) from exc


def _has_tables(conn: Any, names: Any) -> bool:
    row = conn.execute(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
        (names.schema, f"{names.prefix}_meta"),
    ).fetchone()
    return row is not None


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    return str(value)


def _print(rows: list[tuple[Any, ...]], action: str, out: TextIO) -> None:
    header = _QUERIES[action][0]
    lines = [header, *(tuple(_cell(v) for v in row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    for line in lines:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        print("  ".join([*cells, line[-1]]).rstrip(), file=out)
    noun = {"list": "stored job(s)", "instances": "instance(s)", "claims": "slot claim(s)"}
    print(f"{len(rows)} {noun[action]}", file=out)
