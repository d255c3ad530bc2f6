"""The actor of one cron job: :class:`CronTrigger` (see :mod:`._cron_trigger` for the
whole design; this module holds the per-job task and its run-end hook)."""

from __future__ import annotations

import collections
import math
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ..._core._clock import to_tz
from ..._core._job import Job, JobStatus
from ..._core._messages import RunJob
from ..._cron._dst import dst_shift
from ..._cron._misfire import plan_misfire
from ..._cron._slots import EARLY_TOLERANCE, Slots, on_time
from ..._cron._state import CronState
from ..._cron._values import Cron
from ..._storage._durability import is_durable
from ._cron_alarm import Alarm, AlarmEntry
from ._executor import not_a_worker

if TYPE_CHECKING:
    from ._cron_trigger import CronTriggers

__all__ = ["CronTrigger"]


class CronTrigger:
    """The actor of one cron job (see the module docs).

    Parking protocol: the task is parked either on an alarm entry (``_entry``) or waiting
    for its run to end (``_waiting_run``); whoever wakes it clears that first, so it is
    rescheduled exactly once. After any wake the loop re-reads the wall clock.
    """

    __slots__ = (
        "_batch",
        "_claimed",
        "_claimed_next",
        "_cron",
        "_due",
        "_due_stamp",
        "_ended",
        "_entry",
        "_group",
        "_held",
        "_inherited",
        "_job",
        "_last_status",
        "_offset",
        "_run_over",
        "_scope",
        "_slots",
        "_task",
        "_waiting_run",
        "_zone",
        "failures",
        "run_count",
    )

    def __init__(
        self,
        *,
        job: Job[Any],
        cron: Cron,
        group: CronTriggers,
        slots: Slots,
        state: CronState,
        zone: tzinfo,
    ) -> None:
        self._job = job
        self._cron = cron
        self._group = group
        self._slots = slots
        self._zone = zone  # slots are computed in this zone (a stored state has fixed offsets)
        due = state.next_run_at
        self._set_due(None if due is None else due.astimezone(zone))
        self._offset = state.offset.astimezone(zone)
        self.run_count = state.run_count
        self.failures = state.failures
        self._batch: collections.deque[datetime] = collections.deque()
        self._claimed = math.nan  # timestamp of the slot claimed ahead (see _claim_ahead)
        self._claimed_next: datetime | None = None  # the next slot stored with that claim
        self._ended = False
        self._inherited = job.status is JobStatus.RUNNING  # a run from before a replace
        self._run_over = False
        self._waiting_run = False
        self._held = False
        self._entry: AlarmEntry | None = None
        self._task: trio.lowlevel.Task | None = None
        self._last_status = JobStatus.SUCCESS
        self._scope = trio.CancelScope()

    # -- state -----------------------------------------------------------------------------

    def state(self) -> CronState:
        """A snapshot of this job's progress (as stored: once the due slot is claimed
        ahead, the state its claim stored, from after that slot)."""
        upcoming, offset = self._upcoming(), self._offset
        if self._ahead():
            upcoming, offset = self._claimed_next, self._due  # type: ignore[assignment]
        return CronState(
            next_run_at=upcoming,
            offset=offset,
            run_count=self.run_count,
            failures=self.failures,
            paused=self._job._paused,
        )

    def _ahead(self) -> bool:
        """The due slot is claimed already (ahead of its time) and waits to fire."""
        return not self._batch and self._due is not None and self._claimed == self._due_stamp

    def _upcoming(self) -> datetime | None:
        return self._batch[0] if self._batch else self._due

    def _set_due(self, due: datetime | None) -> None:
        self._due = due
        self._due_stamp = 0.0 if due is None else due.timestamp()

    def replan(self, now: float) -> None:
        """Decide what to run at ``now`` (a timestamp; the slot is due): on time, or per the
        misfire policy."""
        due = self._due
        if due is None or self._batch:
            return
        following = self._slots.after(due, self._due_stamp)
        if on_time(self._due_stamp, following, now):
            self._batch.append(due)
            self._due = following[0] if following is not None else None
            self._due_stamp = following[1] if following is not None else 0.0
            return
        plan = plan_misfire(
            self._cron.misfire_policy,
            due=due,
            now=datetime.fromtimestamp(now, due.tzinfo),
            next_after=self._slots.next_after,
        )
        self._batch.extend(plan.run_now)
        self._set_due(plan.next_due)
        if not plan.run_now and plan.next_due is not None:
            self._offset = due  # skipped slots still move the base forward
        events = self._group.events
        if events is not None and plan.skipped is not None:
            policy, next_after = self._cron.misfire_policy, self._slots.next_after
            events.slots_skipped(self._job, policy, plan.skipped, next_after, plan.next_due)

    def _publish(self) -> None:
        upcoming = self._upcoming()
        if upcoming is not None:
            self._job._exec_at = upcoming

    # -- the actor -------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Fire the job's slots until it ends or the trigger is stopped."""
        not_a_worker()  # it waits for executor capacity like any producer outside the pool
        try:
            with self._scope:
                self._task = trio.lowlevel.current_task()
                task_status.started()
                if self._inherited:
                    await self._wait_run_end()
                await self._loop()
        finally:
            self._group._forget(self)

    async def _loop(self) -> None:
        job, group = self._job, self._group
        clock = group.wall_clock
        while not self._ended:
            if job._paused:  # parked until resume(): its slots pass unrun
                self._held = True
                await self._park()
                continue
            if self._batch:
                slot = self._batch.popleft()
                self._offset = job._exec_at = slot
                claim = group.claim_slot
                if slot.timestamp() == self._claimed:
                    self._claimed = math.nan  # claimed ahead: it fires on the local timer
                elif claim is not None:
                    won = await claim(job, slot, self.state())
                    if won is False:
                        self._claimed_elsewhere(slot)
                        return  # another instance fires this cron now
                    if won is None:  # claimed before (see SlotBatcher.claim): not run
                        self._publish()
                        continue
                if group.events is not None:
                    self._announce_dst(slot)
                job._generation += 1
                job._status = JobStatus.SCHEDULED
                self._run_over = False
                await group.executor.submit(RunJob(job=job, generation=job._generation))
                await self._wait_run_end()
                continue
            if self._due is None:
                group._end_between_runs(job, self._last_status)
                return
            now = clock.now().timestamp()
            remaining = self._due_stamp - now
            sleep = self._sleep_for(remaining)
            if sleep > 0:
                self._entry = group.alarm.push(trio.current_time() + sleep, self._task)  # type: ignore[arg-type]
                await self._park()
                continue
            if remaining > EARLY_TOLERANCE:  # within the claim lead of its slot
                if not await self._claim_ahead():
                    return  # another instance fires this cron now
                continue
            self.replan(now)
            self._publish()

    def _sleep_for(self, remaining: float) -> float:
        """Seconds to park before the next step, the due slot being ``remaining`` seconds
        ahead (0: act now). With a claim lead (sharing), the trigger first wakes that long
        before the slot to claim it, then parks again until the slot itself."""
        if remaining <= EARLY_TOLERANCE:
            return 0.0
        lead = self._group.claim_lead
        if lead > 0 and self._claimed != self._due_stamp and is_durable(self._job._task):
            remaining -= lead
            return remaining if remaining > EARLY_TOLERANCE else 0.0
        return remaining

    async def _claim_ahead(self) -> bool:
        """Claim the due slot now, before its time, with the state it leaves once fired
        (so the store never shows a slot that was claimed as still to come). The slot
        then fires on the local timer; a pause, cancel or replace meanwhile is honoured
        (the slot stays claimed and is not run). False: another instance owns the cron."""
        due = self._due
        claim = self._group.claim_slot
        assert due is not None
        assert claim is not None
        following = self._slots.after(due, self._due_stamp)
        upcoming = None if following is None else following[0]
        state = CronState(
            next_run_at=upcoming, offset=due, run_count=self.run_count,
            failures=self.failures, paused=self._job._paused,
        )  # fmt: skip
        won = await claim(self._job, due, state)
        if won is False:
            self._claimed_elsewhere(due)
            return False
        if self._due is not due:  # re-planned meanwhile (resumed, clock set back)
            return True
        if won is None:  # claimed before (see SlotBatcher.claim): skipped, not run
            self._offset = due
            self._set_due(upcoming)
            self._publish()
        else:
            self._claimed, self._claimed_next = self._due_stamp, upcoming
        return True

    def _announce_dst(self, slot: datetime) -> None:
        """Tell the listeners if the DST rule moved ``slot`` or keeps it once."""
        events = self._group.events
        shift = dst_shift(self._slots.expression, slot)
        if events is not None and shift is not None:
            events.dst_shifted(self._job, shift)

    def _claimed_elsewhere(self, slot: datetime) -> None:
        events = self._group.events
        if events is not None:
            events.slot_claimed_elsewhere(self._job, slot)

    async def _wait_run_end(self) -> None:
        if self._run_over:  # it ended before this task got here
            self._run_over = False
            return
        self._waiting_run = True
        await self._park()

    async def _park(self) -> None:
        def abort(_: object) -> trio.lowlevel.Abort:
            if self._entry is not None:
                Alarm.cancel(self._entry)
                self._entry = None
            self._waiting_run = self._held = False
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)
        self._entry = None

    def wake(self) -> None:
        """Re-read the wall clock now (used after a wall-clock jump)."""
        entry = self._entry
        if entry is not None and Alarm.cancel(entry):
            trio.lowlevel.reschedule(self._task)  # type: ignore[arg-type]

    def rewind(self, now: datetime) -> None:
        """The wall clock was set back far (see ``SET_BACK_REPLAN``): the next slot becomes
        the first one after ``now`` (never before ``start_date``), as cron(8) does, instead
        of waiting for the old one. Slots already queued to run are kept."""
        if self._due is None or self._ended:
            return
        now = now.astimezone(self._zone)
        following = self._slots.after(now)
        start = self._cron.start_date
        if start is not None:
            first = to_tz(start, self._zone)
            if following is None or following[1] < first.timestamp():
                following = (first, first.timestamp())
        if following is None or following[1] >= self._due_stamp:
            return  # the old slot is not later: keep it
        self._due, self._due_stamp = following
        job = self._job
        if job.status is JobStatus.SCHEDULED and not self._batch:  # (a run's slot stays)
            self._offset = now
            self._publish()
            for hook in self._group.run_ended_hooks:  # storage keeps the new plan
                hook(job, self.state())

    def resume(self, now: datetime) -> None:
        """The job was resumed: it goes on from its next slot after ``now``; the slots that
        passed while it was paused are dropped (no catch-up, whatever the misfire policy)."""
        if self._ended:
            return
        self._batch.clear()
        if self._due is not None and self._due_stamp <= now.timestamp():
            now = now.astimezone(self._zone)
            following = self._slots.after(now)
            self._set_due(None if following is None else following[0])
            self._offset = now
        if self._job.status is JobStatus.SCHEDULED and not self._waiting_run:
            self._publish()  # (a run's pending retry keeps its exec_at until the run ends)
        if self._held:
            self._held = False
            trio.lowlevel.reschedule(self._task)  # type: ignore[arg-type]

    def stop(self) -> None:
        """End this trigger's task (the job was cancelled or replaced)."""
        self._ended = True
        self._scope.cancel()

    # -- the end of a run (called by Outcomes through ``job._on_run_end``) -------------------

    def on_run_end(self, job: Job[Any]) -> bool:
        """Count the run that just ended; True if the job goes on (SCHEDULED again)."""
        if self._inherited:  # a run of the replaced schedule: not counted
            self._inherited = False
        else:
            self._count(job)
        upcoming = self._upcoming()
        goes_on = not self._ended and upcoming is not None
        if goes_on:
            job._status = JobStatus.SCHEDULED
            job._exec_at = upcoming  # type: ignore[assignment]
        else:
            self._ended = True
        self._resume()
        hooks = self._group.run_ended_hooks
        if hooks:
            state = self.state() if goes_on else attrs.evolve(self.state(), next_run_at=None)
            for hook in hooks:
                hook(job, state)
        return goes_on

    def _resume(self) -> None:
        """Let the trigger go on after its run: straight to the alarm if the next slot is
        still ahead, else wake it now."""
        if not self._waiting_run:
            self._run_over = True  # it has not parked yet; it will see this
            return
        self._waiting_run = False
        if not self._ended and not self._batch and self._due is not None:
            group = self._group
            sleep = self._sleep_for(self._due_stamp - group.wall_clock.now().timestamp())
            if sleep > 0:
                self._entry = group.alarm.push(trio.current_time() + sleep, self._task)  # type: ignore[arg-type]
                return
        trio.lowlevel.reschedule(self._task)  # type: ignore[arg-type]

    def _count(self, job: Job[Any]) -> None:
        status = job.status
        self.run_count += 1
        self._last_status = status
        self.failures = 0 if status is JobStatus.SUCCESS else self.failures + 1
        cron = self._cron
        if self.failures >= cron.max_failures:
            job._status = JobStatus.PERMANENTLY_FAILED
            self._ended = True
        elif cron.max_runs is not None and self.run_count >= cron.max_runs:
            self._ended = True
