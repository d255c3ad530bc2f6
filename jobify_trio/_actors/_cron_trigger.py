"""Cron trigger actors: one trio task per cron job.

A :class:`CronTrigger` owns the schedule of one cron :class:`~jobify_trio.Job`. It sleeps
on trio's clock until its next slot (the deadline is computed from the wall clock, like
the scheduler's timers, and the wall clock is read again on waking: an early wake sleeps
again), decides what to run with the pure :func:`~jobify_trio._misfire.plan_misfire`
when it woke late or a run overran later slots, sends :class:`RunJob` to the executor,
and waits for that run to end (retries included) before it looks at the next slot. So
runs of one cron job never overlap, and the next slot is computed from the previous
*scheduled* slot, never from the time a run ended.

:class:`CronTriggers` is the group the runtime owns: it holds the triggers' nursery,
starts/replaces/stops triggers, watches the wall clock for jumps (one wake per
:data:`JUMP_CHECK` seconds for all triggers, so idle crons cost nothing), and is the API
the storage layer uses (:meth:`CronTriggers.state`, :meth:`CronTriggers.restore`,
:attr:`CronTriggers.run_ended_hooks`).

A run ends through :class:`~jobify_trio._outcomes.Outcomes`, which calls the job's
``_on_run_end`` hook: the trigger counts the run (``run_count``, consecutive
``failures``), and either takes the job over again (status SCHEDULED, ``exec_at`` the next
slot) or lets it end (``max_runs`` reached, ``max_failures`` reached -> PERMANENTLY_FAILED,
or no slot left).
"""

from __future__ import annotations

import collections
import heapq
import math
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .._clock import WallClock, to_tz
from .._cron import Cron
from .._cron_expr import CronExhausted, CronExpression, CronIterator
from .._cron_state import CronState
from .._job import Job, JobStatus
from .._messages import RunJob
from .._misfire import plan_misfire

if TYPE_CHECKING:
    from .._outcomes import Outcomes
    from .._task import Task
    from ._executor import Executor

__all__ = [
    "CronRunEndedHook",
    "cron_call_arguments",
    "CronState",
    "CronTrigger",
    "CronTriggers",
    "declarative_job_id",
]

MISFIRE_TOLERANCE = 1.0
"""A trigger that wakes at most this many seconds after its slot, before the following
slot, is on time. Later than that (or past the following slot) is a misfire."""
EARLY_TOLERANCE = 0.001
"""A trigger that wakes at most this early by the wall clock fires (float rounding)."""
JUMP_CHECK = 60.0
"""How often the group compares the wall clock with trio's clock, in seconds."""
JUMP_THRESHOLD = 0.5
"""Drift between the two clocks, in seconds, that counts as a wall-clock jump."""
_MEMO_SIZE = 16
_MAX_MEMOS = 4096


