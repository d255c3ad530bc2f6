"""Cron trigger actors: one trio task per cron job, and the group that owns them.

A :class:`CronTrigger` owns the schedule of one cron :class:`~jobify_trio.Job`. It parks
on the shared :class:`~._cron_alarm.Alarm` until its next slot (the trio deadline is
computed from the wall clock, like the scheduler's timers, and the wall clock is read
again on waking: an early wake parks again), decides what to run (on time, or per the
misfire policy with the pure :func:`~jobify_trio._misfire.plan_misfire` when it woke late
or a run overran later slots), sends :class:`RunJob` to the executor, and parks until
that run has ended (retries included). So runs of one cron job never overlap, and the
next slot is computed from the previous *scheduled* slot, never from the time a run ended.

On a shared store each slot is claimed first (``claim_slot``). With a ``claim_lead`` the
trigger wakes that long before the slot, claims it, and parks again until the slot, which
then fires on the local timer; a trigger that could not claim early (its run went on)
claims when it fires. While a claimed slot waits, :meth:`CronTrigger.state` is the state
its claim stored (from after that slot), so a paused cron's row never names a claimed slot.

A fire costs one park: the run ends through :class:`~jobify_trio._outcomes.Outcomes`,
which calls the job's ``_on_run_end`` hook (:meth:`CronTrigger.on_run_end`, in the task
that ended the run). The hook counts the run (``run_count``, consecutive ``failures``),
then either lets the job end (``max_runs`` or ``max_failures`` reached -> the latter ends
PERMANENTLY_FAILED, or no slot left) or takes it over again (status SCHEDULED,
``exec_at`` the next slot) and, when that slot is still ahead, hands the parked trigger
straight to the alarm instead of waking it only for it to go back to sleep.

:class:`CronTriggers` is the group the runtime owns: it holds the triggers' nursery and the
alarm, starts/replaces/stops triggers, watches the wall clock for jumps (one wake per
:data:`JUMP_CHECK` seconds for all triggers, so idle crons cost nothing; a clock set back
by more than an hour makes them re-plan from the new wall time), and is the API
the storage layer uses (:meth:`CronTriggers.state`, :meth:`CronTriggers.restore`,
:attr:`CronTriggers.run_ended_hooks`). Slot arithmetic lives in :mod:`.._cron_slots`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

import trio

from ..._core._clock import (
    JUMP_CHECK,
    JUMP_THRESHOLD,
    WallClock,
    clock_offset,
    is_large_set_back,
    may_jump,
    to_tz,
)
from ..._core._job import Job, JobStatus
from ..._cron._expression import CronExpression
from ..._cron._slots import (
    EARLY_TOLERANCE,
    MISFIRE_TOLERANCE,
    SlotMemo,
    Slots,
    declarative_job_id,
)
from ..._cron._state import CronState
from ..._cron._values import Cron
from ._cron_actor import CronTrigger
from ._cron_alarm import Alarm

if TYPE_CHECKING:
    from ..._api._task import Task
    from .._dispatch import EventDispatcher
    from .._outcomes import Outcomes
    from ._executor import Executor

__all__ = [
    "EARLY_TOLERANCE",
    "JUMP_CHECK",
    "MISFIRE_TOLERANCE",
    "CronRunEndedHook",
    "CronState",
    "CronTrigger",
    "CronTriggers",
    "cron_call_arguments",
    "declarative_job_id",
]

_MAX_MEMOS = 4096


def cron_call_arguments(
    task: Task[..., Any], cron: Cron, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments each run of a cron job gets, checked against the task's signature.

    Arguments given to ``task.schedule(...)`` are used; otherwise ``cron.args`` and
    ``cron.kwargs``. Giving both is a ``TypeError`` naming the task; so are arguments
    that do not bind.
    """
    if args or kwargs:
        if cron.args or cron.kwargs:
            raise TypeError(
                f"task {task.name!r}: pass arguments to schedule(...) or to Cron(args=, "
                "kwargs=), not to both"
            )
        return args, kwargs
    args, kwargs = tuple(cron.args), dict(cron.kwargs)
    task._binder.check(args, kwargs)
    return args, kwargs


CronRunEndedHook = Callable[[Job[Any], CronState], None]
"""Called after each run of a cron job with its new :class:`CronState` (``next_run_at``
None when the job ended: then ``job.status`` is final, e.g. PERMANENTLY_FAILED), and when
a scheduled cron job re-planned after the wall clock was set back."""


