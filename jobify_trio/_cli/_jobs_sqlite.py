"""The SQLite side of ``jobify-trio jobs``: reads for ``list``, ``instances`` and
``claims``, and the transaction :mod:`._jobs_ops` changes the file in.

Reads run on a connection opened read-only; a version 1 file (before the sharing
protocol) has no instance, claim, result or command table: it lists none, and the
changes write none. Changes run in one ``BEGIN IMMEDIATE`` transaction each: an app
registering or claiming on the file meanwhile waits for it (and then sees it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from .._storage._sqlite import SQLiteDatabase
from .._storage._sqlite_rows import from_db_time, row_to_job, to_db_time
from ..storage import Command, StoredJob, StoredResult
from ._cron import CliError
from ._jobs_ops import decoded_row
from ._tables import Instance

__all__ = ["SQLiteOps", "claims", "instances"]


def _has_table(db: SQLiteDatabase, name: str) -> bool:
    with db._errors("read"):
        found = db._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()
    return found is not None


def instances(db: SQLiteDatabase) -> list[Instance]:
    """Every instance row, with the latest expiry of the leases it holds."""
    t = db.table
    if not _has_table(db, f"{t}_instances"):
        return []
    with db._errors("read"):
        raw = db._conn.execute(
            f"SELECT i.instance_id, i.host, i.pid, i.started_at, i.heartbeat_at, "
            f"(SELECT max(lease_expires_at) FROM {t} WHERE lease_owner = i.instance_id) "
            f"FROM {t}_instances AS i ORDER BY i.started_at, i.instance_id"
        ).fetchall()
    try:
        return [
            Instance(
                instance_id=str(r[0]),
                host=str(r[1]),
                pid=int(r[2]),
                started_at=from_db_time(r[3]),
                heartbeat_at=from_db_time(r[4]),
                lease_until=None if r[5] is None else from_db_time(r[5]),
            )
            for r in raw
        ]
    except (TypeError, ValueError) as exc:
        raise CliError(f"the instance table of {str(db.path)!r} is unreadable: {exc}") from None


def claims(db: SQLiteDatabase, limit: int) -> list[tuple[Any, ...]]:
    """The latest cron slot claims: job, slot, owner, claimed at."""
    if not _has_table(db, f"{db.table}_claims"):
        return []
    with db._errors("read"):
        return db._conn.execute(
            f"SELECT job_id, slot, owner, claimed_at FROM {db.table}_claims "
            "ORDER BY claimed_at DESC, job_id LIMIT ?",
            (max(1, limit),),
        ).fetchall()


class SQLiteOps:
    """:class:`~._jobs_ops.OpsStore` on a SQLite file opened read-write."""

    always_leased = False  # a lone app on a file that is not shared leases nothing

    def __init__(self, db: SQLiteDatabase) -> None:
        self.db = db

    @contextmanager
    def transaction(self) -> Iterator[_Tx]:
        with self.db._transaction("write"):
            yield _Tx(self.db)


class _Tx:
    def __init__(self, db: SQLiteDatabase) -> None:
        self.db, self.t, self.conn = db, db.table, db._conn
        self.shared = _has_table(db, f"{self.t}_commands")  # a version 2 file

    def row(self, job_id: str) -> StoredJob | None:
        columns = self.db._existing_columns()
        raw = self.conn.execute(
            f"SELECT {columns} FROM {self.t} WHERE job_id = ?", (job_id,)
        ).fetchone()
        return decoded_row(raw, job_id, row_to_job)

    def instances(self) -> list[Instance]:
        return instances(self.db)

    def delete(self, job_id: str) -> None:
        self.conn.execute(f"DELETE FROM {self.t} WHERE job_id = ?", (job_id,))

    def send(self, command: Command) -> None:
        if not self.shared:
            raise CliError(f"{str(self.db.path)!r} is a version 1 file: it has no command table")
        self.conn.execute(
            f"INSERT INTO {self.t}_commands (target, job_id, kind, payload, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (command.target, command.job_id, command.kind.value, command.payload,
             to_db_time(command.created_at)),
        )  # fmt: skip

    def put_result(self, result: StoredResult) -> None:
        if not self.shared:
            return
        self.conn.execute(
            f"INSERT OR REPLACE INTO {self.t}_results (job_id, origin, status, value, error, "
            "finished_at) VALUES (?, ?, ?, ?, ?, ?)",
            (result.job_id, result.origin, result.status.value, result.value, result.error,
             to_db_time(result.finished_at)),
        )  # fmt: skip

    def set_cron(self, row: StoredJob, cron: str, next_run_at: datetime) -> None:
        self.conn.execute(
            f"UPDATE {self.t} SET cron = ?, next_run_at = ? WHERE job_id = ?",
            (cron, to_db_time(next_run_at), row.job_id),
        )

    def set_paused(self, job_id: str, paused: bool) -> bool:
        if "paused" not in self.db._existing_columns():
            return False  # written before schema version 3: no paused column
        self.conn.execute(f"UPDATE {self.t} SET paused = ? WHERE job_id = ?", (int(paused), job_id))
        return True