def declarative_job_id(task_name: str) -> str:
    """The stable id of the cron job declared by ``@app.task(cron=...)``: ``"cron:<name>"``."""
    return f"cron:{task_name}"


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
None when the job ended: then ``job.status`` is final, e.g. PERMANENTLY_FAILED)."""


class _Slots:
    """Next-slot lookup for one trigger: its own iterator plus a memo shared by every
    trigger with the same expression and time zone (10,000 jobs of one schedule compute
    each slot once)."""

    __slots__ = ("_expr", "_iter", "_iter_last", "_memo")

    def __init__(self, expr: CronExpression, memo: dict[float, datetime | None]) -> None:
        self._expr = expr
        self._memo = memo
        self._iter: CronIterator | None = None
        self._iter_last = math.nan

    def after(self, moment: datetime) -> datetime | None:
        """The first slot strictly after ``moment``, or None when there is none."""
        key = moment.timestamp()
        memo = self._memo
        if key in memo:
            return memo[key]
        if memo:  # no slot lies between a memoized moment and its answer
            last = next(reversed(memo))
            answer = memo[last]
            if answer is not None and last < key < answer.timestamp():
                return answer
        if self._iter is None or self._iter_last != key:
            self._iter = self._expr.iterate(moment)
        try:
            following: datetime | None = self._iter.next()
        except CronExhausted:
            following = None
        self._iter_last = math.nan if following is None else following.timestamp()
        if len(memo) >= _MEMO_SIZE:
            del memo[next(iter(memo))]
        memo[key] = following
        return following

    def next_after(self, moment: datetime) -> datetime:
        """:meth:`after`, raising :class:`CronExhausted` at the end (for ``plan_misfire``)."""
        following = self.after(moment)
        if following is None:
            raise CronExhausted(self._expr.expression, moment)
        return following


class _AlarmEntry:
    __slots__ = ("deadline", "task")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.task: trio.lowlevel.Task | None = None

    def __lt__(self, other: _AlarmEntry) -> bool:
        return self.deadline < other.deadline


class _Alarm:
    """Wakes sleeping triggers at their trio deadlines: one heap and one sleeping task.

    Each trigger still sleeps in its own task until its own deadline; parking it here
    instead of in a cancel scope of its own costs a heap push instead of a trio deadline
    registration plus a raised and caught ``Cancelled`` per fire.
    """

    __slots__ = ("_heap", "_scope")

    def __init__(self) -> None:
        self._heap: list[_AlarmEntry] = []
        self._scope: trio.CancelScope | None = None

    async def sleep(self, entry: _AlarmEntry) -> None:
        """Park the calling task until ``entry.deadline`` (trio time); cancellable."""
        entry.task = trio.lowlevel.current_task()
        heapq.heappush(self._heap, entry)
        scope = self._scope
        if scope is not None and entry.deadline < scope.deadline:
            scope.deadline = entry.deadline

        def abort(_: object) -> trio.lowlevel.Abort:
            entry.task = None
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    def wake_early(self, entry: _AlarmEntry) -> None:
        """Wake the task parked on ``entry`` now."""
        task, entry.task = entry.task, None
        if task is not None:
            trio.lowlevel.reschedule(task)

    async def run(self) -> None:
        heap = self._heap
        while True:
            with trio.CancelScope(deadline=heap[0].deadline if heap else math.inf) as scope:
                self._scope = scope
                await trio.sleep_forever()
            self._scope = None
            now = trio.current_time()
            while heap and heap[0].deadline <= now:
                entry = heapq.heappop(heap)
                task, entry.task = entry.task, None
                if task is not None:
                    trio.lowlevel.reschedule(task)


class CronTrigger:
    """The actor of one cron job (see the module docs)."""

    __slots__ = (
        "_batch",
        "_cron",
        "_done",
        "_due",
        "_ended",
        "_group",
        "_inherited",
        "_job",
        "_last_status",
        "_more_missed",
        "_offset",
        "_scope",
        "_sleep_entry",
        "_slots",
        "failures",
        "run_count",
    )

    def __init__(
        self, *, job: Job[Any], cron: Cron, group: CronTriggers, slots: _Slots, state: CronState
    ) -> None:
        self._job = job
        self._cron = cron
        self._group = group
        self._slots = slots
        self._due = state.next_run_at
        self._offset = state.offset
        self.run_count = state.run_count
        self.failures = state.failures
        self._batch: collections.deque[datetime] = collections.deque()
        self._more_missed = False
        self._done: trio.Event | None = None
        self._ended = False
        self._inherited = job.status is JobStatus.RUNNING  # a run from before a replace
        self._last_status = JobStatus.SUCCESS
        self._scope = trio.CancelScope()
        self._sleep_entry: _AlarmEntry | None = None

    # -- state -----------------------------------------------------------------------------

    def state(self) -> CronState:
        """A snapshot of this job's progress."""
        return CronState(
            next_run_at=self._upcoming(),
            offset=self._offset,
            run_count=self.run_count,
            failures=self.failures,
        )

    def _upcoming(self) -> datetime | None:
        return self._batch[0] if self._batch else self._due

    def replan(self, now: datetime) -> None:
        """Decide what to run at ``now`` (the slot is due): on time, or per the misfire policy."""
        due = self._due
        if due is None or self._batch:
            return
        now_stamp = now.timestamp()
        following = self._slots.after(due)
        on_time = following is None or following.timestamp() > now_stamp
        if on_time and now_stamp - due.timestamp() <= MISFIRE_TOLERANCE:
            self._batch.append(due)
            self._due = following
            return
        plan = plan_misfire(
            self._cron.misfire_policy, due=due, now=now, next_after=self._slots.next_after
        )
        self._batch.extend(plan.run_now)
        self._due = plan.next_due
        self._more_missed = plan.more_missed
        if not plan.run_now and plan.next_due is not None:
            self._offset = due  # skipped slots still move the base forward

    def _publish(self) -> None:
        upcoming = self._upcoming()
        if upcoming is not None:
            self._job.exec_at = upcoming

    # -- the actor -------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Fire the job's slots until it ends or the trigger is stopped."""
        try:
            with self._scope:
                task_status.started()
                if self._inherited:
                    await self._wait_run_end()
                await self._loop()
        finally:
            self._group._forget(self)

    async def _loop(self) -> None:
        job = self._job
        while not self._ended:
            if not self._batch:
                due = self._due
                if due is None:
                    self._group._end_between_runs(job, self._last_status)
                    return
                await self._sleep_until(due.timestamp())
                self.replan(self._group.now())
                self._publish()
                continue
            slot = self._batch.popleft()
            self._offset = job.exec_at = slot
            job._generation += 1
            job.status = JobStatus.SCHEDULED
            self._done = trio.Event()
            await self._group.executor.submit(RunJob(job=job, generation=job._generation))
            await self._wait_run_end()

    async def _wait_run_end(self) -> None:
        done = self._done
        if done is None:
            done = self._done = trio.Event()
        await done.wait()
        self._done = None

    async def _sleep_until(self, due_stamp: float) -> None:
        clock, alarm = self._group.wall_clock, self._group.alarm
        while True:
            remaining = due_stamp - clock.now().timestamp()
            if remaining <= EARLY_TOLERANCE:
                return
            entry = self._sleep_entry = _AlarmEntry(trio.current_time() + remaining)
            await alarm.sleep(entry)
            self._sleep_entry = None

    def wake(self) -> None:
        """Re-read the wall clock now (used after a wall-clock jump)."""
        if self._sleep_entry is not None:
            self._group.alarm.wake_early(self._sleep_entry)

    def stop(self) -> None:
        """End this trigger's task (the job was cancelled or replaced)."""
        self._ended = True
        self._scope.cancel()

    # -- the end of a run (called by Outcomes through ``job._on_run_end``) -------------------

    def on_run_end(self, job: Job[Any]) -> bool:
        """Count the run that just ended; True if the job goes on (SCHEDULED again)."""
        if self._done is not None:
            self._done.set()
        else:
            self._done = trio.Event()
            self._done.set()
        if self._inherited:  # a run of the replaced schedule: not counted
            self._inherited = False
        else:
            self._count(job)
        goes_on = not self._ended and self._upcoming() is not None
        if goes_on:
            job.status = JobStatus.SCHEDULED
            job.exec_at = self._upcoming()  # type: ignore[assignment]
        else:
            self._ended = True
        hooks = self._group.run_ended_hooks
        if hooks:
            state = self.state() if goes_on else attrs.evolve(self.state(), next_run_at=None)
            for hook in hooks:
                hook(job, state)
        return goes_on

    def _count(self, job: Job[Any]) -> None:
        status = job.status
        self.run_count += 1
        self._last_status = status
        self.failures = 0 if status is JobStatus.SUCCESS else self.failures + 1
        cron = self._cron
        if self.failures >= cron.max_failures:
            job.status = JobStatus.PERMANENTLY_FAILED
            self._ended = True
        elif cron.max_runs is not None and self.run_count >= cron.max_runs:
            self._ended = True


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
        self._memos: dict[tuple[CronExpression, tzinfo], dict[float, datetime | None]] = {}
        self._nursery: trio.Nursery | None = None
        self._pending: list[CronTrigger] = []  # armed before the group started (restore)
        self.run_ended_hooks: list[CronRunEndedHook] = []
        self.alarm = _Alarm()
        # ids of restored cron jobs that had ended PERMANENTLY_FAILED, with their Cron: a
        # declarative cron unchanged in code is not started again for them.
        self.failed_ids: dict[str, Cron] = {}

    def __len__(self) -> int:
        return len(self._triggers)

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
            offset = self._clock_offset()
            while True:
                await trio.sleep(JUMP_CHECK)
                measured = self._clock_offset()
                if abs(measured - offset) > JUMP_THRESHOLD:
                    for trigger in list(self._triggers.values()):
                        trigger.wake()
                offset = measured

    def _clock_offset(self) -> float:
        return self.wall_clock.now().timestamp() - trio.current_time()

    def state(self, job: Job[Any]) -> CronState | None:
        """The progress of a live cron job (None if it has no trigger)."""
        trigger = self._triggers.get(job)
        return None if trigger is None else trigger.state()

    def first_state(
        self, job: Job[Any], cron: Cron, *, now: datetime, offset: datetime | None
    ) -> CronState:
        """Where a new (or replacing) cron job starts.

        A ``start_date`` (naive: the app's tz) is the first slot, exactly, unless
        ``offset`` is given (a replace that keeps its offset). Otherwise the first slot is
        the first one after ``offset`` (default ``now``).
        """
        if cron.start_date is not None and offset is None:
            first = to_tz(cron.start_date, self._tz)
            return CronState(next_run_at=first, offset=first)
        base = now if offset is None else offset
        return CronState(next_run_at=self._slots(cron, job.id).after(base), offset=base)

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
        trigger = CronTrigger(
            job=job, cron=cron, group=self, slots=self._slots(cron, job.id), state=state
        )
        job._cron = cron
        job._on_run_end = trigger.on_run_end
        if job.status is not JobStatus.RUNNING:
            job._generation += 1  # drops a run request of a replaced schedule still in flight
            job.status = JobStatus.SCHEDULED
            due = state.next_run_at
            if due is not None and due.timestamp() < now.timestamp():
                trigger.replan(now)
            trigger._publish()
        self._triggers[job] = trigger
        return trigger

    async def replace(self, job: Job[Any], cron: Cron, *, now: datetime) -> None:
        """Give the live cron ``job`` a new schedule: the same :class:`Job` object goes on.

        Its offset (previous scheduled slot) is kept unless ``start_date`` changed; its
        ``run_count`` and failures restart at 0. A run in progress finishes first (it is
        not counted); runs never overlap.
        """
        old_cron, old = job._cron, self.state(job)
        keep = old is not None and old_cron is not None and old_cron.start_date == cron.start_date
        offset = old.offset if keep and old is not None else None
        await self.arm(job, cron, self.first_state(job, cron, now=now, offset=offset), now=now)

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

    def _slots(self, cron: Cron, job_id: str) -> _Slots:
        expr = cron.compile(hash_id=job_id)
        key = (expr, self._tz)
        memo = self._memos.get(key)
        if memo is None:
            if len(self._memos) >= _MAX_MEMOS:
                self._memos.clear()  # live triggers keep theirs; only sharing is lost
            memo = self._memos[key] = {}
        return _Slots(expr, memo)
