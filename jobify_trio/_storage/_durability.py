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
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .._core._job import JobStatus
from ..serializers import Serializer
from ..storage import Delete, Storage, StoredJob, StoredState, Trigger, Upsert
from ._arguments import ArgumentCodec
from ._writer import StorageWriter

if TYPE_CHECKING:
    import trio

    from .._api._task import Task
    from .._core._job import Job
    from .._runtime._registry import JobRegistry
    from .._runtime._runtime import Runtime

__all__ = ["Durability", "attach_durability", "is_durable"]


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
        if not is_durable(task):
            return None
        return self.codec.encode(task.name, args, kwargs)

    async def commit(self, job: Job[Any], trigger: Trigger, arguments: bytes) -> None:
        """Store ``job`` and return once its row is committed (:class:`StorageError` if not)."""
        await self.writer.write(Upsert(job=self.row(job, trigger, arguments, attempt=1)))

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
        row = StoredJob._trusted(
            job_id, task_name, Trigger.CRON, next_run_at, arguments, 1, StoredState.SCHEDULED,
            cron_json,
        )  # fmt: skip
        await self.writer.write(Upsert(job=row))

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
        )

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
            row = self.row(job, Trigger.AT, arguments, attempt=attempt, state=StoredState.RETRYING)
            self.writer.write_nowait(Upsert(job=row))

    def job_ended(self, job: Job[Any]) -> None:
        """A job ended for good (not at shutdown): delete its row.

        A cron job that ended PERMANENTLY_FAILED is kept, marked as such, by
        :meth:`cron_updated` (its trigger calls it); it is not deleted here. Nor is the row
        of a job whose id a new durable job took over (a cron replacing a one-off job): the
        row is the new job's.
        """
        if not is_durable(job._task):
            return
        if job._cron is not None and job.status is JobStatus.PERMANENTLY_FAILED:
            return
        successor = self._registry.get(job.id)
        if successor is not None and successor is not job and is_durable(successor._task):
            return
        self.writer.write_nowait(Delete(job_id=job.id))

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
        row = self.row(
            job,
            Trigger.CRON,
            arguments,
            attempt=1,
            state=state,
            cron=cron_json,
            next_run_at=next_run_at,
        )
        self.writer.write_nowait(Upsert(job=row))

    def deleted(self, job_id: str) -> None:
        """Delete a row by id (not awaited)."""
        self.writer.write_nowait(Delete(job_id=job_id))

    def _encode_again(self, job: Job[Any]) -> bytes | None:
        try:
            return self.codec.encode(job._task.name, job._args, job._kwargs)
        except TypeError as exc:  # the arguments were mutated after scheduling
            warnings.warn(f"job {job.id!r}: row not updated: {exc}", RuntimeWarning, stacklevel=2)
            return None
