"""The batch of writes the storage writer commits at once (see ``_writer``)."""

from __future__ import annotations

import trio

from ..storage import StorageError, Write
from ._records import PruneRuns, PutResult, RecordRun, SendCommand, Upsert

__all__ = [
    "DEFER_MAX_WRITES",
    "DEFER_SECONDS",
    "DELETES_PER_COMMIT",
    "WAKE_AT_ONCE",
    "Batch",
    "job_id_of",
    "as_storage_error",
    "deletes_stay",
    "leaves_deletes",
    "only_unwatched",
    "pushes_alone",
]

#: How long the writer leaves writes nobody waits for to a sequential caller.
DEFER_SECONDS = 0.002
#: ... unless this many of them are queued.
DEFER_MAX_WRITES = 32
#: A sequential caller takes queued deletes of ended jobs along once this many are queued.
DELETES_PER_COMMIT = 16
#: Callers woken per scheduler pass when their batch is committed.
WAKE_AT_ONCE = 4


class Batch:
    __slots__ = ("committed", "deleting", "error", "errors", "lot", "mixed", "unwatched", "writes")

    def __init__(self) -> None:
        self.writes: list[Write] = []
        self.unwatched: set[int] = set()  # ids of writes nobody waits for
        self.deleting: set[str] = set()  # job ids of the unwatched deletes
        self.mixed = False  # an unwatched write is not a delete
        self.committed = False  # done (committed or failed): waiters may go on
        self.lot = trio.lowlevel.ParkingLot()  # the callers waiting for this batch
        self.error: StorageError | None = None  # the whole batch failed
        self.errors: dict[int, StorageError] = {}  # writes that failed on their own, by id

    def error_of(self, write: Write) -> StorageError | None:
        return self.errors.get(id(write), self.error)

    async def wait(self) -> None:
        if self.committed:
            await trio.lowlevel.checkpoint()
        else:
            await self.lot.park()

    async def wake_rest(self) -> None:
        """Wake the rest of the callers, :data:`WAKE_AT_ONCE` per scheduler pass (all at
        once if the writer is cancelled meanwhile: nobody is left waiting)."""
        try:
            while self.lot:
                await trio.lowlevel.checkpoint()
                self.lot.unpark(count=WAKE_AT_ONCE)
        finally:
            self.lot.unpark_all()

    def finish(self) -> None:
        """Mark done, wake the first :data:`WAKE_AT_ONCE` callers (:meth:`wake_rest`)."""
        self.committed = True
        if self.lot:  # (a caller's own batch has nobody parked)
            self.lot.unpark(count=WAKE_AT_ONCE)


def leaves_deletes(batch: Batch) -> bool:
    """Whether a sequential caller commits its row (the last write of ``batch``) without
    the unwatched writes before it: only deletes of other jobs, fewer than
    :data:`DELETES_PER_COMMIT` (module docs)."""
    write = batch.writes[-1]
    return isinstance(write, Upsert) and deletes_stay(batch, write.job.job_id)


def deletes_stay(batch: Batch, job_id: str) -> bool:
    """Whether the unwatched writes of ``batch`` are only deletes of other jobs than
    ``job_id``, fewer than :data:`DELETES_PER_COMMIT`: a sequential caller writing
    ``job_id`` leaves them queued (the one rule of :func:`leaves_deletes` and
    :func:`pushes_alone`)."""
    return (
        not batch.mixed
        and 0 < len(batch.unwatched) < DELETES_PER_COMMIT
        and job_id not in batch.deleting
    )


def only_unwatched(batch: Batch) -> bool:
    """Whether ``batch`` holds only writes nobody waits for, fewer than
    :data:`DEFER_MAX_WRITES` (the writer may leave them to a sequential caller)."""
    return 0 < len(batch.writes) == len(batch.unwatched) < DEFER_MAX_WRITES


def pushes_alone(batch: Batch, job_id: str) -> bool:
    """Whether a push of ``job_id`` would commit its row alone (``StorageWriter.push_now``):
    the open ``batch`` is empty, or holds only deletes :func:`leaves_deletes` leaves queued."""
    unwatched = len(batch.unwatched)
    return len(batch.writes) == unwatched and (not unwatched or deletes_stay(batch, job_id))


def as_storage_error(storage: object, exc: Exception) -> StorageError:
    """``exc`` as the :class:`StorageError` a failed ``apply`` of ``storage`` raises."""
    if isinstance(exc, StorageError):
        return exc
    error = StorageError(f"{storage!r}.apply() failed: {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


def job_id_of(write: Write) -> str:
    if isinstance(write, Upsert):
        return write.job.job_id
    if isinstance(write, PutResult):
        return write.result.job_id
    if isinstance(write, SendCommand):
        return write.command.job_id
    if isinstance(write, RecordRun):
        return write.run.job_id
    if isinstance(write, PruneRuns):
        return ""
    return write.job_id
