"""The executor actor: runs attempts of jobs inside cancel scopes (timeouts, cancel).

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
from collections.abc import Callable

import trio

from ..._core._job import JobStatus
from ..._core._messages import AttemptFailed, RunJob
from ...exceptions import JobTimeoutError
from .._outcomes import Outcomes

__all__ = ["Executor"]

IMMEDIATE_RETRY_CHECKPOINT = 8
"""A worker running zero-backoff retries of one job yields to others every this many."""


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
        self.retry_at_once: Callable[[RunJob, Exception], RunJob | None] | None = None
        """Set by the runtime to the supervisor's zero-backoff retry decision."""
        self._workers = 0
        self._idle = 0
        self._draining = False
        self.on_quiet: Callable[[], object] | None = None
        """Set while draining: called whenever :attr:`busy` may have dropped."""
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
                            command = await self._run_attempt(running, scope)
                            running = None
                            if command is not None:  # an immediate retry, run here
                                continue
                        if self._idle >= self._max_idle:
                            return
                        self._idle += 1
                        if self.on_quiet is not None:
                            self.on_quiet()
                        try:
                            command = await receive.receive()
                        finally:
                            self._idle -= 1
                if running is not None:  # the scope interrupted this attempt
                    command = await self._interrupted(running, scope)
        finally:
            self._workers -= 1
            if self.on_quiet is not None:
                self.on_quiet()

    async def _run_attempt(self, command: RunJob, scope: trio.CancelScope) -> RunJob | None:
        """Run one attempt; returns the next attempt's command for an immediate retry."""
        job = command.job
        if job._generation != command.generation or job._status is not JobStatus.SCHEDULED:
            return None  # cancelled or re-armed after this command was sent
        if self._draining:
            return None  # shutting down: the job stays scheduled (and stored, if durable)
        job._status = JobStatus.RUNNING
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
                await self._interrupted(command, scope, inline=False)
                return None
            return await self._failed(command, exc)
        job._scope = None
        if timeout is not None:
            scope.deadline = math.inf
        if job._status is JobStatus.RUNNING:  # (cancel() may have ended it meanwhile)
            self._outcomes.succeeded(job, result)
        return None

    async def _interrupted(
        self, command: RunJob, scope: trio.CancelScope, *, inline: bool = True
    ) -> RunJob | None:
        """The attempt was cut short by its scope: cancelled by the user, or timed out."""
        job = command.job
        job._scope = None
        if job.status is not JobStatus.RUNNING or job._generation != command.generation:
            return None  # cancel() already ended the job
        timeout = job._task.options.timeout
        if timeout is None:  # the app is shutting down
            return None
        return await self._failed(command, JobTimeoutError(job.id, timeout), inline=inline)

    async def _failed(
        self, command: RunJob, failure: Exception, *, inline: bool = True
    ) -> RunJob | None:
        """Report a failed attempt; a zero-backoff retry comes back to run in this worker."""
        job = command.job
        if job.status is not JobStatus.RUNNING:
            return None  # cancel() already ended the job
        retry_at_once = self.retry_at_once
        if inline and retry_at_once is not None:
            again = retry_at_once(command, failure)
            if again is not None:
                if again.attempt % IMMEDIATE_RETRY_CHECKPOINT == 0:
                    await trio.lowlevel.checkpoint()  # a long run of retries lets others run
                return again
        await self._attempt_failed_send.send(
            AttemptFailed(
                job=job, generation=command.generation, attempt=command.attempt, exception=failure
            )
        )
        return None
