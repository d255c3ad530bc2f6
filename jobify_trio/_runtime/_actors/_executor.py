"""The executor actor: runs attempts of jobs inside cancel scopes (timeouts, cancel).

Its inbox is a :class:`~._handoff.Handoff` (a zero-buffer rendezvous) read by a pool
of worker tasks. A sender first offers a :class:`RunJob` to an idle worker; if none is idle and
the pool is below ``max_concurrency`` it starts one more worker with the message; else
it waits in ``send`` until a worker is free. So a burst never becomes an unbounded pile
of tasks: callers block instead (backpressure), and at most ``max_idle`` idle workers
are kept between bursts.

A burst does not start one worker per job either: while a started worker has not run yet
(``_starting``), further commands wait in a *pending* queue (counted against
``max_concurrency``), which workers take before going idle. A worker that takes a command
from it while more wait starts one more worker if none is on its way, so jobs that finish
without blocking are run back to back by one worker (one task spawn per burst, not per
job), and jobs that block still get workers of their own, one more per scheduler pass.

A worker never waits for a worker. A job that schedules jobs (at any depth, through
middleware, or from its thread with ``trio.from_thread``) runs in a worker task, marked
by a context variable naming its executor (a job of one app scheduling on another app
waits like any outside producer); when the pool is full its commands go to an *overflow* queue
instead of waiting in ``send``, and every worker takes the overflow before it goes idle.
Otherwise a tree of jobs that push jobs would deadlock with every worker blocked in
``push()`` (:meth:`Executor.wait_to_send` asserts it is never reached from a worker).
The overflow holds only jobs pushed by running jobs: producers outside the pool still
wait, so memory stays bounded by what running jobs push.

A job's exception becomes its outcome, whatever its class: an ``Exception``, or any other
``BaseException`` (a custom subclass, ``GeneratorExit``) except trio's ``Cancelled``,
``KeyboardInterrupt`` and ``SystemExit``, which keep their meaning (:func:`passes_through`).
A job that overran its timeout (it swallowed the ``Cancelled``, or blocked the loop past
its deadline) ends TIMEOUT even if it returned.

Successful runs end here (through :class:`~jobify_trio._outcomes.Outcomes`); failed and
timed-out attempts are reported to the supervisor as :class:`AttemptFailed`, which owns
retries and exception handlers.
"""

from __future__ import annotations

import collections
import contextvars
import math
from collections.abc import Callable
from typing import Any, Protocol

import trio

from ..._core._job import Job, JobStatus
from ..._core._messages import AttemptFailed, RunJob
from ...exceptions import JobTimeoutError
from .._outcomes import Outcomes
from ._handoff import Handoff

__all__ = ["Executor", "in_worker", "not_a_worker", "passes_through"]

_WORKER_OF: contextvars.ContextVar[Executor | None] = contextvars.ContextVar(
    "jobify_trio_worker_of", default=None
)
"""The executor whose worker runs the current task (or the job that started it)."""

_FATAL = (KeyboardInterrupt, SystemExit)


def in_worker(executor: Executor) -> bool:
    """True in a worker task of ``executor`` (and in the tasks and threads a job it runs
    starts)."""
    return _WORKER_OF.get() is executor


def not_a_worker() -> None:
    """Mark the current task as no worker: for actor tasks a running job may start (a cron
    trigger inherits the context of the job that scheduled it)."""
    _WORKER_OF.set(None)


def passes_through(exc: BaseException) -> BaseException | None:
    """What to raise on instead of failing the job with ``exc``, or None to fail it.

    ``Cancelled``, ``KeyboardInterrupt`` and ``SystemExit`` keep their meaning. A group
    holding ``KeyboardInterrupt``/``SystemExit`` is raised as it is; a group holding
    ``Cancelled`` raises only its ``Cancelled`` part (the job is being cancelled: its other
    errors are dropped), so the cancel scope that owns it can swallow all of it.
    """
    if isinstance(exc, trio.Cancelled | KeyboardInterrupt | SystemExit):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        if exc.subgroup(_FATAL) is not None:
            return exc
        return exc.subgroup(trio.Cancelled)
    return None


