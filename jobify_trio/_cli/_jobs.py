"""``jobify-trio jobs``: list, delete and purge the rows of a SQLite job store.

Usage::

    python -m jobify_trio jobs [--db jobify.db] [--table jobify_jobs] [--app MODULE:APP] [list]
    python -m jobify_trio jobs --db jobify.db delete JOB_ID [JOB_ID ...]
    python -m jobify_trio jobs --db jobify.db --app myproject.jobs:app purge-unknown [--dry-run]
    python -m jobify_trio jobs --db jobify.db pause JOB_ID   (and resume JOB_ID)
    python -m jobify_trio jobs --db jobify.db history JOB_ID [--limit 20]

``list`` prints one line per stored job: id, task, trigger, next run (UTC), state and
attempt; with ``--app`` the rows whose task the app does not know are marked. ``history``
prints the stored run history of a job (see ``_jobs_history``). Deleting
rows while an app runs on the same file is safe (SQLite locks), but the running app
still holds the deleted jobs in memory until it restarts.

The command never changes the file's layout: ``list`` (and ``purge-unknown --dry-run``)
open it read-only; ``delete`` and ``purge-unknown`` open it read-write but delete rows
only; ``pause``/``resume`` send a command to the live app holding the job or update a
cron job's stored state (see ``_jobs_pause``). No file or table is created and the
journal mode is left as it is.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from .._storage._sqlite import SQLiteDatabase, row_to_job
from ..storage import StorageError, validate_table_name
from ._cron import CliError, report_error
from ._db import postgres_url
from ._jobs_history import print_history
from ._jobs_pause import pause_job

__all__ = ["jobs_main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobify-trio jobs", description="Inspect the jobs stored in a SQLite job store."
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
    commands.add_parser("list", help="list stored jobs (the default)")
    delete = commands.add_parser("delete", help="delete stored jobs by id")
    delete.add_argument("job_ids", nargs="+", metavar="JOB_ID")
    for verb in ("pause", "resume"):
        command = commands.add_parser(verb, help=f"{verb} a stored job (see the docs)")
        command.add_argument("job_id", metavar="JOB_ID")
    history = commands.add_parser("history", help="the stored run history of a job")
    history.add_argument("job_id", metavar="JOB_ID")
    history.add_argument("--limit", type=int, default=20, help="how many runs (default: 20)")
    purge = commands.add_parser("purge-unknown", help="delete rows of tasks the app lacks")
    purge.add_argument("--dry-run", action="store_true", help="only list what would go")
    return parser


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
    known = _known_tasks(args.app, Path(args.app_dir)) if args.app else None
    writes = args.action in ("delete", "pause", "resume") or (
        args.action == "purge-unknown" and not args.dry_run
    )
    db = SQLiteDatabase.open_existing(path, table, writable=writes)
    try:
        if args.action in ("pause", "resume"):
            return pause_job(db, args.job_id, paused=args.action == "pause", out=out)
        if args.action == "history":
            return print_history(db, args.job_id, limit=args.limit, out=out)
        if args.action == "delete":
            deleted = db.delete(args.job_ids)
            print(f"deleted {deleted} of {len(args.job_ids)} job(s)", file=out)
            return 0 if deleted == len(args.job_ids) else 1
        if args.action == "purge-unknown":
            if known is None:
                raise CliError("purge-unknown needs --app MODULE:APP to know the app's tasks")
            return _purge(db, known, dry_run=args.dry_run, out=out)
        _list(db, known, out)
        return 0
    finally:
        db.close()


def _known_tasks(spec: str, app_dir: Path) -> set[str]:
    from ._run import load_app

    app = load_app(spec, app_dir=app_dir)
    return set(app.tasks)


def _list(db: SQLiteDatabase, known: set[str] | None, out: TextIO) -> None:
    rows = db.rows()
    header = ("ID", "TASK", "TRIGGER", "NEXT RUN (UTC)", "STATE", "ATTEMPT")
    lines: list[tuple[str, ...]] = [header]
    for raw in rows:
        job_id, task, trigger, next_run, _args, attempt, state = (str(v) for v in raw[:7])
        try:
            row_to_job(raw)
        except (ValueError, TypeError) as exc:
            state = f"CORRUPT: {exc}"
        if known is not None and task not in known:
            state += " (unknown task)"
        lines.append((job_id, task, trigger, next_run, state, attempt))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    for line in lines:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        print("  ".join([*cells, line[-1]]).rstrip(), file=out)
    print(f"{len(rows)} stored job(s)", file=out)


def _purge(db: SQLiteDatabase, known: set[str], *, dry_run: bool, out: TextIO) -> int:
    doomed = [str(raw[0]) for raw in db.rows() if raw[1] not in known]
    for job_id in doomed:
        print(f"{'would delete' if dry_run else 'deleting'} {job_id}", file=out)
    if not dry_run and doomed:
        db.delete(doomed)
    print(f"{len(doomed)} row(s) of unknown tasks {'found' if dry_run else 'deleted'}", file=out)
    return 0
