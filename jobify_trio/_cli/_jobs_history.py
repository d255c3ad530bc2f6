"""``jobify-trio jobs history JOB_ID``: the stored run history of one job (SQLite).

Prints the latest runs of the job (``--limit``, 20 by default), newest first: attempt,
status, start and end (UTC), duration, whether a retry followed, the instance that ran it
(on a shared store) and the error text. The runs are those a
:class:`~jobify_trio.RunHistory` stored (durable jobs of an app whose ``RunHistory`` was
created with ``stored=True``, the default), within its retention period. Read-only; a
file written before schema version 3 has no run history (the command says so).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TextIO

from .._storage._sqlite import SQLiteDatabase
from .._storage._sqlite_rows import from_db_time
from ._cron import CliError

__all__ = ["HEADER", "print_history", "print_runs"]

HEADER = ("ATTEMPT", "STATUS", "STARTED (UTC)", "ENDED (UTC)", "SECONDS", "RETRIED", "INSTANCE",
          "ERROR")  # fmt: skip
_COLUMNS = "attempt, status, started_at, ended_at, retried, instance, error"


def print_history(db: SQLiteDatabase, job_id: str, *, limit: int, out: TextIO) -> int:
    """Print the stored runs of ``job_id``; the exit code."""
    with db._errors("read"):
        found = db._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (f"{db.table}_runs",)
        ).fetchone()
        if found is None:
            raise CliError(
                f"{str(db.path)!r} has no run history (table {db.table}_runs): it was written "
                "before schema version 3; an app of this release migrates it when it starts"
            )
        rows = db._conn.execute(
            f"SELECT {_COLUMNS} FROM {db.table}_runs WHERE job_id = ? ORDER BY run_id DESC LIMIT ?",
            (job_id, max(1, limit)),
        ).fetchall()
    parsed = [(*row[:2], _time(row[2]), _time(row[3]), *row[4:]) for row in rows]
    print_runs(parsed, job_id, out)
    return 0


def _time(text: str | None) -> datetime | None:
    return None if text is None else from_db_time(text)


def print_runs(rows: list[tuple[Any, ...]], job_id: str, out: TextIO) -> None:
    """Print runs given as (attempt, status, started, ended, retried, instance, error)."""
    lines = [HEADER]
    for attempt, status, started, ended, retried, instance, error in rows:
        seconds = (
            "-" if started is None or ended is None else f"{(ended - started).total_seconds():.3f}"
        )
        lines.append((
            str(attempt), str(status), _cell(started), _cell(ended), seconds,
            "yes" if retried else "no", instance or "-", error or "",
        ))  # fmt: skip
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER) - 1)]
    for line in lines:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        print("  ".join([*cells, line[-1]]).rstrip(), file=out)
    print(f"{len(rows)} stored run(s) of job {job_id!r}", file=out)


def _cell(moment: datetime | None) -> str:
    return "-" if moment is None else moment.isoformat(timespec="milliseconds")