_SCHEDULED, _RUNNING = JobStatus.SCHEDULED, JobStatus.RUNNING


class Fence(Protocol):
    """The sharing protocol's lease check before a run (``_sharing._fence.LeaseFence``)."""

    def holds(self, job: Job[Any]) -> bool: ...

    async def confirm(self, job: Job[Any]) -> None: ...


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
        self._inbox: Handoff[RunJob] = Handoff()
        self._max_concurrency = max_concurrency
        self._max_idle = max_idle
        self.retry_at_once: Callable[[RunJob, BaseException], RunJob | None] | None = None
        """Set by the runtime to the supervisor's zero-backoff retry decision."""
        self._overflow: collections.deque[RunJob] = collections.deque()
        self._pending: collections.deque[RunJob] = collections.deque()
        self._starting = 0  # workers started that have not run yet
        self._workers = 0
        self._draining = False
        self.on_quiet: Callable[[], object] | None = None
        """Set while draining: called whenever :attr:`busy` may have dropped."""
        self._nursery: trio.Nursery | None = None
        self.on_full: Callable[[RunJob], bool] | None = None
        """Set by the sharing protocol: hands a job to other instances when no worker is
        free (True: the command was taken and must not be run here)."""
        self.fence: Fence | None = None
        """Set by the sharing protocol: a job starts only while its lease surely holds."""

    @property
    def running(self) -> int:
        """Number of worker tasks alive (busy or idle)."""
        return self._workers

    @property
    def busy(self) -> int:
        """Number of workers running an attempt right now (and commands about to)."""
        return self._workers - self._inbox.idle + len(self._pending)

    def drain(self) -> None:
        """Start no attempt from now on (graceful shutdown); running ones go on."""
        self._draining = True

    @property
    def overflowing(self) -> int:
        """Commands pushed by running jobs that wait for a worker (see the module docs)."""
        return len(self._overflow)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the workers' nursery until cancelled; then senders still waiting get
        ``BrokenResourceError`` instead of waiting forever."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._inbox.close()

    def offer(self, command: RunJob, *, fresh: bool = False) -> bool:
        """Hand ``command`` over without waiting; False if the caller must :meth:`wait_to_send`.

        An idle worker takes it, or a new one is started below ``max_concurrency``; in a
        worker task (a job scheduling a job) it goes to the overflow queue. ``fresh``: the
        first run of a job just pushed, which a worker may start in this very scheduler
        pass (see :mod:`._handoff`).
        """
        inbox = self._inbox
        if not (inbox.give(command) if fresh else inbox.wake(command)):
            if self._workers + len(self._pending) < self._max_concurrency and self._nursery:
                if self._starting:  # a worker is on its way: it takes this one (module docs)
                    self._pending.append(command)
                else:
                    self._start_worker(command)
            elif _WORKER_OF.get() is self:
                self._overflow.append(command)  # a worker never waits for a worker
            else:
                on_full = self.on_full  # sharing: another instance may run it
                return on_full is not None and on_full(command)
        return True

    def _start_worker(self, command: RunJob | None) -> None:
        assert self._nursery is not None
        self._workers += 1
        self._starting += 1
        self._nursery.start_soon(self._worker, command)

    def _take_pending(self) -> RunJob:
        """The next pending command; one more worker is started if more wait (module docs)."""
        command = self._pending.popleft()
        if self._pending and not self._starting and self._workers < self._max_concurrency:
            self._start_worker(None)
        return command

    async def wait_to_send(self, command: RunJob, *, fresh: bool = False) -> None:
        """Wait for a free worker and hand it ``command`` (backpressure); ``fresh`` as
        for :meth:`offer`.

        If this raises (cancelled, or ``BrokenResourceError`` once the pool is gone),
        ``command`` was not handed over.
        """
        assert _WORKER_OF.get() is not self, "a worker must never wait for executor capacity"
        await self._inbox.send(command, fresh=fresh)

    async def submit(self, command: RunJob) -> None:
        """Hand ``command`` to a worker, waiting for one if all are busy (backpressure).

        Used by the scheduler and the cron triggers; once the pool is gone (the app
        stops) the command is dropped: the job stays scheduled until the runtime ends it.
        """
        if self.offer(command):
            await trio.lowlevel.checkpoint()
            return
        try:
            await self.wait_to_send(command)
        except trio.BrokenResourceError:
            await trio.lowlevel.checkpoint()

    async def _worker(self, command: RunJob | None) -> None:
        """Run commands until idle workers are plentiful.

        Entering a cancel scope costs several microseconds, so a worker does not open one
        per attempt: it runs attempts inside one scope until that scope is cancelled (a
        running job was cancelled, or its timeout set the scope's deadline), then opens
        a fresh one. ``job._scope`` points at the scope only while the job runs.
        """
        _WORKER_OF.set(self)
        self._starting -= 1
        if self._pending and not self._starting and self._workers < self._max_concurrency:
            self._start_worker(None)  # if this worker's command blocks, pending ones don't wait
        inbox = self._inbox
        overflow, pending = self._overflow, self._pending
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
                        if scope.cancel_called:  # a cancelled job swallowed its Cancelled:
                            break  # run nothing more in this scope, open a fresh one
                        if overflow:  # jobs pushed by jobs go before anything new
                            command = overflow.popleft()
                            continue
                        if pending:
                            command = self._take_pending()
                            continue
                        if inbox.idle >= self._max_idle:
                            return
                        if self.on_quiet is not None:
                            self.on_quiet()
                        command = await inbox.take()
                if running is not None:  # the scope interrupted this attempt
                    command = await self._interrupted(running, scope)
        finally:
            self._workers -= 1
            if self.on_quiet is not None:
                self.on_quiet()

    async def _run_attempt(self, command: RunJob, scope: trio.CancelScope) -> RunJob | None:
        """Run one attempt; returns the next attempt's command for an immediate retry."""
        job = command.job
        if job._generation != command.generation or job._status is not _SCHEDULED:
            return None  # cancelled or re-armed after this command was sent
        fence = self.fence
        if fence is not None:
            while not fence.holds(job):  # our lease may be lost: renew (or learn) first
                await fence.confirm(job)
                if job._generation != command.generation or job._status is not _SCHEDULED:
                    return None  # another instance took it: it runs there
        if self._draining:
            return None  # shutting down: the job stays scheduled (and stored, if durable)
        job._status = _RUNNING
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
                direct = task._direct  # (an async def: called here, not through _invoke)
                if direct is not None:
                    result = await direct(*job._args, **job._kwargs)
                else:
                    result = await task._invoke(job._args, job._kwargs)
            else:
                result = await runner(job, command.attempt)
        except Exception as exc:
            return await self._raised(command, scope, exc, timed=timeout is not None)
        except BaseException as exc:
            passing = passes_through(exc)
            if passing is not None:
                raise passing  # noqa: B904 (it is exc, or exc's Cancelled part)
            return await self._raised(command, scope, exc, timed=timeout is not None)
        job._scope = None
        if timeout is not None:
            if scope.cancel_called or trio.current_time() >= scope.deadline:
                # it swallowed its Cancelled, or blocked the loop past its deadline
                await self._interrupted(command, scope, inline=False)
                return None
            scope.deadline = math.inf
        if job._status is _RUNNING:  # (cancel() may have ended it meanwhile)
            self._outcomes.succeeded(job, result)
        return None

    async def _raised(
        self, command: RunJob, scope: trio.CancelScope, exc: BaseException, *, timed: bool
    ) -> RunJob | None:
        """The attempt raised ``exc`` (not one that passes through)."""
        command.job._scope = None
        if scope.cancel_called:  # the job turned our Cancelled into an exception
            await self._interrupted(command, scope, inline=False)
            return None
        if timed:
            scope.deadline = math.inf
        return await self._failed(command, exc)

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
        self, command: RunJob, failure: BaseException, *, inline: bool = True
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
