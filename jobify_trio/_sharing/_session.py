"""One app instance's part in a shared schedule: :class:`Sharing`, created at startup.

:func:`start_sharing` registers the instance when the store has *presence*, refuses to
start when the store cannot share and another instance is live, and else returns a
:class:`Sharing` that is wired into the runtime through narrow hooks:

* :attr:`Durability.stamp <jobify_trio._storage._durability.Durability.stamp>`: every row
  this instance writes is leased to it (and carries its origin);
* :attr:`Durability.load_rows`: restore takes only the rows this instance may own
  (orphans, due unowned rows), not every row;
* ``Outcomes.result_check`` / ``job_ended_hooks``: a result that must travel to another
  instance is encoded (a value that cannot be is a FAILED run) and stored;
* ``Executor.on_full``: a due job that finds the executor full is released for others;
* ``Executor.fence``: a durable job starts only while this instance's leases surely hold
  (:mod:`._fence`);
* ``CronTriggers.claim_slot``: each cron slot is claimed (exactly once) before it fires;
  other writes of cron rows (paused, failed for good, ended, progress at a clean stop) in
  :mod:`._cron_rows`.

The actors (heartbeat, claimer, results poller, slot-claim batcher) live in sibling
modules; the handles of jobs running elsewhere in :mod:`._remote`.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import trio

from .._core._job import JobStatus
from .._storage._durability import is_durable
from .._storage._restore import _restore_row
from ..storage import (
    Delete,
    InstanceInfo,
    LoadResult,
    Release,
    SharingNotSupportedError,
    StorageError,
    StoredJob,
    StoredState,
    Trigger,
)
from ._cron_rows import ENDED_CRON_DELETE_TIMEOUT, CronRows
from ._decide import describe_instance, live_others
from ._fence import LeaseFence
from ._options import SharingOptions, host_name, new_instance_id, pid_alive
from ._remote import Remote
from ._slots import SlotBatcher

if TYPE_CHECKING:
    from .._api._task import Task
    from .._core._job import Job
    from .._runtime._runtime import Runtime
    from .._storage._durability import Durability
    from ..storage import Storage

__all__ = ["Sharing", "start_sharing"]

log = logging.getLogger("jobify_trio.sharing")

ADOPT_LIMIT = 10_000
"""Most rows adopted in one pass (the next pass takes the rest)."""


async def start_sharing(runtime: Runtime, durability: Durability) -> Sharing | None:
    """Register this instance; None if the store has no presence (it runs as a lone
    instance). ``StorageError`` naming the other instance if the store cannot share and
    another instance is live."""
    options = runtime.app.sharing or SharingOptions()
    storage = durability.storage
    now = runtime.now()
    me = new_instance_id(options)
    info = InstanceInfo(
        instance_id=me, host=host_name(), pid=os.getpid(), started_at=now, heartbeat_at=now
    )
    try:
        await storage.register_instance(info)
    except SharingNotSupportedError:
        return None
    sharing = Sharing(runtime, durability, options, me)
    try:
        await sharing.check_others(storage)
    except BaseException:
        with trio.CancelScope(shield=True):
            await storage.unregister_instance(instance_id=me)
        raise
    if sharing.active:
        sharing.install()
    return sharing


class Sharing:
    """State and hooks of this instance in a shared schedule (see the module docs)."""

    def __init__(
        self, runtime: Runtime, durability: Durability, options: SharingOptions, me: str
    ) -> None:
        self.runtime = runtime
        self.durability = durability
        self.storage: Storage = durability.storage
        self.writer = durability.writer
        self.options = options
        self.me = me
        self.active = self.storage.can_share
        self.lease = timedelta(seconds=options.lease)
        self.others_live = False  # another live instance seen (at startup, last beat)
        self.unrunnable: set[str] = set()  # claimed rows we could not arm (warned once)
        self.origins: dict[str, str] = {}  # jobs run here that another instance scheduled
        self.expected: dict[str, Any] = {}  # cron job id -> its stored next_run_at
        self.crons = CronRows(self)
        self.remote = Remote(self)
        self.slots = SlotBatcher(self)
        self.fence = LeaseFence(self)
        self.unregister_on_stop = True
        self.stalled: trio.Event | None = None  # tests: set to freeze this instance
        self._restored: list[str] = []
        self._adopted: dict[str, str | None] = {}  # job id -> origin, of the last acquire

    # -- startup -------------------------------------------------------------------------

    async def check_others(self, storage: Storage) -> None:
        """Forget dead instances of this host; refuse a live one if we cannot share."""
        now = self.runtime.now()
        others = live_others(await storage.instances(), me=self.me, now=now, lease=self.lease)
        live = []
        for info in others:
            if info.host == host_name() and not pid_alive(info.pid):  # crashed: free its rows
                await storage.unregister_instance(instance_id=info.instance_id)
            else:
                live.append(info)
        self.others_live = bool(live)
        if live and not self.active:
            raise StorageError(
                f"{storage!r} cannot share a schedule between app instances, and instance "
                f"{describe_instance(live[0])} is running on it: stop it first, or use a "
                "store that can share (see docs/sharing.rst)"
            )

    def install(self) -> None:
        """Wire the hooks into the runtime (a store that can share only)."""
        runtime, durability = self.runtime, self.durability
        durability.stamp = self.stamp
        durability.load_rows = self.load_owned
        durability.delete_ended_cron = self.crons.delete_ended
        runtime.outcomes.result_check = self.remote.check_result
        runtime.outcomes.job_ended_hooks.append(self.remote.job_ended)
        runtime.outcomes.job_ended_hooks.append(self.crons.forget)
        runtime.executor.on_full = self.release_if_busy
        runtime.executor.fence = self.fence
        runtime.cron_triggers.claim_slot = self.slots.claim
        runtime.cron_triggers.claim_lead = self.options.slot_claim_lead

    async def start(self, nursery: trio.Nursery) -> None:
        """Start the actors: heartbeat always; claimer, results and slots when sharing."""
        from ._claimer import run_claimer
        from ._heartbeat import run_heartbeat

        await nursery.start(run_heartbeat, self)
        if self.active:
            self.release_unarmed()
            await nursery.start(self.slots.run)
            await nursery.start(run_claimer, self)
            await nursery.start(self.remote.run_poller)

    async def stop(self) -> None:
        """A clean stop: store the progress of our crons that ran since their last
        claim, then unregister (our leases end, so others take over at once)."""
        if not self.unregister_on_stop:
            return
        with trio.CancelScope(shield=True):
            with trio.move_on_after(ENDED_CRON_DELETE_TIMEOUT):
                await self.crons.store_unstored()
            try:
                await self.storage.unregister_instance(instance_id=self.me)
            except Exception as exc:  # the store is gone: our leases simply run out
                log.warning("could not unregister instance %r: %s", self.me, exc)

    # -- hooks ---------------------------------------------------------------------------

    def stamp(self, row: StoredJob) -> StoredJob:
        """``row`` leased to this instance, with its origin (every row we write)."""
        if row.trigger is Trigger.CRON:
            self.expected[row.job_id] = row.next_run_at
            self.crons.forget_id(row.job_id)  # this row stores its current progress
        return StoredJob._trusted(
            row.job_id, row.task_name, row.trigger, row.next_run_at, row.arguments,
            row.attempt, row.state, row.cron, self.me, self.runtime.now() + self.lease,
            self.origins.get(row.job_id, self.me),
        )  # fmt: skip

    async def load_owned(self) -> LoadResult:
        """Restore: the orphans we adopt and the due rows we claim (not every row).

        Alone on the store, as on an unshared one: every due row is claimed (not only as
        many as the executor has free slots), and unreadable rows are reported in the
        :class:`~jobify_trio.storage.RestoreWarning` (one full read at startup)."""
        alone = not self.others_live  # as an unshared store: every due row, not capacity
        rows = await self.acquire(ADOPT_LIMIT if alone else self.capacity())
        self._restored = [row.job_id for row in rows]
        if not alone:
            return LoadResult(jobs=rows)
        loaded = await self.storage.load()  # unreadable rows are named in the warning, and
        ids = {row.job_id for row in rows}  # crons that failed for good stay failed
        failed = [
            row
            for row in loaded.jobs
            if row.state is StoredState.PERMANENTLY_FAILED and row.job_id not in ids
        ]
        return LoadResult(jobs=rows + failed, corrupt=loaded.corrupt)

    def capacity(self) -> int:
        """Free executor slots."""
        runtime = self.runtime
        return max(0, runtime.app.max_concurrency - runtime.executor.busy)

    async def acquire(self, free: int) -> list[StoredJob]:
        """Adopt orphans and claim up to ``free`` due rows; remember where they came from."""
        now = self.runtime.now()
        rows = await self.storage.adopt_orphans(
            owner=self.me, now=now, lease=self.lease, limit=ADOPT_LIMIT
        )
        self._adopted = {row.job_id: row.origin for row in rows}
        if free > 0:
            rows += await self.storage.claim_due(
                owner=self.me, now=now, lease=self.lease, limit=free
            )
        for row in rows:
            if row.origin is not None and row.origin != self.me:
                self.origins[row.job_id] = row.origin
            if row.trigger is Trigger.CRON:
                self.expected[row.job_id] = row.next_run_at
        return rows

    def release_unarmed(self) -> None:
        """Release the rows restore leased to us but could not arm (unknown task...)."""
        restored, self._restored = self._restored, []
        for job_id in restored:
            if self.runtime.registry.get(job_id) is None:
                self.origins.pop(job_id, None)
                self.expected.pop(job_id, None)
                self.writer.write_nowait(Release(job_id=job_id, owner=self.me))
        self._announce_adopted(restored)

    def arm_claimed(self, rows: list[StoredJob]) -> int:
        """Run claimed or adopted rows here (as restore would); release what we cannot
        (and return how many those are)."""
        runtime = self.runtime
        tasks = runtime.app._tasks
        now = runtime.now()
        problems: list[str] = []
        armed: list[str] = []
        handed_back = 0
        for row in rows:
            if self.remote.cancels.pop(row.job_id, None) is not None:
                self.writer.write_nowait(Delete(job_id=row.job_id))  # cancelled meanwhile
                continue
            if self.remote.take_back(row, now):
                continue  # a handle here followed it: it runs here again
            if runtime.registry.get(row.job_id) is not None:
                continue  # already ours and armed here
            problem = _restore_row(runtime, self.durability, tasks, row, now)
            if problem is not None:
                handed_back += 1
                if row.job_id not in self.unrunnable:  # warned about once
                    problems.append(problem)
                self.unrunnable.add(row.job_id)
                self.writer.write_nowait(Release(job_id=row.job_id, owner=self.me))
            else:
                armed.append(row.job_id)
        self._announce_adopted(armed)
        if problems:
            log.warning("claimed rows released, not run here: %s", "; ".join(problems))
        return handed_back

    def _announce_adopted(self, armed: list[str]) -> None:
        """Tell the listeners about the jobs just armed here that were adopted."""
        adopted, self._adopted = self._adopted, {}
        events = self.runtime.outcomes.events
        if events is None:
            return
        for job_id in armed:
            job = self.runtime.registry.get(job_id)
            if job is not None and job_id in adopted:
                events.lease_taken_over(job, adopted[job_id])

    def release_if_busy(self, command: Any) -> bool:
        """The executor is full: hand a due durable one-off job to other instances."""
        job = command.job
        if not self.others_live or job._cron is not None or not is_durable(job._task):
            return False
        if self.remote.follows(job):
            return False
        job._generation += 1  # this run request is dropped: another instance runs it
        job._status = JobStatus.SCHEDULED
        self.writer.write_nowait(Release(job_id=job.id, owner=self.me))
        self.remote.follow(job, origin=self.origins.pop(job.id, self.me))
        return True

    def detach(self, job: Job[Any]) -> None:
        """Our row of ``job`` was taken away (we stalled past our lease, or it was
        replaced or cancelled elsewhere): stop it here and follow it remotely."""
        runtime = self.runtime
        job._generation += 1
        job._rerun = None
        if job._scope is not None:
            job._scope.cancel()
        runtime._disarm(job)
        if job._cron is not None:
            runtime.cron_triggers.stop(job)
        job._status = JobStatus.SCHEDULED
        self.expected.pop(job.id, None)
        self.crons.forget(job)
        self.writer.write_nowait(Release(job_id=job.id, owner=self.me))  # if still ours
        self.remote.follow(job, origin=self.origins.pop(job.id, self.me))

    async def wait_if_stalled(self) -> None:
        """Tests freeze an instance (as if its process were paused) with :attr:`stalled`."""
        stalled = self.stalled
        if stalled is not None:
            await stalled.wait()

    # -- calls from the runtime ----------------------------------------------------------

    async def check_id(
        self,
        job_id: str,
        replace: bool,
        trigger: Trigger,
        exec_at: datetime,
        arguments: bytes,
        force: bool,
    ) -> Job[Any] | None:
        """A one-off scheduling call names an id not active here (see
        :meth:`Remote.check_id <jobify_trio._sharing._remote.Remote.check_id>`)."""
        if not self.active:
            return None  # a lone instance: the id is free (as without sharing)
        return await self.remote.check_id(
            job_id, replace=replace, trigger=trigger, exec_at=exec_at, arguments=arguments,
            force=force,
        )  # fmt: skip

    async def may_declare(self, task: Task[..., Any], job_id: str) -> bool:
        """Start the declarative cron ``job_id`` here? Not if a live instance runs it."""
        if not self.active or self.runtime.registry.get(job_id) is not None:
            await trio.lowlevel.checkpoint()
            return True
        row = await self.storage.get_job(job_id)
        if row is None or row.lease_owner in (None, self.me):
            return True
        expires = row.lease_expires_at
        if expires is not None and expires >= self.runtime.now():
            self.remote.lookup_row(row)
            return False
        return True
