"""The one thread that owns a SQLite connection, and how trio hands it work.

A thread-per-call pool (``trio.to_thread``) costs about twice as much per hop as a
dedicated thread fed by a :class:`queue.SimpleQueue` that wakes trio with
``TrioToken.run_sync_soon``; the connection also never changes threads. Work runs in
submission order (FIFO), so a close queued after writes runs after them.

A call that is cancelled while its work runs stops waiting, but the work itself finishes
(SQLite calls cannot be interrupted safely); opening and closing are shielded.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import trio

from ._sqlite import SQLiteDatabase

__all__ = ["SQLiteThread"]

T = TypeVar("T")
_Work = Callable[[], None]


class _Result:
    __slots__ = ("error", "value")

    def __init__(self) -> None:
        self.value: Any = None
        self.error: BaseException | None = None


class SQLiteThread:
    """Runs ``fn(db)`` calls on one thread that owns the connection."""

    def __init__(self, path: Path, table_name: str, *, busy_timeout: float) -> None:
        self._path = path
        self._table_name = table_name
        self._busy_timeout = busy_timeout
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._db: SQLiteDatabase | None = None
        self._thread = threading.Thread(
            target=self._main, name=f"jobify-sqlite:{path}", daemon=True
        )

    def _main(self) -> None:
        while True:
            work = self._queue.get()
            if work is None:
                return
            work()

    async def open(self) -> None:
        """Start the thread and open the database in it."""
        self._thread.start()
        try:
            with trio.CancelScope(shield=True):
                self._db = await self._run(self._open)
        except BaseException:
            self._queue.put(None)
            raise

    def _open(self) -> SQLiteDatabase:
        return SQLiteDatabase(self._path, self._table_name, busy_timeout=self._busy_timeout)

    async def close(self) -> None:
        """Close the connection after every queued call, and end the thread."""
        db = self._db
        try:
            if db is not None:
                with trio.CancelScope(shield=True):
                    await self._run(db.close)
        finally:
            self._db = None
            self._queue.put(None)

    async def call(self, fn: Callable[[SQLiteDatabase], T]) -> T:
        """``fn(db)`` on the connection's thread."""
        db = self._db
        assert db is not None, "SQLiteThread.call before open()"
        return await self._run(lambda: fn(db))

    async def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` on the connection's thread (for work that needs no connection)."""
        return await self._run(fn)

    async def _run(self, fn: Callable[[], T]) -> T:
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()
        result = _Result()

        def work() -> None:
            try:
                result.value = fn()
            except BaseException as exc:
                result.error = exc
            with contextlib.suppress(trio.RunFinishedError):  # nobody is waiting any more
                token.run_sync_soon(done.set)

        self._queue.put(work)
        await done.wait()
        if result.error is not None:
            raise result.error
        value: T = result.value
        return value
