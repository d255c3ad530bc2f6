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

import trio

from .._job import JobStatus
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
        self._draining = False
        self._nursery: trio.Nursery | None = None

    @property
    def running(self) -> int:
        """Number of worker tasks alive (busy or idle)."""
        return self._workers

    @property
    def busy(self) -> int:
        """Number of workers running an attempt right now."""
        return self._workers - self._idle

    def drain(self) -> None:
        """Start no attempt from now on (graceful shutdown); running ones go on."""
        self._draining = True

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

    async def _worker(self, command: RunJob | None) -> None:
        """Run commands until idle workers are plentiful.

        Entering a cancel scope costs several microseconds, so a worker does not open one
        per attempt: it runs attempts inside one scope until that scope is cancelled (a
        running job was cancelled, or its timeout set the scope's deadline), then opens
        a fresh one. ``job._scope`` points at the scope only while the job runs.
        """
        receive = self._run_job_receive
        try:
            while True:
                running: RunJob | None = None
                with trio.CancelScope() as scope:
                    while True:
                        if command is not None:
                            running, command = command, None
                            await self._run_attempt(running, scope)
                            running = None
                        if self._idle >= self._max_idle:
                            return
                        self._idle += 1
                        try:
                            command = await receive.receive()
                        finally:
                            self._idle -= 1
                if running is not None:  # the scope interrupted this attempt
                    await self._interrupted(running, scope)
        finally:
            self._workers -= 1

    async def _run_attempt(self, command: RunJob, scope: trio.CancelScope) -> None:
        job = command.job
        if job._generation != command.generation or job.status is not JobStatus.SCHEDULED:
            return  # cancelled or re-armed after this command was sent
        if self._draining:
            return  # shutting down: the job stays scheduled (and stored, if durable)
        job.status = JobStatus.RUNNING
        job._attempt = command.attempt
        events = self._outcomes.events
        if events is not None:
            events.started(job, command.attempt)
        task = job._task
        runner = task._runner  # middleware / INJECT: the runner applies the timeout itself
        timeout = task.options.timeout if runner is None else None
        if timeout is not None:
            scope.deadline = trio.current_time() + timeout
        job._scope = scope
        try:
            if runner is None:
                result = await task._invoke(job._args, job._kwargs)
            else:
                result = await runner(job, command.attempt)
        except Exception as exc:
            job._scope = None
            if timeout is not None and not scope.cancel_called:
                scope.deadline = math.inf
            if scope.cancel_called:  # the job turned our Cancelled into an exception
                await self._interrupted(command, scope)
            else:
                await self._failed(command, exc)
            return
        job._scope = None
        if timeout is not None:
            scope.deadline = math.inf
        if job.status is JobStatus.RUNNING:
            self._outcomes.succeeded(job, result)

    async def _interrupted(self, command: RunJob, scope: trio.CancelScope) -> None:
        """The attempt was cut short by its scope: cancelled by the user, or timed out."""
        job = command.job
        job._scope = None
        if job.status is not JobStatus.RUNNING or job._generation != command.generation:
            return  # cancel() already ended the job
        timeout = job._task.options.timeout
        if timeout is not None:  # else the app is shutting down
            await self._failed(command, JobTimeoutError(job.id, timeout))

    async def _failed(self, command: RunJob, failure: Exception) -> None:
        job = command.job
        if job.status is not JobStatus.RUNNING:
            return  # cancel() already ended the job
        await self._attempt_failed_send.send(
            AttemptFailed(
                job=job, generation=command.generation, attempt=command.attempt, exception=failure
            )
        )
