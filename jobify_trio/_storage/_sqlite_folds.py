"""The commits of an unshared SQLite store that keeps a push journal (see _journal.py).

Every commit of such a store folds the journal: the journaled rows go first, in the same
transaction, and the journal is emptied once it is committed. Folds are made one at a
time under a lock, and while one is in flight (on the store's thread) no push is
journaled: a fold's snapshot of the journal is then all of it when it is emptied. The
storage writer makes one commit at a time anyway; the lock also orders the commits of a
direct :meth:`~jobify_trio.storage.Storage.apply` (``add``, ``update``, ``delete``) made
meanwhile. A fold that began is finished (shielded), so that the journal's view of what
the table holds never goes stale.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import trio

from ..storage import StorageError, Write
from ._journal import PushJournal
from ._locks import QuickLock
from ._records import PushedRow
from ._sqlite_inline import InlineCommits
from ._sqlite_thread import SQLiteThread

__all__ = ["JournalFolds"]


class JournalFolds:
    """A store's journal, and its commits (module docs)."""

    def __init__(self, journal: PushJournal, inline: InlineCommits, thread: SQLiteThread) -> None:
        self.journal = journal
        self._inline = inline
        self._thread = thread
        self._lock = QuickLock()

    def push(self, row: PushedRow) -> bool:
        """Journal a push's row; False if a commit is in flight or the journal is full."""
        return not self._lock.locked() and self.journal.append(row)

    async def apply(self, writes: Sequence[Write]) -> None:
        """Commit ``writes`` after the journaled rows (inline if it can, else on the
        thread), then empty the journal."""
        async with self._lock:
            kept, fold = self.journal.fold(writes)
            if fold is None:
                await self._inline.apply(kept)
                return
            with trio.CancelScope(shield=True):
                if kept or fold.rows:
                    await self._inline.apply(kept, fold)
                self.journal.folded(fold)

    def apply_now(self, writes: Sequence[Write]) -> bool:
        """:meth:`apply` now, inline; False (nothing done) if it must wait or go to the
        thread."""
        if self._lock.locked():
            return False
        kept, fold = self.journal.fold(writes)
        if fold is None:
            return self._inline.try_apply(kept)
        if (kept or fold.rows) and not self._inline.try_apply(kept, fold):
            return False
        self.journal.folded(fold)
        return True

    async def close(self, owner: object) -> None:
        """Fold the rows still journaled (jobs still running) and release the journal; if
        that fails they stay journaled, and the next startup folds them."""
        try:
            async with self._lock:
                _, fold = self.journal.fold(())
                if fold is not None:
                    with trio.CancelScope(shield=True):
                        await self._thread.call(lambda db: db.apply_folding((), fold))
                        self.journal.folded(fold)
        except StorageError as exc:
            warnings.warn(
                f"{owner!r} could not fold its push journal at shutdown ({exc}); its rows "
                f"stay in {self.journal.path} and are restored at the next start",
                RuntimeWarning,
                stacklevel=1,
            )
        finally:
            self.journal.close()
