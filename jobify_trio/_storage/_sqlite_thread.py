"""The one thread that owns a SQLite connection, and how trio hands it work.

A thread-per-call pool (``trio.to_thread``) costs about twice as much per hop as a
dedicated thread fed by a :class:`queue.SimpleQueue` that wakes trio with
``TrioToken.run_sync_soon``; the connection also never changes threads. Work runs in
submission order (FIFO), so a close queued after writes runs after them.

A call that is cancelled while its work runs stops waiting, but the work itself finishes
(SQLite calls cannot be interrupted safely); opening and closing are shielded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import trio

from ._sqlite import SQLiteDatabase
from ._thread import WorkerThread

__all__ = ["SQLiteThread"]

T = TypeVar("T")


class SQLiteThread:
    """Runs ``fn(db)`` calls on one thread that owns the connection."""

    def __init__(self, path: Path, table_name: str, *, busy_timeout: float) -> None:
        self._path = path
        self._table_name = table_name
        self._busy_timeout = busy_timeout
        self._db: SQLiteDatabase | None = None
        self._worker = WorkerThread(f"jobify-sqlite:{path}", start=False)

    async def open(self) -> None:
        """Start the thread and open the database in it."""
        self._worker.start()
        try:
            with trio.CancelScope(shield=True):
                self._db = await self._worker.call(self._open)
        except BaseException:
            self._worker.stop()
            raise

    def _open(self) -> SQLiteDatabase:
        return SQLiteDatabase(self._path, self._table_name, busy_timeout=self._busy_timeout)

    async def close(self) -> None:
        """Close the connection after every queued call, and end the thread."""
        db = self._db
        try:
            if db is not None:
                with trio.CancelScope(shield=True):
                    await self._worker.call(db.close)
        finally:
            self._db = None
            self._worker.stop()

    async def call(self, fn: Callable[[SQLiteDatabase], T], *, urgent: bool = False) -> T:
        """``fn(db)`` on the connection's thread (``urgent``: ahead of queued calls)."""
        db = self._db
        assert db is not None, "SQLiteThread.call before open()"
        return await self._worker.call(lambda: fn(db), urgent=urgent)

    async def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` on the connection's thread (for work that needs no connection)."""
        return await self._worker.call(fn)
