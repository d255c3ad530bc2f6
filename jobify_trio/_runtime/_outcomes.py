"""Where a run of a job ends: status, result, waiters, re-runs and the registry.

Every actor that ends a run (an executor on success, the supervisor after a failure,
the facade on cancel) goes through :class:`Outcomes`, so the bookkeeping of an ending
run lives in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from .._core._job import Job, JobStatus
from .._core._messages import ArmTimer, TimerMessage
from ._registry import JobRegistry

if TYPE_CHECKING:
    from ._dispatch import EventDispatcher

__all__ = ["Outcomes", "RunEndHook"]

RunEndHook = Callable[[Job[Any]], bool]
"""Called when a run ends; returns True if it took over the job (a cron trigger re-arms it)."""


class Outcomes:
    """Applies the outcome of a run to its :class:`Job` and tells whoever must know."""

    __slots__ = (
        "_registry",
        "_timer_send",
        "events",
        "job_ended_hooks",
        "result_check",
        "retry_hooks",
    )

    def __init__(
        self, *, registry: JobRegistry, timer_send: trio.MemorySendChannel[TimerMessage]
    ) -> None:
        self._registry = registry
        self._timer_send = timer_send
        self.job_ended_hooks: list[Callable[[Job[Any]], None]] = []
        # called with (job, next attempt) when a retry is armed (storage records it)
        self.retry_hooks: list[Callable[[Job[Any], int], None]] = []
        self.events: EventDispatcher | None = None  # set only when the app has listeners
        # set by the sharing protocol: the error ending a run whose result cannot travel
        self.result_check: Callable[[Job[Any], Any], BaseException | None] | None = None

    def succeeded(self, job: Job[Any], result: Any) -> None:
        """The run returned ``result`` (or a handler turned its failure into it)."""
        check = self.result_check
        if check is not None:
            error = check(job, result)
            if error is not None:
                self.failed(job, JobStatus.FAILED, error)
                return
        job._result = result
        job._exception = None
        self._end_run(job, _SUCCESS)
        events = self.events
        if events is not None and job._status is not _CANCELLED:
            events.ended(job, _SUCCESS)

    def failed(self, job: Job[Any], status: JobStatus, exception: BaseException) -> None:
        """The run ended without success for good (FAILED or TIMEOUT)."""
        job._exception = exception
        self._end_run(job, status)
        events = self.events
        if events is not None and job.status is not JobStatus.CANCELLED:
            events.ended(job, status)

    def cancelled(self, job: Job[Any], *, shutting_down: bool = False) -> None:
        """The job was cancelled: it ends now, whatever it was doing.

        At shutdown the ``job_ended_hooks`` are not told: a durable job stays stored.
        """
        job._rerun = None
        job._generation += 1
        if job._scope is not None:
            job._scope.cancel()
        was_running = job.status is JobStatus.RUNNING
        job._status = JobStatus.CANCELLED
        self._finish(job, notify=not shutting_down)
        events = self.events
        if events is not None and (was_running or not shutting_down):
            events.ended(job, JobStatus.CANCELLED)

    def withdrawn(self, job: Job[Any], generation: int) -> None:
        """A scheduling call was cancelled before it handed ``job`` over: the job never
        existed. It leaves the registry (a durable job's row is deleted by the
        ``job_ended_hooks``); no event is sent, as none was for its start.

        Does nothing if someone else took the job over meanwhile (cancelled it, or re-armed
        it with ``replace=True``): ``generation`` is the one the call gave it.
        """
        if job._generation != generation:
            return
        job._generation += 1
        job._status = JobStatus.CANCELLED
        self._finish(job)

    def ended(self, job: Job[Any], status: JobStatus) -> None:
        """``job`` ends between runs with the final ``status`` (a cron job with no slot left)."""
        job._status = status
        self._finish(job)

    def _end_run(self, job: Job[Any], status: JobStatus) -> None:
        if job._status is _CANCELLED:  # cancelled while its outcome was on the way
            return
        job._status = status
        hook = job._on_run_end
        if hook is not None and hook(job):
            job._wake_waiters()
            return
        rerun = job._rerun
        if rerun is not None:
            job._rerun = None
            job._wake_waiters()
            job._task, job._args, job._kwargs = rerun.task, rerun.args, rerun.kwargs
            job._exec_at = rerun.exec_at
            self.rearm(job)
            return
        self._finish(job)

    def rearm(self, job: Job[Any], *, attempt: int = 1) -> None:
        """Arm ``job`` again for its ``exec_at`` (the scheduler runs it at once if due)."""
        job._generation += 1
        job._status = JobStatus.SCHEDULED
        self._timer_send.send_nowait(ArmTimer(job=job, generation=job._generation, attempt=attempt))

    def _finish(self, job: Job[Any], *, notify: bool = True) -> None:
        if job._done_event is not None:
            job._wake_waiters()
        self._registry.discard(job)
        if notify:
            for hook in self.job_ended_hooks:
                hook(job)


_SUCCESS, _CANCELLED = JobStatus.SUCCESS, JobStatus.CANCELLED
