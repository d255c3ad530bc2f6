"""The job handle users hold: :class:`Job` and :class:`JobStatus`.

A :class:`Job` is a handle, not a value: the runtime's actors mutate it as the job moves
through its life, and users read it. Users never construct one; the app hands them out.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Generator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs
import trio

from ..exceptions import (
    JobCancelledError,
    JobFailedError,
    JobNotCompletedError,
    JobTimeoutError,
)

if TYPE_CHECKING:
    from .._api._task import Task

__all__ = ["FINAL_STATUSES", "Job", "JobStatus", "Rerun", "failure_status"]

R = TypeVar("R")


class JobStatus(enum.StrEnum):
    """Where a job is in its life. The values are Jobify's."""

    PENDING = "pending"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    CANCELLED = "cancelled"
    SUCCESS = "success"
    FAILED = "failed"
    TIMEOUT = "timeout"
    PERMANENTLY_FAILED = "permanently_failed"


FINAL_STATUSES = frozenset(
    {
        JobStatus.CANCELLED,
        JobStatus.SUCCESS,
        JobStatus.FAILED,
        JobStatus.TIMEOUT,
        JobStatus.PERMANENTLY_FAILED,
    }
)


@attrs.frozen(kw_only=True, slots=True)
class Rerun:
    """What a running job runs next, once its current run ends (a forced re-run or a replace)."""

    exec_at: datetime
    task: Task[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


def failure_status(exception: BaseException) -> JobStatus:
    """The status a run ends with after ``exception``: TIMEOUT for the job's own timeout."""
    return JobStatus.TIMEOUT if isinstance(exception, JobTimeoutError) else JobStatus.FAILED


_NO_RESULT: Any = object()
# A job that is scheduled again (cron, or a forced re-run) keeps its latest successful value.
_RESULT_READABLE = frozenset({JobStatus.SUCCESS, JobStatus.SCHEDULED, JobStatus.RUNNING})


class Job(Generic[R]):
    """A scheduled or running job, and its outcome once it ends.

    Obtained from ``task.push(...)``, ``task.schedule(...).at/delay/push/cron(...)``,
    :meth:`Jobify.find_job` and :meth:`Jobify.get_active_jobs`. There is no public
    constructor.
    """

    __slots__ = (
        "__weakref__",
        "_args",
        "_attempt",
        "_cancel_hook",
        "_cron",
        "_done_event",
        "_exception",
        "_exec_at",
        "_generation",
        "_hub_start",
        "_id",
        "_kwargs",
        "_on_run_end",
        "_pause_hook",
        "_paused",
        "_rerun",
        "_result",
        "_scope",
        "_status",
        "_task",
        "_timer",
    )

    _id: str
    _status: JobStatus
    _exec_at: datetime
    _exception: BaseException | None
    _task: Task[..., R]
    _args: tuple[Any, ...]
    _kwargs: dict[str, Any]
    _result: Any
    _done_event: trio.Event | None
    _scope: trio.CancelScope | None
    _timer: object | None
    _rerun: Rerun | None
    _attempt: int
    _generation: int
    _on_run_end: Callable[[Job[Any]], bool] | None
    _cron: Any
    _cancel_hook: Callable[[Job[Any]], Awaitable[None]]
    _pause_hook: Callable[[Job[Any], bool], Awaitable[None]] | None
    _paused: bool
    # the operations hub's record of the running attempt's start (its StartEntry), None
    # once that attempt ended; unset until the hub sees a start (see _ops._hub)
    _hub_start: tuple[Any, ...] | None

    def __init__(self) -> None:
        raise TypeError("Job has no public constructor; jobs come from task.push() or schedule()")

    @classmethod
    def _create(
        cls,
        *,
        job_id: str,
        task: Task[..., R],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        exec_at: datetime,
        cancel_hook: Callable[[Job[Any]], Awaitable[None]],
        pause_hook: Callable[[Job[Any], bool], Awaitable[None]] | None = None,
    ) -> Job[R]:
        self = object.__new__(cls)
        self._id = job_id
        self._status = JobStatus.PENDING
        self._exec_at = exec_at
        self._exception = None
        self._task = task
        self._args = args
        self._kwargs = kwargs
        self._result = _NO_RESULT
        self._done_event = None
        self._scope = None
        self._timer = None
        self._rerun = None
        self._attempt = 0
        self._generation = 0
        self._on_run_end = None
        self._cron = None
        self._cancel_hook = cancel_hook
        self._pause_hook = pause_hook
        self._paused = False
        return self

    # -- reading -------------------------------------------------------------------------

    @property
    def id(self) -> str:
        """The job's id (given as ``job_id=``, or generated)."""
        return self._id

    @property
    def status(self) -> JobStatus:
        """Where the job is in its life."""
        return self._status

    @property
    def exec_at(self) -> datetime:
        """When the job runs (next), aware, in the app's time zone."""
        return self._exec_at

    @property
    def exception(self) -> BaseException | None:
        """The exception of the latest failed attempt or run, if any."""
        return self._exception

    def is_done(self) -> bool:
        """True once the job has ended for good (success, failure, timeout or cancel)."""
        return self.status in FINAL_STATUSES

    @property
    def paused(self) -> bool:
        """True while the job is paused (see :meth:`pause`)."""
        return self._paused

    def is_cron(self) -> bool:
        """True for a cron job."""
        return self._cron is not None

    @property
    def cron_expression(self) -> str | None:
        """The cron expression of a cron job, else None."""
        return None if self._cron is None else str(self._cron.expression)

    @property
    def task_name(self) -> str:
        """The name of the task this job runs."""
        return self._task.name

    def result(self) -> R:
        """The job's value.

        SUCCESS returns the value (a job scheduled again, a cron job or a forced re-run,
        returns its latest successful value). FAILED raises ``JobFailedError`` with the
        original as ``__cause__``; TIMEOUT raises ``JobTimeoutError``; CANCELLED raises
        ``JobCancelledError``; a job that has not completed raises ``JobNotCompletedError``.
        """
        status = self.status
        if self._result is not _NO_RESULT and status in _RESULT_READABLE:
            return self._result  # type: ignore[no-any-return]
        if status is JobStatus.FAILED or status is JobStatus.PERMANENTLY_FAILED:
            exc = self.exception
            raise JobFailedError(self.id, f"job {self.id!r} failed: {exc!r}") from exc
        if status is JobStatus.TIMEOUT:
            timeout = self.exception
            assert isinstance(timeout, JobTimeoutError)
            raise JobTimeoutError(self.id, timeout.timeout) from None  # fresh: no traceback pile
        if status is JobStatus.CANCELLED:
            raise JobCancelledError(self.id)
        raise JobNotCompletedError(f"job {self.id!r} has not completed (status {status.value})")

    # -- waiting -------------------------------------------------------------------------

    async def wait(self) -> None:
        """Wait until the current run of the job ends (at once if it is done); never raises."""
        if self.status in FINAL_STATUSES:
            await trio.lowlevel.checkpoint()
            return
        event = self._done_event
        if event is None:
            event = self._done_event = trio.Event()
        await event.wait()

    def __await__(self) -> Generator[Any, None, R]:
        yield from self.wait().__await__()
        return self.result()

    async def cancel(self) -> None:
        """Cancel the job: a timer is disarmed, a running attempt cancelled, the row deleted.

        On a job that has already ended this changes nothing.
        """
        if self.status not in FINAL_STATUSES:
            await self._cancel_hook(self)
        else:
            await trio.lowlevel.checkpoint()

    async def pause(self) -> None:
        """Pause the job: it starts no run until :meth:`resume` (a run under way goes on).

        A paused cron job skips its slots; a paused one-off job that falls due waits for
        :meth:`resume`. A durable job's paused state is stored and survives a restart.
        Pausing a paused or ended job changes nothing.
        """
        await self._set_paused(True)

    async def resume(self) -> None:
        """Resume a paused job: a cron job goes on from its next slot after now (no
        catch-up); a one-off job that fell due meanwhile runs at once, else at its time."""
        await self._set_paused(False)

    async def _set_paused(self, paused: bool) -> None:
        hook = self._pause_hook
        if hook is None or self.status in FINAL_STATUSES or self._paused is paused:
            await trio.lowlevel.checkpoint()
            return
        await hook(self, paused)

    # -- used by the runtime -------------------------------------------------------------

    def _wake_waiters(self) -> None:
        event = self._done_event
        if event is not None:
            self._done_event = None
            event.set()

    def __repr__(self) -> str:
        cron = f", cron={self.cron_expression!r}" if self._cron is not None else ""
        cron += ", paused=True" if self._paused else ""
        return (
            f"<Job id={self.id!r}, task={self._task.name!r}, status={self.status.value!r}, "
            f"exec_at={self.exec_at.isoformat()!r}{cron}>"
        )
