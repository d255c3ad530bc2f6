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

Commits are shielded from cancellation (a batch that started is finished). At shutdown
the app commits whatever is still queued with :meth:`flush` after the actors stopped.

A failed commit never stops the writer: whatever ``apply`` raised is kept on the batch as
a :class:`StorageError` (the original exception is its ``__cause__``), every caller waiting
on the batch gets a fresh :class:`StorageError` raised from it, and unwatched writes are
warned about.
"""

from __future__ import annotations

import warnings

import trio

from ..storage import PutResult, SendCommand, Storage, StorageError, Upsert, Write

__all__ = ["StorageWriter"]


class _Batch:
    __slots__ = ("done", "error", "unwatched", "writes")

    def __init__(self) -> None:
        self.writes: list[Write] = []
        self.unwatched = 0  # writes nobody waits for: their errors can only be warned about
        self.done = trio.Event()
        self.error: StorageError | None = None


class StorageWriter:
    """Commits queued writes in batches; see the module docs."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._open = _Batch()
        self._wakeup = trio.Event()
        self.batches = 0  # commits made (for tests and benchmarks)

    def write_nowait(self, write: Write) -> None:
        """Queue ``write``; it is committed with the next batch (errors are warned about)."""
        batch = self._open
        batch.writes.append(write)
        batch.unwatched += 1
        self._wakeup.set()

    async def write(self, write: Write) -> None:
        """Queue ``write`` and return once it is committed; :class:`StorageError` if not."""
        batch = self._open
        batch.writes.append(write)
        self._wakeup.set()
        await batch.done.wait()
        if batch.error is not None:
            job_id = _job_id(write)
            raise StorageError(f"job {job_id!r} was not saved: {batch.error}") from batch.error

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Commit batches until cancelled."""
        task_status.started()
        while True:
            await self._wakeup.wait()
            self._wakeup = trio.Event()
            await self._commit_open_batch()

    async def flush(self) -> None:
        """Commit everything queued so far (used at shutdown, after the actors stopped)."""
        with trio.CancelScope(shield=True):
            while self._open.writes:
                await self._commit_open_batch()

    async def _commit_open_batch(self) -> None:
        batch, self._open = self._open, _Batch()
        if not batch.writes:
            batch.done.set()
            return
        try:
            with trio.CancelScope(shield=True):
                await self._storage.apply(batch.writes)
        except Exception as exc:  # a broken backend must not stop the writer (module docs)
            batch.error = self._as_storage_error(exc)
            if batch.unwatched:
                warnings.warn(
                    f"{batch.unwatched} job storage write(s) were not saved: {batch.error}",
                    RuntimeWarning,
                    stacklevel=1,
                )
        except BaseException:  # KeyboardInterrupt...: the waiters must not see a commit
            batch.error = StorageError("the commit was interrupted")
            raise
        finally:
            self.batches += 1
            batch.done.set()

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
