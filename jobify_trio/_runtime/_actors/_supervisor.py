"""The retry supervisor actor: decides what a failed attempt leads to.

Executors report every failed or timed-out attempt as :class:`AttemptFailed`. The
supervisor asks the pure :func:`~jobify_trio._retry.decide_retry` whether to retry; a
retry is re-armed through the scheduler after the backoff (the executor is never held
during a backoff). When retries are exhausted or the exception is not retryable, it
resolves an exception handler level-first (task, routers, app) with the task's
:class:`~jobify_trio._handler_resolution.HandlerTable` and runs it in its own nursery,
inside a cancel scope that ``job.cancel()`` cancels; the handler's return value becomes
the result, a handler that raises fails the job. A graceful shutdown waits for running
handlers (:attr:`Supervisor.busy`) as it does for running attempts.

A sync handler runs in a thread through the runtime's ``run_in_thread`` (as THREAD-mode
jobs do): cancelling it abandons the thread, so neither ``job.cancel()`` nor leaving the
app waits for it. A handler's exception fails the job whatever its class, except those
that keep their meaning (:func:`~._executor.passes_through`).
"""

from __future__ import annotations

import functools
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import trio

from ..._core._clock import WallClock
from ..._core._job import Job, JobStatus, failure_status
from ..._core._messages import AttemptFailed, RunJob
from ..._policy._handler_resolution import ExceptionHandler, is_async_handler
from ..._policy._retry import RetryAfter, decide_retry
from .._outcomes import Outcomes
from ._executor import passes_through

__all__ = ["Supervisor"]

ContextFactory = Callable[[Job[Any], int], Any]
ThreadRunner = Callable[[Callable[[], Any]], Awaitable[Any]]


async def _to_thread(call: Callable[[], Any]) -> Any:
    return await trio.to_thread.run_sync(call, abandon_on_cancel=True)


class Supervisor:
    """Receives failed attempts; retries them, hands them to a handler, or fails the job."""

    def __init__(
        self,
        *,
        attempt_failed_receive: trio.MemoryReceiveChannel[AttemptFailed],
        outcomes: Outcomes,
        wall_clock: WallClock,
        make_context: ContextFactory,
        run_in_thread: ThreadRunner = _to_thread,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self._attempt_failed_receive = attempt_failed_receive
        self._run_in_thread = run_in_thread
        self._outcomes = outcomes
        self._wall_clock = wall_clock
        self._make_context = make_context
        self._uniform = uniform
        self._handlers_running = 0
        self.on_quiet: Callable[[], object] | None = None
        """Set while draining: called whenever :attr:`busy` may have dropped."""

    @property
    def busy(self) -> int:
        """Failures not yet decided plus exception handlers running now (shutdown waits)."""
        pending = self._attempt_failed_receive.statistics().current_buffer_used
        return pending + self._handlers_running

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Handle failures until cancelled or the inbox closes."""
        async with trio.open_nursery() as handlers:
            task_status.started()
            async for event in self._attempt_failed_receive:
                self._on_attempt_failed(event, handlers)
                if self.on_quiet is not None:
                    self.on_quiet()

    def _on_attempt_failed(self, event: AttemptFailed, handlers: trio.Nursery) -> None:
        job = event.job
        if event.generation != job._generation or job.status is JobStatus.CANCELLED:
            return
        job._exception = event.exception
        decision = decide_retry(
            job._task.options.retry,
            attempt=event.attempt,
            exc=event.exception,
            uniform=self._uniform,
        )
        if isinstance(decision, RetryAfter):
            job._exec_at = self._wall_clock.now() + timedelta(seconds=decision.delay)
            self._outcomes.rearm(job, attempt=decision.next_attempt)
            self._retrying(job, event.attempt, event.exception, decision)
            return
        handler = job._task.handlers.resolve(event.exception)
        if handler is None:
            self._fail(job, event.exception)
        else:
            self._handlers_running += 1  # counted from now: drain must not miss it
            handlers.start_soon(self._run_handler, handler, event)

    def _retrying(
        self, job: Job[Any], attempt: int, exc: BaseException, decision: RetryAfter
    ) -> None:
        for hook in self._outcomes.retry_hooks:
            hook(job, decision.next_attempt)
        events = self._outcomes.events
        if events is not None:
            events.retrying(job, attempt, exc, decision.next_attempt, decision.delay)

    def retry_at_once(self, command: RunJob, failure: BaseException) -> RunJob | None:
        """Decide a zero-backoff retry in the executor's worker, which then runs it itself.

        Only for policies with ``initial_delay == 0`` (every delay is then 0, nothing is
        random); returns the next attempt's command, or None to report the failure as an
        :class:`AttemptFailed` (a give-up is decided again, identically, by :meth:`run`).
        """
        job = command.job
        policy = job._task.options.retry
        if policy.initial_delay or job._generation != command.generation or job._paused:
            return None  # (a paused job's retry goes through the scheduler, which holds it)
        decision = decide_retry(policy, attempt=command.attempt, exc=failure, uniform=self._uniform)
        if not isinstance(decision, RetryAfter):
            return None
        job._exception = failure
        job._exec_at = self._wall_clock.now()
        job._generation += 1
        job._status = JobStatus.SCHEDULED
        self._retrying(job, command.attempt, failure, decision)
        return RunJob(job=job, generation=job._generation, attempt=decision.next_attempt)

    async def _run_handler(self, handler: ExceptionHandler, event: AttemptFailed) -> None:
        """Run ``handler`` in its own cancel scope, held as ``job._scope``: cancelling the
        job cancels it (a sync handler's thread is waited for, not killed)."""
        job = event.job
        try:
            if event.generation != job._generation:
                return  # cancelled or re-armed before the handler could start
            with trio.CancelScope() as scope:
                job._scope = scope
                try:
                    await self._handle(handler, event)
                finally:
                    if job._scope is scope:
                        job._scope = None
        finally:
            self._handlers_running -= 1
            if self.on_quiet is not None:
                self.on_quiet()

    async def _handle(self, handler: ExceptionHandler, event: AttemptFailed) -> None:
        job = event.job
        context = self._make_context(job, event.attempt)
        try:
            if is_async_handler(handler):
                result = await handler(event.exception, context)
            else:
                call = functools.partial(handler, event.exception, context)
                result = await self._run_in_thread(call)
        except BaseException as exc:
            passing = passes_through(exc)
            if passing is not None:
                raise passing  # noqa: B904 (it is exc, or exc's Cancelled part)
            if exc.__cause__ is None and exc is not event.exception:
                exc.__cause__ = event.exception
            if event.generation == job._generation:
                self._outcomes.failed(job, JobStatus.FAILED, exc)
            return
        if event.generation == job._generation:
            self._outcomes.succeeded(job, result)

    def _fail(self, job: Job[Any], exception: BaseException) -> None:
        status = failure_status(exception)
        self._outcomes.failed(job, status, exception)