class CronTriggers:
    """The cron triggers of one runtime: their nursery, lookup by job, and the storage API.

    ``run_ended_hooks`` are called (job, :class:`CronState`) after every run of a cron job
    that goes on; when a cron job ends for good, ``Outcomes.job_ended_hooks`` are called
    instead (a job that ended PERMANENTLY_FAILED has that status when they run).
    """

    def __init__(
        self, *, executor: Executor, outcomes: Outcomes, wall_clock: WallClock, tz: tzinfo
    ) -> None:
        self.executor = executor
        self.wall_clock = wall_clock
        self._outcomes = outcomes
        self._tz = tz
        self._triggers: dict[Job[Any], CronTrigger] = {}
        self._memos: dict[tuple[CronExpression, tzinfo], SlotMemo] = {}
        self._nursery: trio.Nursery | None = None
        self._pending: list[CronTrigger] = []  # armed before the group started (restore)
        self.run_ended_hooks: list[CronRunEndedHook] = []
        self.alarm = Alarm()
        # ids of restored cron jobs that had ended PERMANENTLY_FAILED, with their Cron: a
        # declarative cron unchanged in code is not started again for them.
        self.failed_ids: dict[str, Cron] = {}
        # set by the sharing protocol: claim a slot before firing it (False: lost)
        # (True: fire it; False: another instance owns the cron; None: claimed before, skip)
        self.claim_slot: (
            Callable[[Job[Any], datetime, CronState], Awaitable[bool | None]] | None
        ) = None
        # set with it: seconds before a slot its claim is made (0: when it fires)
        self.claim_lead = 0.0

    def __len__(self) -> int:
        return len(self._triggers)

    @property
    def events(self) -> EventDispatcher | None:
        """The app's event dispatcher (None when it has no listener)."""
        return self._outcomes.events

    def now(self) -> datetime:
        """The wall clock's time in the app's tz."""
        return self.wall_clock.now().astimezone(self._tz)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the triggers' nursery and watch for wall-clock jumps until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self.alarm.run)
            pending, self._pending = self._pending, []
            for trigger in pending:
                if not trigger._ended:
                    await nursery.start(trigger.run)
            task_status.started()
            if not may_jump(self.wall_clock):
                await trio.sleep_forever()
            offset = self._clock_offset()
            while True:
                await trio.sleep(JUMP_CHECK)
                measured = self._clock_offset()
                if abs(measured - offset) > JUMP_THRESHOLD:
                    self._jumped(measured - offset)
                offset = measured

    def _jumped(self, jump: float) -> None:
        """The wall clock jumped by ``jump`` seconds: every trigger re-reads it. Set back by
        more than ``SET_BACK_REPLAN``, they first re-plan from the new wall time."""
        now = self.now() if is_large_set_back(jump) else None
        for trigger in list(self._triggers.values()):
            if now is not None:
                trigger.rewind(now)
            trigger.wake()

    def _clock_offset(self) -> float:
        return clock_offset(self.wall_clock, trio.current_time())

    def state(self, job: Job[Any]) -> CronState | None:
        """The progress of a live cron job (None if it has no trigger)."""
        trigger = self._triggers.get(job)
        return None if trigger is None else trigger.state()

    def zone(self, cron: Cron) -> tzinfo:
        """The time zone of ``cron``'s slots: its own ``tz``, else the app's."""
        return self._tz if cron.tz is None else cron.tz

    def first_state(
        self, job: Job[Any], cron: Cron, *, now: datetime, offset: datetime | None
    ) -> CronState:
        """Where a new (or replacing) cron job starts.

        A ``start_date`` (naive: the schedule's tz) is the first slot, exactly, unless
        ``offset`` is given (a replace that keeps its offset). Otherwise the first slot is
        the first one after ``offset`` (default ``now``). Slots are in the schedule's tz.
        """
        zone = self.zone(cron)
        if cron.start_date is not None and offset is None:
            first = to_tz(cron.start_date, zone)
            return CronState(next_run_at=first, offset=first)
        base = (now if offset is None else offset).astimezone(zone)
        following = self._slots(cron, job.id).after(base)
        return CronState(next_run_at=None if following is None else following[0], offset=base)

    async def arm(self, job: Job[Any], cron: Cron, state: CronState, *, now: datetime) -> None:
        """Start the trigger of ``job`` from ``state``; the misfire policy is applied if late.

        Used for new and replaced jobs. Returns when the trigger's task is running and
        ``job.exec_at`` shows its next slot.
        """
        trigger = self._install(job, cron, state, now=now)
        if self._nursery is None:
            self._pending.append(trigger)
            await trio.lowlevel.checkpoint()
        else:
            await self._nursery.start(trigger.run)

    def arm_nowait(self, job: Job[Any], cron: Cron, state: CronState, *, now: datetime) -> None:
        """:meth:`arm` without waiting: for restore (``state`` is the stored one: next slot,
        offset, run count and consecutive failures). Before the group runs, the trigger
        starts with it."""
        trigger = self._install(job, cron, state, now=now)
        if self._nursery is None:
            self._pending.append(trigger)
        else:
            self._nursery.start_soon(trigger.run)

    def _install(
        self, job: Job[Any], cron: Cron, state: CronState, *, now: datetime
    ) -> CronTrigger:
        self.stop(job)
        zone = self.zone(cron)
        trigger = CronTrigger(
            job=job, cron=cron, group=self, slots=self._slots(cron, job.id), state=state, zone=zone
        )
        job._cron = cron
        job._on_run_end = trigger.on_run_end
        if job.status is not JobStatus.RUNNING:
            job._generation += 1  # drops a run request of a replaced schedule still in flight
            job._status = JobStatus.SCHEDULED
            due = state.next_run_at
            if due is not None and due.timestamp() < now.timestamp():
                trigger.replan(now.timestamp())
            trigger._publish()
        self._triggers[job] = trigger
        return trigger

    def resume(self, job: Job[Any]) -> None:
        """``job`` was resumed: its trigger goes on from the next slot after now."""
        trigger = self._triggers.get(job)
        if trigger is not None:
            trigger.resume(self.now())

    def stop(self, job: Job[Any]) -> None:
        """Stop the trigger of ``job`` if it has one (its task ends)."""
        trigger = self._triggers.pop(job, None)
        if trigger is not None:
            trigger.stop()
            job._on_run_end = None

    def _forget(self, trigger: CronTrigger) -> None:
        job = trigger._job
        if self._triggers.get(job) is trigger:
            del self._triggers[job]

    def _end_between_runs(self, job: Job[Any], status: JobStatus) -> None:
        self._outcomes.ended(job, status)

    def _slots(self, cron: Cron, job_id: str) -> Slots:
        expr = cron.compile(hash_id=job_id)
        key = (expr, self.zone(cron))
        memo = self._memos.get(key)
        if memo is None:
            if len(self._memos) >= _MAX_MEMOS:
                self._memos.clear()  # live triggers keep theirs; only sharing is lost
            memo = self._memos[key] = {}
        return Slots(expr, memo)
