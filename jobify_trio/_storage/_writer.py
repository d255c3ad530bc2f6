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
inline connection). That batch takes the writes nobody waits for queued since (the row of
the job that just ended is deleted in the same transaction as the next row is inserted),
and the call skips two task switches: waking the writer and being woken by it. When the
writer wakes for writes nobody waits for only, it first yields once, so that such a caller
can take them along instead of the writer committing them on their own. Concurrent callers
(different tasks) keep going through the writer, so they share one commit.

A store whose :meth:`~jobify_trio.storage.Storage.apply` runs on the trio thread without a
thread hop (``Storage._commit_in_caller``: PostgreSQL's non-blocking write connection) lets
such a sequential caller await the commit of the open batch in its own task instead
(still shielded, one commit at a time under a lock). A store may also ask the writer to
wait up to ``Storage._unwatched_linger`` seconds, rather than one yield, for a watched
write to take the unwatched ones along (each commit costs PostgreSQL a round trip and a
WAL flush).

Commits are shielded from cancellation (a batch that started is finished). At shutdown
the app commits whatever is still queued with :meth:`flush` after the actors stopped.

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

from ..storage import PutResult, SendCommand, Storage, StorageError, Upsert, Write

__all__ = ["StorageWriter"]


class _Batch:
    __slots__ = ("done", "error", "errors", "unwatched", "writes")

    def __init__(self) -> None:
        self.writes: list[Write] = []
        self.unwatched: set[int] = set()  # ids of writes nobody waits for
        self.done = trio.Event()
        self.error: StorageError | None = None  # the whole batch failed
        self.errors: dict[int, StorageError] = {}  # writes that failed on their own, by id

    def error_of(self, write: Write) -> StorageError | None:
        return self.errors.get(id(write), self.error)


class StorageWriter:
    """Commits queued writes in batches; see the module docs."""

    def __init__(
        self, storage: Storage, *, retry_delay: float = 0.1, max_retry_delay: float = 30.0
    ) -> None:
        self._storage = storage
        self._open = _Batch()
        self._wakeup = trio.Event()
        self._watched = trio.Event()  # set by each watched write (see _linger)
        self._retrying: list[Write] = []  # failed unwatched writes, in order: go first
        self._retry_at = math.inf
        self._retry_delay = self._min_retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay
        self._committing = False  # a batch is being committed
        self._commit_lock = trio.Lock()  # one commit at a time
        self._commit_done = trio.Event()  # set when the current commit ends
        self._last_caller: object = None  # the task of the last watched write
        self.batches = 0  # commits made (for tests and benchmarks)
        self.direct = 0  # of which committed by the caller (for tests and benchmarks)

    def write_nowait(self, write: Write) -> None:
        """Queue ``write``; it is committed with the next batch (errors are warned about)."""
        batch = self._open
        batch.writes.append(write)
        batch.unwatched.add(id(write))
        self._wakeup.set()

    async def write(self, write: Write) -> None:
        """Queue ``write`` and return once it is committed; :class:`StorageError` if not."""
        batch = self._open
        batch.writes.append(write)
        sequential = self._sequential(batch)
        if sequential and self._committed_by_caller(batch):
            return
        if sequential and self._storage._commit_in_caller:
            self._watched.set()
            self.direct += 1
            try:
                await self._commit_open_batch()  # in this task: no hop to the writer and back
            except BaseException:  # cancelled before it began: the writer commits it
                self._wakeup.set()
                raise
        else:
            self._wakeup.set()
            self._watched.set()
            await batch.done.wait()
        error = batch.error_of(write)
        if error is not None:
            job_id = _job_id(write)
            what = f"job {job_id!r} was not saved" if job_id else "the storage write failed"
            raise StorageError(f"{what}: {error}") from error

    def _sequential(self, batch: _Batch) -> bool:
        """A sequential caller's write, the writer idle, nothing to retry (module docs)."""
        task = trio.lowlevel.current_task()
        caller, self._last_caller = self._last_caller, task
        return (
            caller is task
            and not self._committing
            and not self._retrying
            and len(batch.writes) - len(batch.unwatched) == 1
        )

    def _committed_by_caller(self, batch: _Batch) -> bool:
        """Commit ``batch`` now, synchronously, if the storage can (module docs)."""
        try:
            if not self._storage._apply_now(batch.writes):
                return False
        except Exception:  # the writer's path applies them again and reports the error
            return False
        self._open = _Batch()
        self.batches += 1
        self.direct += 1
        batch.done.set()
        return True

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Commit batches until cancelled."""
        task_status.started()
        while True:
            with trio.move_on_at(self._retry_at):
                await self._wakeup.wait()
            self._wakeup = trio.Event()
            await self._linger()  # a sequential caller may take them along
            await self._commit_open_batch()

    async def _linger(self) -> None:
        """While only writes nobody waits for are queued, yield once, or (a store with an
        ``_unwatched_linger``) wait that long for a watched write to commit them with.

        While a sequential caller commits in its own task, wait for it to finish: its next
        write may take along what was queued meanwhile."""
        linger = self._storage._unwatched_linger
        while True:
            while self._committing:
                await self._commit_done.wait()
            if not self._open.writes or len(self._open.unwatched) != len(self._open.writes):
                return
            if linger <= 0:
                await trio.lowlevel.checkpoint()
                return
            self._watched = trio.Event()
            with trio.move_on_after(linger):
                await self._watched.wait()
            if not self._watched.is_set():
                return  # nobody came: commit them now

    async def flush(self) -> None:
        """Commit everything queued so far (used at shutdown, after the actors stopped).

        Writes that still fail are tried once more, then given up with a warning."""
        with trio.CancelScope(shield=True):
            while self._open.writes:
                await self._commit_open_batch()
            if self._retrying:
                await self._commit_open_batch()
            given_up, self._retrying = self._retrying, []
            if given_up:
                warnings.warn(
                    f"{len(given_up)} job storage write(s) were given up at shutdown: the "
                    "rows of jobs that ended or were re-armed may be stale, so those jobs "
                    "may run again after a restart",
                    RuntimeWarning,
                    stacklevel=1,
                )

    async def _commit_open_batch(self) -> None:
        lock = self._commit_lock  # the writer, or a sequential caller (module docs)
        try:
            lock.acquire_nowait()  # no extra yield when free (the usual case)
        except trio.WouldBlock:
            await lock.acquire()
        try:
            await self._commit_locked()
        finally:
            lock.release()

    async def _commit_locked(self) -> None:
        if not self._open.writes and not self._retrying:
            return
        batch, self._open = self._open, _Batch()
        retried, self._retrying = self._retrying, []
        self._retry_at = math.inf
        if retried:  # before the newer writes: the order of writes is kept
            batch.writes[:0] = retried
            batch.unwatched.update(map(id, retried))
        if not batch.writes:
            batch.done.set()
            return
        self._committing = True
        self._commit_done = trio.Event()
        try:
            with trio.CancelScope(shield=True):
                await self._apply(batch, retried)
        except BaseException:  # KeyboardInterrupt...: the waiters must not see a commit
            batch.error = StorageError("the commit was interrupted")
            raise
        finally:
            self._committing = False
            self._commit_done.set()
            self.batches += 1
            batch.done.set()

    async def _apply(self, batch: _Batch, retried: list[Write]) -> None:
        try:
            await self._storage.apply(batch.writes)
        except Exception as exc:  # a broken backend must not stop the writer (module docs)
            systemic = isinstance(exc, StorageError)
            if systemic or len(batch.writes) == 1:
                batch.error = self._as_storage_error(exc)
                self._failed(batch, batch.writes, batch.error, retried, again=systemic)
            else:  # maybe one bad row: apply them one by one
                await self._apply_one_by_one(batch, retried)
        else:
            self._retry_delay = self._min_retry_delay

    async def _apply_one_by_one(self, batch: _Batch, retried: list[Write]) -> None:
        """Each write on its own. A :class:`StorageError` fails it and every later write
        (retrying an unwatched write after later ones were committed would reorder them)."""
        for index, write in enumerate(batch.writes):
            try:
                await self._storage.apply([write])
            except Exception as exc:
                error = self._as_storage_error(exc)
                if isinstance(exc, StorageError):
                    rest = batch.writes[index:]
                    batch.errors.update((id(later), error) for later in rest)
                    self._failed(batch, rest, error, retried, again=True)
                    return
                batch.errors[id(write)] = error
                self._failed(batch, [write], error, retried, again=False)

    def _failed(
        self,
        batch: _Batch,
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

    def _as_storage_error(self, exc: Exception) -> StorageError:
        if isinstance(exc, StorageError):
            return exc
        error = StorageError(f"{self._storage!r}.apply() failed: {type(exc).__name__}: {exc}")
        error.__cause__ = exc
        return error


def _job_id(write: Write) -> str:
    if isinstance(write, Upsert):
        return write.job.job_id
    if isinstance(write, PutResult):
        return write.result.job_id
    if isinstance(write, SendCommand):
        return write.command.job_id
    return write.job_id
