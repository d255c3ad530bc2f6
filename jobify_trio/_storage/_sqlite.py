"""The synchronous SQLite job table: schema, reads and writes, and error translation.

Used by :class:`~jobify_trio.storage.SQLiteStorage` from its one dedicated thread, and
directly by the operator CLI (``python -m jobify_trio jobs``). Every ``sqlite3`` error is
turned into :class:`~jobify_trio.storage.StorageError` here, at the boundary, with the file
name and a hint. A row's column values are encoded and decoded in ``_sqlite_rows.py``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..storage import (
    CorruptRow,
    Delete,
    LoadResult,
    StorageError,
    StoredJob,
    StoredRun,
    Upsert,
    Write,
    validate_table_name,
)
from ._columns import COLUMNS
from ._records import PushedRow
from ._sqlite_checks import check_existing, explain, is_busy, lenient_text, readable
from ._sqlite_params import FLAT, SMALL, few_besides_deletes, write_params, write_runs
from ._sqlite_rows import ROW_GROUPS, row_to_job, row_values, to_db_time
from ._sqlite_runs import RUN_SQL, load_runs, prune_runs
from ._sqlite_schema import create_or_migrate

if TYPE_CHECKING:
    from ._journal import JournalFold

__all__ = ["COLUMNS", "PAGE_SIZE", "SQLiteDatabase"]

_COLUMNS = COLUMNS
_V2_COLUMNS = COLUMNS.removesuffix(", paused")  # a version 2 table (read by the CLI as is)
_V1_COLUMNS = _V2_COLUMNS.removesuffix(", origin")  # a version 1 table
#: Parameters per multi-row statement, largest first: each size is one cached prepared
#: statement; 16,384 stays under SQLite's default limit of 32,766 variables.
_CHUNKS = (16384, 2048, 256, 32, 16, 4, 1)
#: The page size of a new file (SQLite's default is 4096; a file keeps the size it was
#: made with). A one-row commit writes two pages to the WAL (the row's table page and
#: its ``next_run_at`` index page), and in a loop of pushes half-size pages made a
#: commit and the WAL checkpoints cheaper: about 10 % more pushes per second, measured
#: A/B. A row of more than about 480 bytes spills into overflow pages (about 1,000
#: with 4096), which costs as many bytes written, in more pages.
PAGE_SIZE = 2048


class SQLiteDatabase:
    """One open connection to a job database file (not thread-safe: one thread uses it)."""

    def __init__(
        self,
        path: Path,
        table_name: str,
        *,
        busy_timeout: float = 5.0,
        existing: Literal["", "ro", "rw"] = "",
        inline: bool = False,
    ) -> None:
        """Open (creating if needed) the job table; with ``existing`` see :meth:`open_existing`;
        ``inline``: a second connection to a prepared file that never checkpoints the WAL."""
        self.path = path
        self.table = validate_table_name(table_name)
        self.meta = f"{self.table}_meta"
        target = f"{path.resolve().as_uri()}?mode={existing}" if existing else path
        with self._errors("open"):
            self._conn = sqlite3.connect(
                target, uri=bool(existing), timeout=busy_timeout, isolation_level=None,
                check_same_thread=False,
            )  # fmt: skip
        try:
            if inline:  # see _sqlite_inline.py
                with self._errors("open"):
                    self._conn.execute("PRAGMA synchronous=NORMAL")
                    self._conn.execute("PRAGMA wal_autocheckpoint=0")
            elif not existing:
                self._prepare()
            else:
                with self._errors("read"):
                    check_existing(self._conn, path, self.table, _V1_COLUMNS.split(", "))
                    self._read_columns = self._existing_columns()
        except BaseException:
            self._conn.close()
            raise
        self._sql: dict[tuple[str, int], str] = {}  # multi-row statements (_multi_row)
        #: The small path's statements go through this one cursor: ``Connection.execute``
        #: makes (and frees) a cursor per call, about a tenth of a one-row commit's Python.
        self._cursor = self._conn.cursor()
        self._one_row = {kind: self._multi_row(kind, 1) for kind in ROW_GROUPS}
        self._pushed = self._one_row["pushed"]
        limit = self._conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        self._chunks = (*(size for size in _CHUNKS if size <= limit), 1)

    @classmethod
    def open_existing(
        cls, path: Path, table_name: str, *, writable: bool = False
    ) -> SQLiteDatabase:
        """For the CLI: a ``file:`` URI, mode ``ro`` (``rw`` if ``writable``); creates nothing,
        keeps the journal mode; no job table is a :class:`StorageError` naming the tables."""
        return cls(path, table_name, existing="rw" if writable else "ro")

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StorageError(explain(self.path, action, exc)) from exc

    @contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; on any error ``ROLLBACK`` (errors translated)."""
        conn = self._conn
        with self._errors(action):
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _prepare(self) -> None:
        with self._errors("open"):
            self._conn.execute(f"PRAGMA page_size={PAGE_SIZE}")  # a new file only
            mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()
            self._conn.execute("PRAGMA synchronous=NORMAL")
            if mode is None or (str(mode[0]).lower() != "wal" and str(self.path) != ":memory:"):
                raise StorageError(
                    f"job database {str(self.path)!r}: cannot switch to WAL mode (got {mode!r})"
                )
        with self._transaction("open"):
            self._create_or_check()

    def _create_or_check(self) -> None:
        create_or_migrate(self._conn, self.path, self.table)

    def data_version(self) -> int:
        """``PRAGMA data_version``: changes when another connection commits."""
        with self._errors("read"):
            row = self._conn.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def checkpoint(self) -> None:
        """A passive WAL checkpoint (never waits for a lock)."""
        with self._errors("checkpoint"):
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def close(self) -> None:
        """Close the connection (WAL is checkpointed by SQLite on the last close)."""
        with self._errors("close"):
            self._conn.close()

    # -- reading ----------------------------------------------------------------------------

    _read_columns = COLUMNS

    def _existing_columns(self) -> str:
        """The columns to read from a table opened as it is (version 1 lacks ``origin``,
        version 2 ``paused``)."""
        present = {row[1] for row in self._conn.execute(f"PRAGMA table_info({self.table})")}
        if "paused" in present:
            return COLUMNS
        return _V2_COLUMNS if "origin" in present else _V1_COLUMNS

    def rows(self) -> list[tuple[Any, ...]]:
        """Every row as raw column values, ordered by next run."""
        return self._select(self._read_columns, "next_run_at, job_id")

    def _select(self, columns: str, order_by: str = "next_run_at") -> list[tuple[Any, ...]]:
        with self._errors("read"):
            return self._conn.execute(
                f"SELECT {columns} FROM {self.table} ORDER BY {order_by}"
            ).fetchall()

    def load(self) -> LoadResult:
        """Every row; rows whose columns do not parse come back as :class:`CorruptRow`."""
        jobs: list[StoredJob] = []
        corrupt: list[CorruptRow] = []
        for raw in self._load_rows():
            try:
                jobs.append(row_to_job(raw))
            except Exception as exc:  # any unreadable column: the row is kept and reported
                corrupt.append(
                    CorruptRow(job_id=readable(raw[0]), task_name=readable(raw[1]), reason=str(exc))
                )
        return LoadResult(jobs=jobs, corrupt=corrupt)

    def _load_rows(self) -> list[tuple[Any, ...]]:
        """Every column of every row.

        A text column holding bytes that are not UTF-8 makes ``sqlite3`` fail the whole
        fetch; the rows are then read again with such values left as ``bytes``, which
        :func:`row_to_job` rejects for that row only.
        """
        try:
            return self._select(self._read_columns)
        except StorageError as exc:
            if not isinstance(exc.__cause__, sqlite3.OperationalError) or "decode" not in str(
                exc.__cause__
            ):
                raise
        self._conn.text_factory = lenient_text
        try:
            return self._select(self._read_columns)
        finally:
            self._conn.text_factory = str

    # -- writing ----------------------------------------------------------------------------

    def apply(self, writes: Sequence[Write], fold: JournalFold | None = None) -> None:
        """Apply every write in order, in one transaction (after the push journal's
        ``fold``, if given: :meth:`apply_folding`).

        Consecutive upserts (and consecutive deletes) go out as multi-row statements of
        :data:`_CHUNKS` rows: one ``sqlite3_step`` per chunk instead of one per row. Each
        step releases and re-takes the GIL, and re-taking it while the event loop is busy
        can wait a whole switch interval, so fewer steps matter more than fewer rows.
        """
        if fold is not None:
            self.apply_folding(writes, fold)
        elif len(writes) <= SMALL or few_besides_deletes(writes):
            self._apply_small(writes)
        else:
            with self._transaction("write"):
                self._apply_runs(writes)

    def apply_folding(self, writes: Sequence[Write], fold: JournalFold) -> None:
        """:meth:`apply` of ``writes`` after the push journal's ``fold`` (its rows first,
        its sequence number last), in one transaction (see _journal.py)."""
        with self._transaction("write") as conn:
            if fold.rows:
                conn.executemany(self._pushed, fold.rows)
            self._apply_runs(writes)
            conn.execute(
                f"INSERT OR REPLACE INTO {self.meta} (key, value) VALUES ('journal_folded', ?)",
                (str(fold.upto),),
            )

    def _apply_runs(self, writes: Sequence[Write]) -> None:
        """The statements of :meth:`apply`'s general path (inside its transaction)."""
        for kind, values in write_runs(writes):
            if kind in FLAT:
                self._write_run(kind, values)
            elif kind == "prune":
                for (prune,) in values:
                    prune_runs(self._conn, self.table, prune)
            elif len(values) == 1:  # (executemany costs a cursor more)
                self._conn.execute(self._other_sql(kind), values[0])
            else:
                self._conn.executemany(self._other_sql(kind), values)

    def _apply_small(self, writes: Sequence[Write]) -> None:
        """A few writes besides deletes, one statement each (consecutive deletes: one
        multi-row statement, like the ended jobs a push loop deletes every 16 pushes), with
        less Python around them: one write is one statement in autocommit mode (its own
        transaction, which takes the write lock at once like ``BEGIN IMMEDIATE``), more are
        wrapped in ``BEGIN IMMEDIATE``."""
        conn, cursor = self._conn, self._cursor
        try:
            if len(writes) == 1:
                self._execute(cursor, writes[0])
                return
            cursor.execute("BEGIN IMMEDIATE")
            try:
                deleting: list[str] = []
                for write in writes:
                    if type(write) is Delete:
                        deleting.append(write.job_id)
                        continue
                    if deleting:
                        self._write_run("delete", deleting)
                        deleting = []
                    self._execute(cursor, write)
                if deleting:
                    self._write_run("delete", deleting)
                cursor.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StorageError(explain(self.path, "write", exc)) from exc

    def insert_pushed(self, row: PushedRow) -> bool:
        """Commit a push's row (the "pushed" kind of ``ROW_GROUPS``) in its own autocommit
        transaction: :meth:`apply` of its :class:`Upsert` alone, with less Python (no row
        object is built; ``StorageWriter.push_now``). False if another connection holds
        the write lock (nothing done)."""
        job_id, task_name, run_at, arguments = row
        try:
            self._cursor.execute(
                self._pushed, (job_id, task_name, to_db_time(run_at), bytearray(arguments))
            )
        except sqlite3.Error as exc:
            if is_busy(exc):
                return False
            raise StorageError(explain(self.path, "write", exc)) from exc
        return True

    def _execute(self, cursor: sqlite3.Cursor, write: Write) -> None:
        if isinstance(write, Upsert):
            kind, values = row_values(write.job)
            cursor.execute(self._one_row[kind], values)
        elif isinstance(write, Delete):
            cursor.execute(self._multi_row("delete", 1), (write.job_id,))
        else:
            kind, params = write_params(write)
            if kind == "prune":
                prune_runs(self._conn, self.table, params[0])
            else:
                cursor.execute(self._other_sql(kind), params)

    def _other_sql(self, kind: str) -> str:
        t = self.table
        if kind in RUN_SQL:
            return RUN_SQL[kind].format(t=t)
        if kind == "result":
            return (
                f"INSERT OR REPLACE INTO {t}_results (job_id, origin, status, value, error, "
                "finished_at) VALUES (?, ?, ?, ?, ?, ?)"
            )
        if kind == "release":
            return (
                f"UPDATE {t} SET lease_owner = NULL, lease_expires_at = NULL "
                "WHERE job_id = ? AND lease_owner = ?"
            )
        return (
            f"INSERT INTO {t}_commands (target, job_id, kind, payload, created_at) "
            "VALUES (?, ?, ?, ?, ?)"
        )

    def _write_run(self, kind: str, values: list[Any]) -> None:
        """A :data:`FLAT` run of ``write_runs`` in multi-row statements of :data:`_CHUNKS`."""
        width = FLAT[kind]
        conn, start, rows = self._cursor, 0, len(values) // width
        for chunk in self._chunks:
            size = max(1, chunk // width)
            while rows >= size:
                end = start + size * width
                conn.execute(self._multi_row(kind, size), values[start:end])
                start, rows = end, rows - size

    def _multi_row(self, kind: str, rows: int) -> str:
        """The statement writing ``rows`` rows of ``kind`` (cached)."""
        sql = self._sql.get((kind, rows))
        if sql is None:
            if kind == "delete":
                sql = f"DELETE FROM {self.table} WHERE job_id IN ({','.join('?' * rows)})"
            else:
                values = ",".join([ROW_GROUPS[kind][0]] * rows)
                sql = f"INSERT OR REPLACE INTO {self.table} ({_COLUMNS}) VALUES {values}"
            self._sql[(kind, rows)] = sql
        return sql

    def load_runs(self, *, since: datetime, per_job: int, job_id: str | None) -> list[StoredRun]:
        """The stored run history (see :func:`._sqlite_runs.load_runs`)."""
        with self._errors("read"):
            return load_runs(self._conn, self.table, since=since, per_job=per_job, job_id=job_id)

    def delete(self, job_ids: Sequence[str]) -> int:
        """Delete rows by id; the number deleted."""
        before = self._conn.total_changes
        with self._transaction("write"):
            self._write_run("delete", list(job_ids))
        return self._conn.total_changes - before

    def release(self, *, owner: str, job_ids: Sequence[str]) -> None:
        """Clear ``owner``'s leases on ``job_ids``."""
        with self._transaction("release") as conn:
            conn.executemany(
                f"UPDATE {self.table} SET lease_owner = NULL, lease_expires_at = NULL "
                "WHERE job_id = ? AND lease_owner = ?",
                [(job_id, owner) for job_id in job_ids],
            )
