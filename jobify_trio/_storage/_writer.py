"""The storage writer actor: group commit of durable job rows.

Every write to storage goes through one :class:`StorageWriter`. Writers queue a
:class:`~jobify_trio.storage.Write` into the *open batch*; the actor takes the whole open
batch, commits it in one :meth:`~jobify_trio.storage.Storage.apply` call (one thread hop,
one transaction) and wakes everyone waiting on that batch. While a batch is being
committed, new writes gather in the next one, so under load each hop commits many
scheduling calls' rows at once, and each call still returns only after its own row is
committed (:meth:`write`). Writes that nobody waits for (deleting a finished job,
recording cron state or a pending retry) use :meth:`write_nowait`; they are committed in
order with the others.

**A sequential caller commits its own batch.** When the writer is idle, nothing waits to be
retried, the open batch holds no other caller's write and the previous watched write came
from the same task (a ``for`` loop of awaited pushes), :meth:`write` asks the storage to
commit the whole open batch at once on the trio thread (``Storage._apply_now``: SQLite's
inline connection). That batch takes the writes nobody waits for queued since, with one
exception: while they are only deletes of other jobs (ended jobs), fewer than
:data:`DELETES_PER_COMMIT`, the caller commits its own write alone and leaves them queued
(:func:`_leaves_deletes`); the next push that finds that many takes them all along, in one
multi-row ``DELETE``. Reordering them is harmless (different rows), and a delete of the
id being written is never left behind. The call skips two task switches: waking the
writer and being woken by it. A push's row committed that way alone is committed
without building it (:meth:`StorageWriter.push_now`, ``Storage._push_now``).

**Writes nobody waits for are left to such a caller.** Only the first of them wakes the
writer; finding nothing else in the open batch, the writer waits up to
:data:`DEFER_SECONDS` for a watched write (then it commits them together) and goes on
waiting as long as a sequential caller keeps committing in the meantime. It commits them
on their own once that time passes with no such commit, or at once when
:data:`DEFER_MAX_WRITES` of them are queued or a write is to be retried. So a loop of
pushes pays one commit per push, nearly always a single ``INSERT``, and wakes the writer
about once per :data:`DEFER_SECONDS`, not once per job. A crash in between loses only
such writes: the deleted jobs, which ended, run again (at least once).

**Waking many callers is spread over scheduler passes.** The callers of a committed batch
are woken :data:`WAKE_AT_ONCE` at a time, one scheduler pass each: a pass runs every task
woken in it before trio looks at timers and I/O again, and 64 producers resuming at once
(each returning from its push and preparing the next) would hold the event loop for a
couple of milliseconds. Concurrent callers (different tasks) keep going through the
writer, so they share one commit.

A store whose :meth:`~jobify_trio.storage.Storage.apply` runs on the trio thread without a
thread hop (``Storage._commit_in_caller``: PostgreSQL's non-blocking write connection) lets
such a sequential caller await the commit of the open batch in its own task instead
(still shielded, one commit at a time under a lock; the writer waits for such a commit
before it looks at the open batch). The deferral above serves it too, and so does the
exception for deletes: the caller commits its own row alone, in a batch of its own, and
the 16th push takes the queued deletes along (each commit costs PostgreSQL a round trip
and a WAL flush, and a ``DELETE`` riding along with every push cost the server about
15 % more CPU per push than one multi-row ``DELETE`` every 16). :meth:`StorageWriter.write`
tells its caller whether it passed a schedule point (always, except on the synchronous
path above): a push then adds none of its own, so a sequential caller yields only while
its statement is in flight and the work it readied (its job) overlaps the next push's
round trip.

Commits are shielded from cancellation (a batch that started is finished), except a
caller's own row committed alone in its own batch: nothing else rides along, and a push
cancelled while its row is in flight raises and withdraws its job (its row is deleted
whether or not it committed), just as when it is cancelled while the writer commits it.
That saves the cancel scope (about 10 µs a push: a ``trio.CancelScope`` costs more than
the rest of the writer's bookkeeping). At shutdown the app commits whatever is still
queued with :meth:`flush` after the actors stopped. A sequential caller's push whose row
the store journals (SQLite, unshared: ``_journal.py``) commits nothing: its row rides
with a later batch.

A failed commit never stops the writer. Whatever ``apply`` raised is kept on the batch as
a :class:`StorageError` (the original exception is its ``__cause__``) and every caller
waiting on the batch gets a fresh :class:`StorageError` raised from it, except that:

* **one bad row fails only its own call.** If ``apply`` raised something other than a
  :class:`StorageError` (a row the backend cannot encode, a date that overflows...), the
  writes of the batch are applied again one by one, in order: only the writes that fail
  on their own fail, and the others are committed;
* **an unwatched write is retried, not lost.** An unwatched write that failed with a
  :class:`StorageError` (the database is locked, the disk is full) is warned about once
  and retried, ahead of every later write so the order of writes is kept, after
  ``retry_delay`` seconds (doubling up to ``max_retry_delay``) or with the next batch,
  whichever comes first. An unwatched write that fails on its own with another error
  is warned about and dropped. At shutdown (:meth:`flush`) writes still failing are
  tried once more, then given up with a warning.
"""

