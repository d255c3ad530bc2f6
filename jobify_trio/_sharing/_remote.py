"""Handles of jobs that run on another instance, and results across instances.

A handle *follows* its job remotely when the job is not run here: released because the
executor was full, taken away by another instance, found from its stored row
(:meth:`Remote.lookup`) or replaced on its owner. The results poller asks the store for
the results of followed jobs every poll interval (one batched query) and ends the
handles as the job ended where it ran. The other side: when a job ends here and its
result must travel (another instance scheduled it, or other instances are live and may
follow it), :meth:`Remote.job_ended` stores it with the same batch as the row's delete.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

import trio

from .._core._job import Job, JobStatus
from .._storage._durability import is_durable
from ..exceptions import (
    ApplicationStateError,
    DuplicateJobError,
    JobTimeoutError,
    RemoteJobError,
)
from ..serializers import SerializationError
from ..storage import (
    Command,
    CommandKind,
    PutResult,
    Release,
    ResultStatus,
    SendCommand,
    StoredJob,
    StoredResult,
    Trigger,
)
from ._commands import encode_replace
from ._decide import FINAL_TO_RESULT, describe_error

if TYPE_CHECKING:
    from .._api._task import Task
    from ._session import Sharing

__all__ = ["Remote"]

log = logging.getLogger("jobify_trio.sharing")

MISSES_BEFORE_UNKNOWN = 2
"""Polls that find neither the row nor a result before a followed job ends as unknown."""


class Remote:
    """Followed handles and the results protocol of one instance (see the module docs)."""

    def __init__(self, sharing: Sharing) -> None:
        self._sharing = sharing
        self.followed: dict[str, Job[Any]] = {}
        self._origin: dict[str, str] = {}
        self._misses: dict[str, int] = {}
        self._encoded: dict[str, bytes] = {}
        self.cancels: dict[str, str] = {}  # job id -> owner a cancel command was sent to
        self._work = trio.Event()  # set when there is something to poll for

    def follows(self, job: Job[Any]) -> bool:
        """True if ``job`` runs elsewhere and this handle follows it."""
        return self.followed.get(job.id) is job

    def follow(self, job: Job[Any], *, origin: str) -> None:
        """Follow ``job`` remotely; a handle scheduled elsewhere leaves our registry."""
        self.followed[job.id] = job
        self._origin[job.id] = origin
        self._work.set()
        if origin != self._sharing.me or job._cron is not None:
            self._sharing.runtime.registry.discard(job)  # the origin's handle waits for it

    def take_back(self, row: StoredJob, now: datetime) -> bool:
        """We claimed the row of a job a handle here follows: a one-off job runs here
        again under the same handle (True); a cron's row is restored anew (False)."""
        job = self.followed.get(row.job_id)
        if job is None:
            return False
        self._unfollow(row.job_id)
        if row.trigger is Trigger.CRON:
            return False
        runtime = self._sharing.runtime
        runtime.registry.add(job)
        job._paused = row.paused
        runtime.registry.hold(job, row.paused)
        due = now if row.trigger is Trigger.PUSH else row.next_run_at
        job._exec_at = due.astimezone(runtime._tz)
        runtime.outcomes.rearm(job, attempt=row.attempt)
        return True

    def _unfollow(self, job_id: str) -> None:
        self.followed.pop(job_id, None)
        self._origin.pop(job_id, None)
        self._misses.pop(job_id, None)

    # -- the runner's side ---------------------------------------------------------------

    def _ships(self, job: Job[Any]) -> bool:
        sharing = self._sharing
        if job._cron is not None or not is_durable(job._task) or self.follows(job):
            return False
        return sharing.others_live or job.id in sharing.origins

    def check_result(self, job: Job[Any], result: Any) -> BaseException | None:
        """Encode a result that must travel; the error that ends the run if it cannot."""
        if not self._ships(job):
            return None
        try:
            self._encoded[job.id] = self._sharing.durability.serializer.dumpb(result)
        except Exception as exc:
            return SerializationError(
                f"job {job.id!r} (task {job._task.name!r}): its result {result!r} cannot be "
                f"stored for the instance that scheduled it: {exc}"
            )
        return None

    def job_ended(self, job: Job[Any]) -> None:
        """Store the outcome of a job that ended here, if it must travel."""
        sharing = self._sharing
        encoded = self._encoded.pop(job.id, None)
        if not self._ships(job):
            sharing.origins.pop(job.id, None)
            return
        status = FINAL_TO_RESULT.get(job.status.value)
        if status is None:
            return
        result = StoredResult(
            job_id=job.id,
            origin=sharing.origins.pop(job.id, sharing.me),
            status=status,
            value=encoded if status is ResultStatus.SUCCESS else None,
            error=describe_error(job.exception) if status is not ResultStatus.SUCCESS else None,
            finished_at=sharing.runtime.now(),
        )
        sharing.writer.write_nowait(PutResult(result=result))

    # -- the follower's side ---------------------------------------------------------------

    async def run_poller(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED):  # type: ignore[no-untyped-def]
        """Every poll interval, end the followed handles whose job has a stored result."""
        sharing = self._sharing
        task_status.started()
        poll = sharing.options.poll_interval
        at = trio.current_time()
        while True:
            if not (self.followed or self.cancels):  # idle: no wake-ups (virtual time jumps)
                self._work = trio.Event()
                await self._work.wait()
            at += poll
            now = trio.current_time()
            if at <= now:  # after an idle spell: the next point of the same grid
                at += math.ceil((now - at) / poll) * poll
                at = at if at > now else at + poll
            await trio.sleep_until(at)
            await sharing.wait_if_stalled()
            if self.followed or self.cancels:
                try:
                    await self._check_cancels()
                    await self.poll_once()
                except Exception as exc:  # the store is down: try again next time
                    log.warning("results poll failed: %s", exc)

    async def poll_once(self) -> None:
        """One batched query for the results of every followed one-off job."""
        storage = self._sharing.storage
        ids = [i for i, job in self.followed.items() if job._cron is None]
        found = {r.job_id: r for r in await storage.fetch_results(ids)}
        for job_id in ids:
            job = self.followed.get(job_id)
            if job is None:
                continue
            result = found.get(job_id)
            if result is not None:
                self.resolve(job, result)
            elif await storage.get_job(job_id) is None:
                misses = self._misses[job_id] = self._misses.get(job_id, 0) + 1
                if misses >= MISSES_BEFORE_UNKNOWN:
                    self.end(job, JobStatus.FAILED, RemoteJobError(job_id, _UNKNOWN))
            else:
                self._misses.pop(job_id, None)

    def resolve(self, job: Job[Any], result: StoredResult) -> None:
        """End a followed handle as its job ended where it ran."""
        status = JobStatus(result.status.value)
        if status is JobStatus.SUCCESS:
            try:
                job._result = self._sharing.durability.serializer.loadb(result.value or b"")
            except Exception as exc:
                error = RemoteJobError(job.id, f"its result could not be decoded here: {exc}")
                self.end(job, JobStatus.FAILED, error)
                return
            self.end(job, status, None)
        elif status is JobStatus.TIMEOUT:
            timeout = job._task.options.timeout
            self.end(job, status, JobTimeoutError(job.id, timeout or 0.0))
        elif status is JobStatus.CANCELLED:
            self.end(job, status, None)
        else:
            self.end(job, status, RemoteJobError(job.id, result.error or "unknown error"))

    def end(self, job: Job[Any], status: JobStatus, exception: BaseException | None) -> None:
        """End a followed handle here (no hook runs: the job ended elsewhere)."""
        self._unfollow(job.id)
        job._exception = exception
        job._status = status
        job._wake_waiters()
        self._sharing.runtime.registry.discard(job)

    # -- calls from the facade -------------------------------------------------------------

    async def lookup(self, job_id: str) -> Job[Any] | None:
        """A handle of the stored job ``job_id`` of any instance, or None."""
        followed = self.followed.get(job_id)
        if followed is not None:
            await trio.lowlevel.checkpoint()
            return followed
        row = await self._sharing.storage.get_job(job_id)
        if row is None:
            return None
        return self.lookup_row(row)

    def lookup_row(self, row: StoredJob) -> Job[Any] | None:
        """A handle following the job of ``row`` (the same one for the same id)."""
        followed = self.followed.get(row.job_id)
        if followed is not None:
            return followed
        sharing = self._sharing
        runtime = sharing.runtime
        task: Task[..., Any] | None = runtime.app._tasks.get(row.task_name)
        if task is None:
            return None
        try:
            args, kwargs = sharing.durability.codec.decode(row.arguments, task.name)
        except (SerializationError, TypeError):
            args, kwargs = (), {}
        job: Job[Any] = Job._create(
            job_id=row.job_id, task=task, args=args, kwargs=kwargs,
            exec_at=row.next_run_at.astimezone(runtime._tz), cancel_hook=runtime.cancel,
            pause_hook=runtime.set_paused,
        )  # fmt: skip
        job._status = JobStatus.SCHEDULED
        job._paused = row.paused  # (a one-off job's; a cron's is in its cron state)
        if row.trigger is Trigger.CRON:
            job._cron = _RemoteCron(row)
        self.followed[job.id] = job
        self._origin[job.id] = row.origin or ""
        self._work.set()
        return job

    async def cancel(self, job: Job[Any]) -> None:
        """Cancel a followed job wherever it is: at its live owner by a command, else by
        deleting its row; the handle ends CANCELLED at once."""
        await self._cancel_stored(job.id, self._origin.get(job.id) or self._sharing.me)
        self.end(job, JobStatus.CANCELLED, None)

    async def set_paused(self, job: Job[Any], paused: bool) -> None:
        """Pause or resume a followed job at its live owner, by a PAUSE/RESUME command
        (applied at the owner's next heartbeat or poll). ``ApplicationStateError`` if no
        live instance holds its row (it is taken over within a lease: try again then)."""
        sharing = self._sharing
        row = await sharing.storage.get_job(job.id)
        now = sharing.runtime.now()
        owner = None if row is None else row.lease_owner
        expires = None if row is None else row.lease_expires_at
        if owner in (None, sharing.me) or expires is None or expires < now:
            raise ApplicationStateError(
                f"job {job.id!r} is not held by a live instance; it cannot be "
                f"{'paused' if paused else 'resumed'} until one takes it over"
            )
        assert owner is not None
        kind = CommandKind.PAUSE if paused else CommandKind.RESUME
        command = Command(target=owner, job_id=job.id, kind=kind, created_at=now)
        await sharing.writer.write(SendCommand(command=command))
        job._paused = paused

    async def _cancel_stored(self, job_id: str, origin: str) -> None:
        """Delete the row, or send its live owner a CANCEL command. Until the row is gone
        the poller watches it: if the owner died before applying the command, the cancel
        is made again with whoever holds the row then (or by deleting it)."""
        sharing = self._sharing
        now = sharing.runtime.now()
        owner = await sharing.storage.try_delete(job_id, owner=sharing.me, now=now)
        if owner is not None:
            command = Command(target=owner, job_id=job_id, kind=CommandKind.CANCEL, created_at=now)
            await sharing.writer.write(SendCommand(command=command))
            self.cancels[job_id] = owner
            self._work.set()
            return
        self.cancels.pop(job_id, None)
        if origin != sharing.me:
            result = StoredResult(
                job_id=job_id, origin=origin, status=ResultStatus.CANCELLED, finished_at=now
            )
            sharing.writer.write_nowait(PutResult(result=result))

    async def _check_cancels(self) -> None:
        storage = self._sharing.storage
        for job_id, target in list(self.cancels.items()):
            row = await storage.get_job(job_id)
            if row is None:
                self.cancels.pop(job_id, None)
            elif row.lease_owner != target:  # the owner died before it applied the cancel
                await self._cancel_stored(job_id, row.origin or self._sharing.me)

    async def check_id(
        self,
        job_id: str,
        *,
        replace: bool,
        trigger: Trigger,
        exec_at: datetime,
        arguments: bytes,
        force: bool,
    ) -> Job[Any] | None:
        """A scheduling call names ``job_id``, which is not active here: is it elsewhere?

        Not stored: None (schedule it here). Stored and no ``replace``:
        ``DuplicateJobError``. Held by a live other instance: the replacement is sent to
        it as a command and a handle following the job is returned. Else None: the row
        is taken over here.
        """
        sharing = self._sharing
        row = await sharing.storage.get_job(job_id)
        if row is not None and row.lease_owner == sharing.me:
            # a job of ours that just ended: its row's delete may still be queued
            await sharing.writer.write(Release(job_id="", owner=sharing.me))  # a barrier
            row = await sharing.storage.get_job(job_id)
        if row is None:
            return None
        if not replace:
            raise DuplicateJobError(job_id, "it is active on another instance; pass replace=True")
        now = sharing.runtime.now()
        expires = row.lease_expires_at
        held = row.lease_owner not in (None, sharing.me) and expires is not None and expires >= now
        if not held or row.trigger is Trigger.CRON:
            return None
        assert row.lease_owner is not None
        payload = encode_replace(trigger=trigger, exec_at=exec_at, arguments=arguments, force=force)
        command = Command(
            target=row.lease_owner, job_id=job_id, kind=CommandKind.REPLACE, payload=payload,
            created_at=now,
        )  # fmt: skip
        await sharing.writer.write(SendCommand(command=command))
        return self.lookup_row(row)


_UNKNOWN = (
    "it ended on another instance, which stored no outcome for this one (it was not "
    "following it when the job ended)"
)


class _RemoteCron:
    """Stands in for the :class:`~jobify_trio.Cron` of a cron job followed remotely."""

    def __init__(self, row: StoredJob) -> None:
        from .._cron._state import cron_from_json

        self.tz: tzinfo | None = None
        try:
            cron = cron_from_json(row.cron or "")[0]
        except ValueError:
            self.expression = "?"
        else:
            self.expression, self.tz = cron.expression, cron.tz
