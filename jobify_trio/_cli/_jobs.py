"""``jobify-trio jobs``: list, delete, purge, pause and resume the jobs of a job store.

Usage::

    python -m jobify_trio jobs [--db jobify.db] [--table jobify_jobs] [--app MODULE:APP] [list]
    python -m jobify_trio jobs --db jobify.db instances
    python -m jobify_trio jobs --db jobify.db claims [--limit 50]
    python -m jobify_trio jobs --db jobify.db delete JOB_ID [JOB_ID ...]
    python -m jobify_trio jobs --db jobify.db --app myproject.jobs:app purge-unknown [--dry-run]
    python -m jobify_trio jobs --db jobify.db pause JOB_ID   (and resume JOB_ID)
    python -m jobify_trio jobs --db jobify.db history JOB_ID [--limit 20]

``list`` prints one line per stored job: id, task, trigger, next run (UTC), state,
attempt, lease owner and expiry; with ``--app`` the rows whose task the app does not
know are marked. ``instances`` lists the app instances with the age of their last
heartbeat and whether they are live; ``claims`` the latest cron slot claims;
``history`` the stored run history of a job (see ``_jobs_history``). A
``postgresql://`` URL in ``--db`` (or ``$JOBIFY_DB``) is handled by ``_jobs_pg``.

The command never changes the file's layout: ``list``, ``instances``, ``claims`` (and
``purge-unknown --dry-run``) open it read-only; ``delete``, ``purge-unknown``, ``pause``
and ``resume`` open it read-write and change rows only, never yanking a job from a live
app that holds it (see ``_jobs_ops``). No file or table is created and the journal mode
is left as it is.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .._storage._journal import journaled_rows
from .._storage._sqlite import SQLiteDatabase
from .._storage._sqlite_rows import row_to_job
from ..storage import StorageError, validate_table_name
from ._cron import CliError, report_error, seconds_argument
from ._db import postgres_url
from ._jobs_history import print_history
from ._jobs_ops import delete_jobs, pause_job
from ._jobs_sqlite import SQLiteOps, claims, instances
from ._tables import (
    CLAIMS_HEADER,
    INSTANCES_HEADER,
    LIST_HEADER,
    instance_cells,
    print_table,
    rows_as_cells,
)  # fmt: skip

if TYPE_CHECKING:
    from ._jobs_ops import OpsStore

__all__ = ["add_actions", "jobs_main", "known_tasks", "purge"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobify-trio jobs",
        description="Inspect and change the jobs, instances and slot claims of a SQLite job store.",
    )
    parser.add_argument("--db", default="jobify.db", help="database file (default: jobify.db)")
    parser.add_argument("--table", default="jobify_jobs", help="table name (default: jobify_jobs)")
    parser.add_argument(
        "--app", help="MODULE:APP of the Jobify app, to tell known from unknown tasks"
    )
    parser.add_argument("--app-dir", default=".", help="directory put first on sys.path")
    parser.add_argument(
        "--traceback", action="store_true", help="show the full traceback of an --app import"
    )
    commands = parser.add_subparsers(dest="action", metavar="ACTION")
    add_actions(commands)
    return parser


def add_actions(commands: Any) -> None:
    """The actions both backends have."""
    commands.add_parser("list", help="list stored jobs with their leases (the default)")
    commands.add_parser("instances", help="list app instances, heartbeat age, live or dead")
    claims = commands.add_parser("claims", help="list the latest cron slot claims")
    claims.add_argument("--limit", type=int, default=50, help="how many (default: 50)")
    delete = commands.add_parser("delete", help="delete stored jobs by id")
    delete.add_argument("job_ids", nargs="+", metavar="JOB_ID")
    delete.add_argument(
        "--wait", type=seconds_argument, default=0.0, metavar="SECONDS",
        help="wait up to SECONDS until the live instances holding jobs applied their "
        "cancels (exit 1 if some did not); default: do not wait",
    )  # fmt: skip
    for verb in ("pause", "resume"):
        command = commands.add_parser(verb, help=f"{verb} a stored job (see the docs)")
        command.add_argument("job_id", metavar="JOB_ID")
    history = commands.add_parser("history", help="the stored run history of a job")
    history.add_argument("job_id", metavar="JOB_ID")
    history.add_argument("--limit", type=int, default=20, help="how many runs (default: 20)")
    purge = commands.add_parser("purge-unknown", help="delete rows of tasks the app lacks")
    purge.add_argument("--dry-run", action="store_true", help="only list what would go")


def jobs_main(argv: Sequence[str], *, out: TextIO | None = None) -> int:
    """Run ``jobify-trio jobs`` with ``argv``; returns the exit code (2 on bad input)."""
    stream = sys.stdout if out is None else out
    if postgres_url(argv) is not None:  # --db postgresql://... or $JOBIFY_DB
        from ._jobs_pg import pg_jobs_main

        return pg_jobs_main(argv, out=stream)
    args = _parser().parse_args(list(argv))
    try:
        return _dispatch(args, stream)
    except (CliError, StorageError) as exc:
        report_error("jobs", exc, traceback=args.traceback)
        return 2


def _dispatch(args: argparse.Namespace, out: TextIO) -> int:
    try:
        table = validate_table_name(args.table)
    except ValueError as exc:
        raise CliError(f"--table: {exc}") from None
    path = Path(args.db)
    if not path.is_file():
        raise CliError(f"no database file at {str(path)!r} (use --db PATH)")
    known = known_tasks(args.app, Path(args.app_dir)) if args.app else None
    writes = args.action in ("delete", "pause", "resume") or (
        args.action == "purge-unknown" and not args.dry_run
    )
    db = SQLiteDatabase.open_existing(path, table, writable=writes)
    now = datetime.now(UTC)
    try:
        if args.action in ("pause", "resume"):
            paused = args.action == "pause"
            return pause_job(SQLiteOps(db), args.job_id, paused=paused, now=now, out=out)
        if args.action == "history":
            return print_history(db, args.job_id, limit=args.limit, out=out)
        if args.action == "delete":
            return delete_jobs(SQLiteOps(db), args.job_ids, now, out, wait=args.wait)
        if args.action == "purge-unknown":
            if known is None:
                raise CliError("purge-unknown needs --app MODULE:APP to know the app's tasks")
            doomed = [str(raw[0]) for raw in db.rows() if raw[1] not in known]
            return purge(SQLiteOps(db), doomed, dry_run=args.dry_run, now=now, out=out)
        if args.action == "instances":
            found = instances(db)
            print_table(
                INSTANCES_HEADER, instance_cells(found, now), f"{len(found)} instance(s)", out
            )
        elif args.action == "claims":
            rows = claims(db, args.limit)
            print_table(CLAIMS_HEADER, rows_as_cells(rows), f"{len(rows)} slot claim(s)", out)
        else:
            _list(db, known, out)
        return 0
    finally:
        db.close()


def known_tasks(spec: str, app_dir: Path) -> set[str]:
    from ._run import load_app

    app = load_app(spec, app_dir=app_dir)
    return set(app.tasks)


def _list(db: SQLiteDatabase, known: set[str] | None, out: TextIO) -> None:
    journal = journaled_rows(db)  # first: a fold meanwhile shows its rows in the table
    rows = db.rows()
    lines: list[tuple[str, ...]] = []
    for raw in rows:
        job_id, task, trigger, next_run, _args, attempt, state = (str(v) for v in raw[:7])
        owner, until = (*raw[8:10], None, None)[:2]  # a version 1 file: no lease columns
        try:
            row_to_job(raw)
        except (ValueError, TypeError) as exc:
            state = f"CORRUPT: {exc}"
        if known is not None and task not in known:
            state += " (unknown task)"
        lines.append(
            (job_id, task, trigger, next_run, state, attempt, *rows_as_cells([(owner, until)])[0])
        )
    in_table = {line[0] for line in lines}
    journaled = [record for record in journal if record.job_id not in in_table]
    no_lease = rows_as_cells([(None, None)])[0]
    for record in journaled:
        state = "journaled"
        if known is not None and record.task_name not in known:
            state += " (unknown task)"
        at = record.run_at
        lines.append((record.job_id, record.task_name, "push", at, state, "1", *no_lease))
    note = f", {len(journaled)} of them journaled (not in the table yet)" if journaled else ""
    print_table(LIST_HEADER, lines, f"{len(lines)} stored job(s){note}", out)


def purge(store: OpsStore, doomed: list[str], *, dry_run: bool, now: datetime, out: TextIO) -> int:
    """Delete the rows ``doomed`` (of tasks the app lacks), or only list them."""
    if dry_run or not doomed:
        for job_id in doomed:
            print(f"would delete {job_id}", file=out)
        print(f"{len(doomed)} row(s) of unknown tasks found", file=out)
        return 0
    for job_id in doomed:
        print(f"deleting {job_id}", file=out)
    return delete_jobs(store, doomed, now, out)
