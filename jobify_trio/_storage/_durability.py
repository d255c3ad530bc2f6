"""What the runtime stores, and when: the glue between jobs and the storage writer.

One :class:`Durability` exists per running app that has storage. The runtime calls
:meth:`Durability.prepare` at the scheduling call (encoding errors surface there, before
anything is scheduled) and :meth:`Durability.commit` before it arms the job, so the call
returns only once the row is committed. Hooks registered on
:class:`~jobify_trio._outcomes.Outcomes` record pending retries and delete the rows of
jobs that ended; a cron trigger records its state with :meth:`cron_updated`.
"""

from __future__ import annotations

import warnings
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import trio

from .._core._job import JobStatus
from ..serializers import Serializer
from ..storage import (
    Delete,
    LoadResult,
    SetPaused,
    Storage,
    StoredJob,
    StoredState,
    Trigger,
    Upsert,
)
from ._arguments import ArgumentCodec
from ._records import delete_of, upsert_of
from ._writer import StorageWriter

if TYPE_CHECKING:
    from .._api._task import Task
    from .._core._job import Job
    from .._runtime._registry import JobRegistry
    from .._runtime._runtime import Runtime

__all__ = ["Durability", "attach_durability", "check_storable", "is_durable"]


def check_storable(task_name: str, job_id: str, run_at: datetime) -> None:
    """``ValueError`` naming the task and the value if a row with these cannot be stored:
    the id must be UTF-8 text (no lone surrogates), the time representable in UTC."""
    if not job_id.isascii():
        try:
            job_id.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"task {task_name!r}: job_id {job_id!r} cannot be stored: it is not valid "
                f"text ({exc.reason} at position {exc.start})"
            ) from None
    if run_at.tzinfo is not UTC:
        try:
            run_at.astimezone(UTC)
        except OverflowError:
            raise ValueError(
                f"task {task_name!r}: run time {run_at.isoformat()} cannot be stored: it is "
                "out of the range of dates in UTC"
            ) from None


def attach_durability(runtime: Runtime) -> Durability | None:
    """A :class:`Durability` wired into ``runtime``'s hooks, or None if the app has no storage."""
    app = runtime.app
    storage = app._storage
    if storage is None:
        return None
    durability = Durability(
        storage=storage,
        serializer=app.serializer,
        writer=StorageWriter(storage),
        registry=runtime.registry,
    )
    runtime.outcomes.job_ended_hooks.append(durability.job_ended)
    runtime.outcomes.retry_hooks.append(durability.retry_armed)
    return durability


def is_durable(task: Task[..., Any]) -> bool:
    """A task is durable in an app with storage unless it says ``durable=False``."""
    return task.options.durable is not False


