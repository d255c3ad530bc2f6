"""The executor actor: runs attempts of jobs, each in its own cancel scope.

Its inbox is a zero-buffer memory channel read by a pool of worker tasks. A sender
first offers a :class:`RunJob` to an idle worker (``send_nowait``); if none is idle and
the pool is below ``max_concurrency`` it starts one more worker with the message; else
it waits in ``send`` until a worker is free. So a burst never becomes an unbounded pile
of tasks: callers block instead (backpressure), and at most ``max_idle`` idle workers
are kept between bursts.

Successful runs end here (through :class:`~jobify_trio._outcomes.Outcomes`); failed and
timed-out attempts are reported to the supervisor as :class:`AttemptFailed`, which owns
retries and exception handlers.
"""

from __future__ import annotations

import math
from typing import Any

import trio

from .._job import Job, JobStatus
from .._messages import AttemptFailed, RunJob
from .._outcomes import Outcomes
from ..exceptions import JobTimeoutError

__all__ = ["Executor"]


class Executor:
    """A pool of worker tasks running :class:`RunJob` commands."""

    def __init__(
        self,
        *,
        outcomes: Outcomes,
        attempt_failed_send: trio.MemorySendChannel[AttemptFailed],
        max_concurrency: int,
        max_idle: int = 64,
    ) -> None:
        self._outcomes = outcomes
        self._attempt_failed_send = attempt_failed_send
        self._run_job_send, self._run_job_receive = trio.open_memory_channel[RunJob](0)
        self._max_concurrency = max_concurrency
        self._max_idle = max_idle
        self._workers = 0
        self._idle = 0
        self._nursery: trio.Nursery | None = None

    @property
    def running(self) -> int:
        """Number of worker tasks alive (busy or idle)."""
        return self._workers

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the workers' nursery until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    async def submit(self, command: RunJob) -> None:
        """Hand ``command`` to a worker, waiting for one if all are busy (backpressure)."""
        try:
            self._run_job_send.send_nowait(command)
        except trio.WouldBlock:
            if self._workers < self._max_concurrency and self._nursery is not None:
                self._workers += 1
                self._nursery.start_soon(self._worker, command)
            else:
                await self._run_job_send.send(command)
                return
        await trio.lowlevel.checkpoint()

    async def _worker(self, command: RunJob) -> None:
        receive = self._run_job_receive
        try:
            while True:
                await self._run_attempt(command)
                if self._idle >= self._max_idle:
                    return
                self._idle += 1
                try:
                    command = await receive.receive()
                finally:
                    self._idle -= 1
        finally:
            self._workers -= 1

    async def _run_attempt(self, command: RunJob) -> None:
        job = command.job
        if job._generation != command.generation or job.status is not JobStatus.SCHEDULED:
            return  # cancelled or re-armed after this command was sent
        job.status = JobStatus.RUNNING
        job._attempt = command.attempt
        task = job._task
        timeout = task.options.timeout
        scope = trio.CancelScope(
            deadline=math.inf if timeout is None else trio.current_time() + timeout
        )
        job._scope = scope
        failure: Exception | None = None
        result: Any = None
        with scope:
            try:
                result = await task._invoke(job._args, job._kwargs)
            except Exception as exc:
                failure = exc
        job._scope = None
        await self._report(command, job, scope, result, failure)

    async def _report(
        self,
        command: RunJob,
        job: Job[Any],
        scope: trio.CancelScope,
        result: Any,
        failure: Exception | None,
    ) -> None:
        if job.status is JobStatus.CANCELLED:
            return  # cancel() already ended the job
        if scope.cancelled_caught:
            timeout = job._task.options.timeout
            assert timeout is not None
            failure = JobTimeoutError(job.id, timeout)
        if failure is None:
            self._outcomes.succeeded(job, result)
            return
        await self._attempt_failed_send.send(
            AttemptFailed(
                job=job, generation=command.generation, attempt=command.attempt, exception=failure
            )
        )