from __future__ import annotations

import math
import warnings

import trio
from trio.lowlevel import current_task

from ..storage import Delete, Storage, StorageError, Write
from ._locks import QuickLock
from ._records import PushedRow
from ._writer_batch import (
    DEFER_MAX_WRITES,
    DEFER_SECONDS,
    DELETES_PER_COMMIT,
    WAKE_AT_ONCE,
    Batch,
    as_storage_error,
    job_id_of,
    leaves_deletes,
    only_unwatched,
    pushes_alone,
)

__all__ = [
    "DEFER_MAX_WRITES",
    "DEFER_SECONDS",
    "DELETES_PER_COMMIT",
    "WAKE_AT_ONCE",
    "StorageWriter",
]


class StorageWriter:
    """Commits queued writes in batches; see the module docs."""

    def __init__(
        self, storage: Storage, *, retry_delay: float = 0.1, max_retry_delay: float = 30.0
    ) -> None:
        self._storage = storage
        self._open = Batch()
        self._wakeup = trio.Event()
        self._retrying: list[Write] = []  # failed unwatched writes, in order: go first
        self._retry_at = math.inf
        self._retry_delay = self._min_retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay
        self._committing = False  # a batch is being committed (by the writer or a caller)
        self._deferring = False  # the writer leaves unwatched writes to a caller
        self._commit_lock = QuickLock()  # one commit at a time
        self._commit_done = trio.Event()  # set when the current commit ends
        self._last_caller: object = None  # the task of the last watched write
        self._pushes_now = type(storage)._push_now is not Storage._push_now
        self.batches = 0  # commits made (for tests and benchmarks)
        self.direct = 0  # of which committed by the caller (for tests and benchmarks)
        self.journaled = 0  # push rows journaled, not committed (for tests and benchmarks)

    def write_nowait(self, write: Write) -> None:
        """Queue ``write``; it is committed with a later batch (errors are warned about)."""
        batch = self._open
        batch.writes.append(write)
        batch.unwatched.add(id(write))
        if type(write) is Delete:
            batch.deleting.add(write.job_id)
        else:
            batch.mixed = True
        if (len(batch.writes) == 1 and not self._deferring) or len(
            batch.unwatched
        ) >= DEFER_MAX_WRITES:
            self._wakeup.set()  # else the writer knows already (module docs)

    def push_now(self, row: PushedRow, *, fresh: bool = False) -> bool:
        """Make a sequential caller's push durable now, without building its row, if the
        store can: a ``fresh`` row (its id generated) is journaled
        (``Storage._journal_push``); another is committed (``Storage._push_now``) if
        :meth:`write` would commit it alone, synchronously (:func:`pushes_alone`). Neither
        while a commit is in flight (see _journal.py). False: the caller then calls
        :meth:`write` (concurrent callers share its commits: module docs)."""
        if not self._pushes_now or self._committing or self._last_caller is not current_task():
            return False
        try:
            if fresh and self._storage._journal_push(row):
                self.journaled += 1
                return True
            if (
                self._retrying
                or not pushes_alone(self._open, row[0])
                or not self._storage._push_now(row)
            ):
                return False
        except Exception:  # the writer's path applies it again and reports the error
            return False
        self.batches += 1
        self.direct += 1
        return True

    async def write(self, write: Write) -> bool:
        """Queue ``write`` and return once it is committed; :class:`StorageError` if not.

        Returns True if the call passed a schedule point (it waited for a commit), False
        if it committed synchronously (``Storage._apply_now``): a caller that must be a
        checkpoint then yields itself (module docs)."""
        batch = self._open
        batch.writes.append(write)
        # A sequential caller's write, the writer idle, nothing to retry (module docs):
        task = current_task()
        caller, self._last_caller = self._last_caller, task
        sequential = (
            caller is task
            and not self._committing
            and not self._retrying
            and len(batch.writes) - len(batch.unwatched) == 1
        )
        if sequential and self._storage._commit_in_caller:
            batch = await self._commit_in_caller(batch, write)
        elif sequential and self._committed_by_caller(batch):
            return False
        else:
            self._wakeup.set()
            await batch.wait()
        error = batch.error_of(write)
        if error is not None:
            job_id = job_id_of(write)
            what = f"job {job_id!r} was not saved" if job_id else "the storage write failed"
            raise StorageError(f"{what}: {error}") from error
        return True

    async def _commit_in_caller(self, batch: Batch, write: Write) -> Batch:
        """Commit ``write`` in this task: no hop to the writer and back (module docs).
        It takes the open ``batch`` along, or only its own batch while that leaves
        deletes queued; the batch committed."""
        self.direct += 1
        own = None
        if leaves_deletes(batch):  # the deletes stay queued, for a later commit
            batch.writes.pop()
            own = batch = Batch()
            batch.writes.append(write)
        try:
            await self._commit_open_batch(own)
        except BaseException:  # cancelled before it began: the writer commits it
            if own is not None and not own.committed:
                self._open.writes.append(write)
            self._wakeup.set()
            raise
        return batch

    def _committed_by_caller(self, batch: Batch) -> bool:
        """Commit ``batch`` now, synchronously, if the storage can (module docs)."""
        alone = leaves_deletes(batch)
        try:
            if not self._storage._apply_now(batch.writes[-1:] if alone else batch.writes):
                return False
        except Exception:  # the writer's path applies them again and reports the error
            return False
        self.batches += 1
        self.direct += 1
        if alone:  # the deletes stay queued, for a later commit
            batch.writes.pop()
            return True
        self._open = Batch()
        batch.committed = True  # nobody else waits: only unwatched writes rode along
        return True

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Commit batches until cancelled."""
        task_status.started()
        while True:
            with trio.move_on_at(self._retry_at):
                await self._wakeup.wait()
            self._wakeup = trio.Event()
            await self._defer()
            batch = await self._commit_open_batch()
            if batch is not None:
                await batch.wake_rest()

    async def _defer(self) -> None:
        """Leave writes nobody waits for to a sequential caller while one keeps taking
        them along (module docs); return when they should be committed. While a caller
        commits in its own task, wait for it: its next write may take them along."""
        while True:
            while self._committing:
                await self._commit_done.wait()
            if self._retrying or not only_unwatched(self._open):
                return
            taken = self.direct
            self._deferring = True
            try:
                with trio.move_on_after(DEFER_SECONDS):
                    await self._wakeup.wait()
            finally:
                self._deferring = False
            self._wakeup = trio.Event()
            if self.direct == taken:
                return

    async def flush(self) -> None:
        """Commit everything queued so far (used at shutdown, after the actors stopped).

        Writes that still fail are tried once more, then given up with a warning."""
        with trio.CancelScope(shield=True):
            while self._open.writes:
                await self._wake_all(await self._commit_open_batch())
            if self._retrying:
                await self._wake_all(await self._commit_open_batch())
            given_up, self._retrying = self._retrying, []
            if given_up:
                warnings.warn(
                    f"{len(given_up)} job storage write(s) were given up at shutdown: the "
                    "rows of jobs that ended or were re-armed may be stale, so those jobs "
                    "may run again after a restart",
                    RuntimeWarning,
                    stacklevel=1,
                )

    async def _wake_all(self, batch: Batch | None) -> None:
        if batch is not None:
            await batch.wake_rest()

    async def _commit_open_batch(self, own: Batch | None = None) -> Batch | None:
        """Commit the open batch (and the writes to retry), or a caller's ``own`` batch;
        the batch, if one was made."""
        lock = self._commit_lock  # the writer, or a sequential caller (module docs)
        await lock.acquire()  # no extra yield when free (the usual case)
        try:
            return await self._commit_locked(own)
        finally:
            lock.release()

    async def _commit_locked(self, own: Batch | None) -> Batch | None:
        retried: list[Write] = []
        if own is not None:
            batch = own
        elif not self._open.writes and not self._retrying:
            return None
        else:
            batch, self._open = self._open, Batch()
            retried, self._retrying = self._retrying, []
            self._retry_at = math.inf
        if retried:  # before the newer writes: the order of writes is kept
            batch.writes[:0] = retried
            batch.unwatched.update(map(id, retried))
        if not batch.writes:
            batch.finish()
            return batch
        self._committing = True
        self._commit_done = trio.Event()
        try:
            if own is not None:  # only the caller's own write: no shield (module docs)
                await self._apply(batch, retried)
            else:
                with trio.CancelScope(shield=True):
                    await self._apply(batch, retried)
        except BaseException:  # KeyboardInterrupt...: the waiters must not see a commit
            batch.error = StorageError("the commit was interrupted")
            batch.lot.unpark_all()
            raise
        finally:
            self._committing = False
            self._commit_done.set()
            self.batches += 1
            batch.finish()
        return batch

    async def _apply(self, batch: Batch, retried: list[Write]) -> None:
        try:
            await self._storage.apply(batch.writes)
        except Exception as exc:  # a broken backend must not stop the writer (module docs)
            systemic = isinstance(exc, StorageError)
            if systemic or len(batch.writes) == 1:
                batch.error = as_storage_error(self._storage, exc)
                self._failed(batch, batch.writes, batch.error, retried, again=systemic)
            else:  # maybe one bad row: apply them one by one
                await self._apply_one_by_one(batch, retried)
        else:
            self._retry_delay = self._min_retry_delay

    async def _apply_one_by_one(self, batch: Batch, retried: list[Write]) -> None:
        """Each write on its own. A :class:`StorageError` fails it and every later write
        (retrying an unwatched write after later ones were committed would reorder them)."""
        for index, write in enumerate(batch.writes):
            try:
                await self._storage.apply([write])
            except Exception as exc:
                error = as_storage_error(self._storage, exc)
                if isinstance(exc, StorageError):
                    rest = batch.writes[index:]
                    batch.errors.update((id(later), error) for later in rest)
                    self._failed(batch, rest, error, retried, again=True)
                    return
                batch.errors[id(write)] = error
                self._failed(batch, [write], error, retried, again=False)

    def _failed(
        self,
        batch: Batch,
        writes: list[Write],
        error: StorageError,
        retried: list[Write],
        *,
        again: bool,
    ) -> None:
        """Warn about the unwatched ``writes`` that failed; queue them ``again`` if asked."""
        unwatched = [write for write in writes if id(write) in batch.unwatched]
        if not unwatched:
            return
        seen = set(map(id, retried))
        fresh = sum(1 for write in unwatched if id(write) not in seen)
        if again:
            self._retrying.extend(unwatched)
            self._retry_at = trio.current_time() + self._retry_delay
            self._retry_delay = min(self._retry_delay * 2, self._max_retry_delay)
        if fresh:
            what = "they are retried" if again else "they are dropped"
            warnings.warn(
                f"{fresh} job storage write(s) were not saved ({what}): {error}",
                RuntimeWarning,
                stacklevel=1,
            )
