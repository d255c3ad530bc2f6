"""Short commits made inline, on the trio thread, by a second SQLite connection.

A round trip to the connection's thread costs several times a WAL + ``synchronous=NORMAL``
commit, and a sequential loop of awaited durable pushes pays it on every call (group
commit cannot help: one call waits at a time). So a small batch of writes is committed
right on the trio thread by a second connection that:

* never waits for a lock: its busy timeout is 0, so ``BEGIN IMMEDIATE`` fails at once
  with ``SQLITE_BUSY`` if another connection (the thread's, or another process sharing
  the file) holds the write lock; the batch is then committed by the thread's connection,
  which waits up to ``busy_timeout``, without blocking the event loop;
* never checkpoints the WAL (``wal_autocheckpoint=0``): a checkpoint writes and syncs the
  database file. After :data:`CHECKPOINT_EVERY` inline commits, the next batch goes to
  the thread, which makes a passive checkpoint first and then commits the batch. The
  writer waits for both, so no commit of this process runs during the checkpoint: it
  catches up with the whole WAL (a checkpoint running beside a stream of commits never
  catches up, and the WAL would grow without bound), and the batch's commit starts the
  WAL file over. Starting it over syncs the new WAL header: done by the thread's commit,
  that ``fsync`` no longer stalls the event loop in the next inline commit;
* commits at most :data:`INLINE_MAX_WRITES` writes: a bigger batch goes to the thread, so
  an inline commit stays short and bounded (tens of microseconds, plus a few per row).

The commit is the same transaction either way, so the guarantee does not change: a
scheduling call returns only after its row is committed. A file named ``:memory:`` has no
second connection (it would be another database): every commit goes to the thread.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

from ..storage import StorageError, Write
from ._journal import JournalFold
from ._records import PushedRow
from ._sqlite import SQLiteDatabase
from ._sqlite_checks import is_busy
from ._sqlite_thread import SQLiteThread

__all__ = ["CHECKPOINT_EVERY", "INLINE_MAX_WRITES", "InlineCommits"]

#: The largest batch committed on the trio thread.
INLINE_MAX_WRITES = 32
#: Inline commits after which a batch goes to the thread, with a checkpoint. A checkpoint
#: costs a few milliseconds whatever its size (three ``fsync`` calls and a thread round
#: trip) plus a few µs per commit. The event loop idles while it waits for one, and a
#: timer that falls due during that wait wakes up to 1 ms late (``epoll`` rounds its
#: timeout up to whole milliseconds): with a checkpoint every 768 commits (about 30 a
#: second in a push loop) that made a 1 ms canary's p99 lag 0.7-0.95 ms; every 2,048
#: commits, 0.24-0.63 ms, at the same push rate (measured A/B, 20,000 pushes x 5, twice).
#: The WAL then grows to about 8.5 MB in a push loop (SQLite's own default is 1,000
#: pages, 4 MB with its default page size); every 4,096 commits, one round's longest
#: lag was 16 ms.
CHECKPOINT_EVERY = 2048


class InlineCommits:
    """The trio thread's own connection; see the module docs."""

    def __init__(self, db: SQLiteDatabase, thread: SQLiteThread) -> None:
        self._db = db
        self._thread = thread
        self._since_checkpoint = 0
        self.commits = 0  # committed inline (for tests and benchmarks)
        self.busy = 0  # handed to the thread because the write lock was taken

    @classmethod
    async def open(cls, thread: SQLiteThread, path: Path, table: str) -> InlineCommits | None:
        """The second connection, opened on the thread (None for ``:memory:``)."""
        if str(path) == ":memory:":
            return None
        db = await thread.run(lambda: SQLiteDatabase(path, table, busy_timeout=0.0, inline=True))
        return cls(db, thread)

    async def apply(self, writes: Sequence[Write], fold: JournalFold | None = None) -> None:
        """Commit ``writes`` (after the push journal's ``fold``) inline if :meth:`try_apply`
        can, else on the thread (then with a checkpoint after the commit, if one is due)."""
        if self.try_apply(writes, fold):
            return
        checkpoint = self._since_checkpoint >= CHECKPOINT_EVERY

        def work(db: SQLiteDatabase) -> None:
            if checkpoint:  # the rows are committed whatever the checkpoint does
                with contextlib.suppress(StorageError):
                    db.checkpoint()
            db.apply(writes, fold)  # after it: this commit starts the WAL over (module docs)

        await self._thread.call(work)
        if checkpoint:
            self._since_checkpoint = 0

    def try_apply(self, writes: Sequence[Write], fold: JournalFold | None = None) -> bool:
        """Commit ``writes`` (after the push journal's ``fold``) now; False if they must go
        to the thread instead (too many writes, a checkpoint is due, or the write lock is
        taken). Other errors are raised as the thread's are."""
        size = len(writes) if fold is None else len(writes) + len(fold.rows)
        if size > INLINE_MAX_WRITES or self._since_checkpoint >= CHECKPOINT_EVERY:
            return False
        try:
            self._db.apply(writes, fold)
        except StorageError as exc:
            if not is_busy(exc.__cause__):
                raise
            self.busy += 1
            return False
        self.commits += 1
        self._since_checkpoint += 1
        return True

    def try_push(self, row: PushedRow) -> bool:
        """:meth:`try_apply` of one push's row, without building it (``Storage._push_now``)."""
        if self._since_checkpoint >= CHECKPOINT_EVERY:
            return False
        if not self._db.insert_pushed(row):  # the write lock is taken
            self.busy += 1
            return False
        self.commits += 1
        self._since_checkpoint += 1
        return True

    async def close(self) -> None:
        """Close the connection (on the thread, after the work queued there)."""
        await self._thread.run(self._db.close)