class Durability:
    """Builds rows from jobs and hands them to the storage writer."""

    def __init__(
        self,
        *,
        storage: Storage,
        serializer: Serializer,
        writer: StorageWriter,
        registry: JobRegistry,
    ) -> None:
        self.storage = storage
        self.serializer = serializer
        self.codec = ArgumentCodec(serializer)
        self.writer = writer
        self._registry = registry
        self.stamp: Callable[[StoredJob], StoredJob] | None = None
        """Set by the sharing protocol: leases each row written to this instance."""
        self.load_rows: Callable[[], Awaitable[LoadResult]] = storage.load
        """What restore loads (the sharing protocol loads only the rows it may own)."""
        self.delete_ended_cron: Callable[[str], None] | None = None
        """Set by the sharing protocol: deletes an ended cron's row only if still ours."""
        self._cancelling: dict[str, int] = {}  # ids being cancelled -> rows written since
        self._deleted: Job[Any] | None = None  # the job cancel() is ending (row deleted)

    async def start(self, runtime: Runtime, nursery: trio.Nursery) -> None:
        """Start the storage writer, then restore the stored jobs into ``runtime``."""
        from ._restore import restore

        await nursery.start(self.writer.run)
        await restore(runtime, self)

    # -- at the scheduling call ----------------------------------------------------------

    def prepare(
        self, task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> bytes | None:
        """The encoded arguments of a durable task's call (None if the task is not durable).

        ``TypeError`` naming the task and the argument if a value cannot be stored.
        """
        if task.options.durable is False:  # (is_durable, without the call)
            return None
        return self.codec.encode(task.name, args, kwargs)

    async def commit(
        self, job: Job[Any], trigger: Trigger, arguments: bytes, *, new: bool = False
    ) -> bool:
        """Store ``job`` and return once its row is committed (:class:`StorageError` if not);
        True if that passed a schedule point (see ``StorageWriter.write``). ``new``: the
        job's id was generated by this call (``Upsert.new``).

        ``ValueError`` naming the task and the value if the row cannot be stored (it never
        joins a batch, so it cannot fail the other calls committed with it).
        """
        job_id, exec_at = job._id, job._exec_at  # (the properties are Python calls)
        check_storable(job._task.name, job_id, exec_at)
        if self._cancelling:
            self._rewritten(job_id)
        row = StoredJob._trusted(
            job_id, job._task.name, trigger, exec_at, arguments, paused=job._paused
        )
        return await self.writer.write(self._upsert(row, new=new))

    def pushed_now(self, job: Job[Any], arguments: bytes, fresh: bool = False) -> bool:
        """:meth:`commit` of a new push's row, done now and synchronously when
        ``StorageWriter.push_now`` can (no coroutine); False: call :meth:`commit`. A row
        :func:`check_storable` refuses fails there (or is left to :meth:`commit`).
        ``fresh``: the job's id was generated by this call."""
        job_id = job._id
        return (
            job_id.isascii()
            and not self._cancelling
            and not job._paused
            and self.stamp is None
            and self.writer.push_now((job_id, job._task.name, job._exec_at, arguments), fresh=fresh)
        )

    async def commit_cron(
        self,
        job_id: str,
        task_name: str,
        arguments: bytes,
        *,
        cron_json: str,
        next_run_at: datetime,
    ) -> None:
        """Store a cron job about to be armed (or re-armed); return once committed."""
        check_storable(task_name, job_id, next_run_at)
        self._rewritten(job_id)
        row = StoredJob._trusted(
            job_id, task_name, Trigger.CRON, next_run_at, arguments, 1, StoredState.SCHEDULED,
            cron_json,
        )  # fmt: skip
        await self.writer.write(self._upsert(row))

    def row(
        self,
        job: Job[Any],
        trigger: Trigger,
        arguments: bytes,
        *,
        attempt: int,
        state: StoredState = StoredState.SCHEDULED,
        cron: str | None = None,
        next_run_at: datetime | None = None,
    ) -> StoredJob:
        """The row that stands for ``job`` now (its values come from a live job: trusted)."""
        return StoredJob._trusted(
            job.id,
            job._task.name,
            trigger,
            job.exec_at if next_run_at is None else next_run_at,
            arguments,
            attempt,
            state,
            cron,
            paused=job._paused,
        )

    async def store_paused(self, job: Job[Any]) -> None:
        """Store a one-off job's paused state (``job._paused``); return once committed.

        A cron job's paused state travels in its cron state instead (``cron_updated``).
        """
        if self.storage.stores_paused and self._owns_row(job):
            await self.writer.write(SetPaused(job_id=job.id, paused=job._paused))
        else:  # not durable (or its id is another durable job's now): nothing stored
            await trio.lowlevel.checkpoint()

    # -- cancel ----------------------------------------------------------------------------

    async def cancel(self, job: Job[Any], cancel: Callable[[], None]) -> None:
        """Delete ``job``'s row, then ``cancel()`` it in memory; return once both are done.

        If the delete is not committed this raises :class:`StorageError` and the job is
        left as it was (still armed or running, still stored). A row written again while
        the delete was committed (a retry armed, a cron run recorded) is deleted again.
        Not durable, or its id taken over by another durable job: only ``cancel()``.
        """
        if self._owns_row(job):
            while True:
                self._cancelling[job.id] = 0
                try:
                    await self.writer.write(Delete(job_id=job.id))
                finally:
                    rewritten = self._cancelling.pop(job.id, 0)
                if job.is_done() or not rewritten:
                    break  # else it was written again meanwhile: delete it again
            self._deleted = job
        try:
            if not job.is_done():
                cancel()
        finally:
            self._deleted = None

    def _owns_row(self, job: Job[Any]) -> bool:
        if not is_durable(job._task):
            return False
        successor = self._registry.get(job.id)
        return successor is None or successor is job or not is_durable(successor._task)

    def _rewritten(self, job_id: str) -> None:
        """A row is written for ``job_id``: a cancel deleting it must delete it again."""
        if self._cancelling and job_id in self._cancelling:
            self._cancelling[job_id] += 1

    # -- hooks ---------------------------------------------------------------------------

    def retry_armed(self, job: Job[Any], attempt: int) -> None:
        """A one-off durable job waits for retry ``attempt`` at ``job.exec_at``: store that.

        A cron job's retries are not stored: after a crash its trigger's misfire policy
        decides about the missed run.
        """
        if job._cron is not None or not is_durable(job._task):
            return
        arguments = self._encode_again(job)
        if arguments is not None:
            self._rewritten(job.id)
            row = self.row(job, Trigger.AT, arguments, attempt=attempt, state=StoredState.RETRYING)
            self.writer.write_nowait(self._upsert(row))

    def job_ended(self, job: Job[Any]) -> None:
        """A job ended for good (not at shutdown): delete its row.

        A cron job that ended PERMANENTLY_FAILED is kept, marked as such, by
        :meth:`cron_updated` (its trigger calls it); it is not deleted here. Nor is the row
        of a job whose id a new durable job took over (a cron replacing a one-off job): the
        row is the new job's.
        """
        if job._task.options.durable is False or job is self._deleted:  # (is_durable)
            return  # not durable, or cancel() deleted it already
        if job._cron is not None and job._status is JobStatus.PERMANENTLY_FAILED:
            return
        successor = self._registry.get(job._id)
        if successor is not None and successor is not job and is_durable(successor._task):
            return
        if job._cron is not None and self.delete_ended_cron is not None:
            self.delete_ended_cron(job._id)  # another instance may have taken the cron over
            return
        self.writer.write_nowait(delete_of(job._id))

    def cron_updated(
        self,
        job: Job[Any],
        *,
        cron_json: str,
        next_run_at: datetime,
        permanently_failed: bool = False,
    ) -> None:
        """Store a cron job's state after a run (not awaited; committed in order)."""
        if not is_durable(job._task):
            return
        arguments = self._encode_again(job)
        if arguments is None:
            return
        state = StoredState.PERMANENTLY_FAILED if permanently_failed else StoredState.SCHEDULED
        self._rewritten(job.id)
        row = self.row(
            job,
            Trigger.CRON,
            arguments,
            attempt=1,
            state=state,
            cron=cron_json,
            next_run_at=next_run_at,
        )
        self.writer.write_nowait(self._upsert(row))

    def _upsert(self, row: StoredJob, *, new: bool = False) -> Upsert:
        stamp = self.stamp
        return upsert_of(row if stamp is None else stamp(row), new)

    def deleted(self, job_id: str) -> None:
        """Delete a row by id (not awaited)."""
        self.writer.write_nowait(Delete(job_id=job_id))

    def _encode_again(self, job: Job[Any]) -> bytes | None:
        try:
            return self.codec.encode(job._task.name, job._args, job._kwargs)
        except TypeError as exc:  # the arguments were mutated after scheduling
            warnings.warn(f"job {job.id!r}: row not updated: {exc}", RuntimeWarning, stacklevel=2)
            return None
