"""The scheduler actor: one heap of one-off timers and one sleeping task.

It receives :class:`ArmTimer` / :class:`DisarmTimer` commands, keeps the timers in a
pure :class:`~jobify_trio._timer_heap.TimerHeap` keyed by trio deadlines, sleeps until
the earliest one (or a new command), and hands due jobs to the executor.

Wall time and trio time: ``job.exec_at`` is a wall-clock instant. The deadline is
``trio_now + (exec_at - wall_now)`` when the timer is armed. When a timer fires, the
wall clock is read again: if it says the job is still early (the wall clock was set
back), the timer is re-armed. The scheduler never sleeps longer than :data:`MAX_SLEEP`,
and on each wake compares the wall clock with trio's clock; if they drifted apart by
more than :data:`JUMP_THRESHOLD` (the wall clock was stepped), every deadline is
recomputed from its ``exec_at``.

A paused job's due command is held in ``job._timer`` (an :class:`ArmTimer`, not a heap
token) instead of going to the executor, until :meth:`~jobify_trio.Job.resume` sends it
again.
"""

from __future__ import annotations

import math
from typing import Any

import trio

from ..._core._clock import (
    EARLY_TOLERANCE,
    JUMP_CHECK,
    JUMP_THRESHOLD,
    WallClock,
    clock_offset,
    may_jump,
)
from ..._core._job import Job, JobStatus
from ..._core._messages import ArmTimer, DisarmTimer, RunJob, TimerMessage
from ..._policy._timer_heap import TimerHeap, TimerToken
from ._executor import Executor

__all__ = ["MAX_SLEEP", "Scheduler"]

MAX_SLEEP = JUMP_CHECK
"""Longest single sleep, in seconds: bounds how late a wall-clock jump is noticed."""


class Scheduler:
    """Owns the timers of one-off jobs and pending retries."""

    def __init__(
        self,
        *,
        timer_receive: trio.MemoryReceiveChannel[TimerMessage],
        executor: Executor,
        wall_clock: WallClock,
    ) -> None:
        self._timer_receive = timer_receive
        self._executor = executor
        self._wall_clock = wall_clock
        self._heap: TimerHeap[ArmTimer] = TimerHeap()
        self._offset = 0.0

    def __len__(self) -> int:
        return len(self._heap)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Receive commands and fire timers until cancelled or the inbox closes."""
        self._offset = self._measure_offset()
        max_sleep = MAX_SLEEP if may_jump(self._wall_clock) else math.inf
        task_status.started()
        receive = self._timer_receive
        while True:
            deadline = min(self._heap.next_deadline(), trio.current_time() + max_sleep)
            command: TimerMessage | None = None
            with trio.move_on_at(deadline):
                try:
                    command = await receive.receive()
                except trio.EndOfChannel:
                    return
            if command is not None:
                await self._handle(command)
                continue
            self._check_wall_clock_jump()
            for due in self._heap.pop_due(trio.current_time()):
                await self._fire(due)

    async def _handle(self, command: TimerMessage) -> None:
        job = command.job
        if isinstance(command, DisarmTimer):
            self._disarm(job)
            return
        if command.generation != job._generation:
            return
        self._disarm(job)
        remaining = self._seconds_until(job)
        if remaining <= EARLY_TOLERANCE:
            await self._submit(command)
        else:
            job._timer = self._heap.arm(trio.current_time() + remaining, command)

    def _disarm(self, job: Job[Any]) -> None:
        token = job._timer
        if isinstance(token, TimerToken):
            self._heap.disarm(token)
        job._timer = None

    async def _fire(self, command: ArmTimer) -> None:
        job = command.job
        job._timer = None
        if command.generation != job._generation or job.status is not JobStatus.SCHEDULED:
            return
        remaining = self._seconds_until(job)
        if remaining > EARLY_TOLERANCE:  # the wall clock was set back: still early
            job._timer = self._heap.arm(trio.current_time() + remaining, command)
            return
        await self._submit(command)

    async def _submit(self, command: ArmTimer) -> None:
        job = command.job
        if job._paused:  # held until resume() sends the command again
            job._timer = command
            return
        await self._executor.submit(
            RunJob(job=command.job, generation=command.generation, attempt=command.attempt)
        )

    def _seconds_until(self, job: Job[Any]) -> float:
        return (job.exec_at - self._wall_clock.now()).total_seconds()

    def _measure_offset(self) -> float:
        return clock_offset(self._wall_clock, trio.current_time())

    def _check_wall_clock_jump(self) -> None:
        offset = self._measure_offset()
        if abs(offset - self._offset) <= JUMP_THRESHOLD:
            return
        self._offset = offset
        live = self._heap.pop_due(float("inf"))
        for command in live:
            job = command.job
            job._timer = self._heap.arm(trio.current_time() + self._seconds_until(job), command)
