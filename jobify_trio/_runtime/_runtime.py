"""One running session of an app: the actors, their channels, and the scheduling facade.

A :class:`Runtime` lives for one ``async with app:`` block. It opens one nursery and
starts the actors in it with ``nursery.start`` (so each is ready when ``__aenter__``
returns): the executor (worker pool), the retry supervisor and the scheduler (timers).
Channels::

    facade ──push──────────────────────────────▶ executor ──AttemptFailed──▶ supervisor
    facade ──ArmTimer/DisarmTimer──▶ scheduler ──RunJob──▶ executor              │
                                        ▲                                       │
                                        └──────────ArmTimer (retry) ────────────┘

Only the executor's inbox is bounded (zero buffer plus a bounded worker pool): that is
where backpressure comes from. The scheduler's and supervisor's inboxes are unbounded,
but each message stands for a job that is already held in memory (a pending timer or a
finished attempt), so they grow only with the number of jobs, never with time.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import warnings
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import trio
import trio_parallel

from .._core._clock import WallClock, now_reader, to_tz
from .._core._context import JobContext
from .._core._job import FINAL_STATUSES, Job, JobStatus
from .._core._messages import AttemptFailed, DisarmTimer, RunJob, TimerMessage
from .._sharing._session import Sharing, start_sharing
from .._storage._durability import Durability, attach_durability
from ..exceptions import ApplicationStateError, DuplicateJobError
from ..storage import StorageError, Trigger
from . import _cron_runtime, _pause, _replace, _thread_jobs
from ._actors._cron_trigger import CronTriggers
from ._actors._executor import Executor
from ._actors._scheduler import Scheduler
from ._actors._supervisor import Supervisor
from ._dispatch import EventDispatcher
from ._outcomes import Outcomes
from ._registry import JobRegistry
from ._thread_jobs import ThreadJobs

if TYPE_CHECKING:
    from .._api._app import Jobify
    from .._api._task import Task
    from .._cron._values import Cron

__all__ = ["Runtime"]


class Runtime:
    """The actors of one app session and the operations the public facade calls."""

    def __init__(
        self, app: Jobify, *, nursery: trio.Nursery, processes: trio_parallel.WorkerContext
    ):
        self.app = app
        self.registry = JobRegistry()
        self._nursery = nursery
        self._processes = processes
        self._threads = ThreadJobs()
        self._wall_clock: WallClock = app.wall_clock
        self._tz = app.tz
        self._now = now_reader(self._wall_clock, self._tz)
        self._ids = itertools.count(1)
        self._id_prefix = os.urandom(6).hex() + "-"
        self._closed = False
        self._timer_send, timer_receive = trio.open_memory_channel[TimerMessage](math.inf)
        failed_send, failed_receive = trio.open_memory_channel[AttemptFailed](math.inf)
        self.outcomes = Outcomes(registry=self.registry, timer_send=self._timer_send)
        if app._listeners:
            self.outcomes.events = EventDispatcher(app._listeners, self._wall_clock)
        self.executor = Executor(
            outcomes=self.outcomes,
            attempt_failed_send=failed_send,
            max_concurrency=app.max_concurrency,
        )
        self.supervisor = Supervisor(
            attempt_failed_receive=failed_receive,
            outcomes=self.outcomes,
            wall_clock=self._wall_clock,
            make_context=self.make_context,
            run_in_thread=self.run_in_thread,
        )
        self.executor.retry_at_once = self.supervisor.retry_at_once  # zero-backoff retries
        self.scheduler = Scheduler(
            timer_receive=timer_receive, executor=self.executor, wall_clock=self._wall_clock
        )
        self.cron_triggers = CronTriggers(
            executor=self.executor, outcomes=self.outcomes, wall_clock=self._wall_clock, tz=self._tz
        )
        self.durability: Durability | None = attach_durability(self)
        self.sharing: Sharing | None = None  # set at start when the store has presence

    async def start(self) -> None:
        """Start every actor; returns when all are ready."""
        if self.durability is not None:  # storage is open: restore, then start the actors
            self.sharing = await start_sharing(self, self.durability)
            if self.sharing is not None and self.outcomes.events is not None:
                self.outcomes.events.instance = self.sharing.me
            await self.durability.start(self, self._nursery)
            if self.sharing is not None:
                await self.sharing.start(self._nursery)
        if self.outcomes.events is not None:
            await self.outcomes.events.app_starting(self)
        _cron_runtime.attach_storage(self)
        await self._nursery.start(self.executor.run)
        await self._nursery.start(self.supervisor.run)
        await self._nursery.start(self.scheduler.run)
        await self._nursery.start(self.cron_triggers.run)

    async def drain(self, grace: float) -> None:
        """Refuse new jobs, start no attempt, and give running attempts and exception
        handlers ``grace`` seconds."""
        self._closed = True
        self.executor.drain()
        quiet = trio.lowlevel.ParkingLot()  # woken whenever either actor's busy count drops
        self.executor.on_quiet = self.supervisor.on_quiet = quiet.unpark_all
        with trio.move_on_after(grace):
            while self.executor.busy or self.supervisor.busy:
                await quiet.park()

    async def stop(self) -> None:
        """Refuse new jobs, cancel the actors and running jobs, and wait for them."""
        self._closed = True
        self._nursery.cancel_scope.cancel()

    async def after_stop(self) -> None:
        """Once the nursery has exited: wait a bounded time for job threads (abandoned
        after ``EXIT_GRACE``, with a warning), end every job still active."""
        abandoned = await self._threads.wait_exit_grace()
        for job in self.registry:
            self.outcomes.cancelled(job, shutting_down=True)
        if self.outcomes.events is not None:
            self.outcomes.events.app_stopping()
        if self.durability is not None:
            await self.durability.writer.flush()
        if self.sharing is not None:
            await self.sharing.stop()
        if abandoned:
            warnings.warn(
                f"{abandoned} job thread(s) still running {_thread_jobs.EXIT_GRACE:g} s after "
                "the app stopped were abandoned; they run on until their functions return",
                RuntimeWarning,
                stacklevel=1,
            )

    # -- helpers the actors and tasks use ------------------------------------------------

    def now(self) -> datetime:
        """The wall clock's time in the app's tz."""
        return self._now()

    def make_context(self, job: Job[Any], attempt: int) -> JobContext:
        """A fresh :class:`JobContext` for one attempt (or its exception handler)."""
        return JobContext.for_attempt(self.app, job, attempt)

    async def run_in_thread(self, call: Callable[[], Any]) -> Any:
        """Run a sync job function in a worker thread; abandoned (not killed) on cancel."""
        return await self._threads.run(call)

    async def run_in_process(self, call: functools.partial[Any]) -> Any:
        """Run a sync job function in a worker process; the process is killed on cancel."""
        return await self._processes.run_sync(call, kill_on_cancel=True)

    # -- scheduling ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ApplicationStateError("the app is shutting down; no new jobs are accepted")

    def _active(self, job_id: str | None, replace: bool) -> Job[Any] | None:
        """The active job under ``job_id`` that ``replace`` allows replacing, or None."""
        if job_id is None:
            return None
        existing = self.registry.get(job_id)
        if existing is not None and not replace:
            raise DuplicateJobError(job_id)
        return existing

    def _active_one_off(self, job_id: str | None, replace: bool) -> Job[Any] | None:
        """The active one-off job ``push``/``at`` would replace, or None for a new job."""
        existing = self._active(job_id, replace) if job_id is not None else None
        if existing is not None and existing._cron is not None:
            raise DuplicateJobError(
                existing.id, "it is a cron job: cancel it before reusing its id for a one-off job"
            )
        return existing

    def _new_job(
        self,
        task: Task[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        job_id: str | None,
        exec_at: datetime,
    ) -> Job[Any]:
        if job_id is None:
            job_id = f"{self._id_prefix}{next(self._ids)}"
        job: Job[Any] = Job._create(
            job_id=job_id,
            task=task,
            args=args,
            kwargs=kwargs,
            exec_at=exec_at,
            cancel_hook=self.cancel,
            pause_hook=self.set_paused,
        )
        self.registry.add(job)
        return job

    async def push(
        self,
        task: Task[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        job_id: str | None = None,
        replace: bool = False,
        force: bool = False,
    ) -> Job[Any]:
        """Run now (see contract §4 for ``job_id``/``replace``/``force``).

        If it raises (cancelled while it waits for a free worker, say), the job was never
        scheduled: it is forgotten (and a durable job's row deleted), see :meth:`_hand_over`.
        """
        if self._closed:
            self._check_open()  # raises
        await trio.lowlevel.checkpoint_if_cancelled()
        stored = None if self.durability is None else self.durability.prepare(task, args, kwargs)
        existing = None if job_id is None else self._active_one_off(job_id, replace)
        if existing is not None:
            now = self.now()
            return await _replace.replace_one_off(
                self, existing, task, args, kwargs, now, Trigger.PUSH, stored, force
            )
        if job_id is not None and stored is not None and self.sharing is not None:
            elsewhere = await self.sharing.check_id(
                job_id, replace, Trigger.PUSH, self.now(), stored, force
            )
            if elsewhere is not None:
                return elsewhere
        job, yielded = self._new_job(task, args, kwargs, job_id, self._now()), False
        fresh = job_id is None  # (a generated id: the row may be journaled, see _journal.py)
        if stored is not None and not self.durability.pushed_now(job, stored, fresh):  # type: ignore[union-attr]
            yielded = await self._store(job, Trigger.PUSH, stored, new=True, made_id=fresh)
            if not self._armable(job):
                return job
        job._status = JobStatus.SCHEDULED
        job._generation = 1
        command = RunJob(job=job, generation=1)
        if self.executor.offer(command, fresh=True):
            # Handed over: the call succeeds. A commit that waited for the database was
            # this call's schedule point: another would run everything the commit's wait
            # could have overlapped (the job itself) before a sequential caller's next push.
            if not yielded:
                await trio.lowlevel.cancel_shielded_checkpoint()
            return job
        await self._hand_over(command)
        return job

    async def _hand_over(self, command: RunJob) -> None:
        """Wait for a free worker (backpressure; a worker never gets here: jobs that push
        jobs overflow instead, see ``Executor.offer``). Cancelled while waiting (or the app
        stopped meanwhile), the job is withdrawn: it leaves the registry and a durable job's
        committed row is deleted (queued at once and committed with the next batch: a crash
        in between restores it, at least once)."""
        try:
            await self.executor.wait_to_send(command, fresh=True)
        except BaseException as exc:
            self.outcomes.withdrawn(command.job, command.generation)
            if isinstance(exc, trio.BrokenResourceError):
                raise ApplicationStateError(
                    "the app stopped before the job could be handed to a worker"
                ) from None
            raise

    async def at(
        self,
        task: Task[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        at: datetime,
        *,
        job_id: str | None = None,
        replace: bool = False,
        force: bool = False,
    ) -> Job[Any]:
        """Run at the wall-clock time ``at`` (naive: in the app's tz)."""
        self._check_open()
        exec_at = to_tz(at, self._tz)
        stored = None if self.durability is None else self.durability.prepare(task, args, kwargs)
        existing = self._active_one_off(job_id, replace)
        if existing is not None:
            rearm = force or exec_at != existing.exec_at
            return await _replace.replace_one_off(
                self, existing, task, args, kwargs, exec_at, Trigger.AT, stored, rearm
            )
        if job_id is not None and stored is not None and self.sharing is not None:
            elsewhere = await self.sharing.check_id(
                job_id, replace, Trigger.AT, exec_at, stored, force
            )
            if elsewhere is not None:
                return elsewhere
        job = self._new_job(task, args, kwargs, job_id, exec_at)
        if stored is not None:
            await self._store(job, Trigger.AT, stored, new=True, made_id=job_id is None)
            if not self._armable(job):
                return job
        self.outcomes.rearm(job)
        await trio.lowlevel.checkpoint()
        return job

    async def cron(
        self,
        task: Task[..., Any],
        cron: Cron,
        *,
        job_id: str,
        replace: bool,
        force: bool,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Job[Any]:
        """Run ``task`` on ``cron`` under ``job_id`` (contract §4, §11; see ``_cron_runtime``)."""
        self._check_open()
        return await _cron_runtime.schedule_cron(
            self, task, cron, job_id=job_id, replace=replace, force=force, args=args,
            kwargs=kwargs or {},
        )  # fmt: skip

    def restore_cron(self, task: Task[..., Any], row: Any) -> str | None:
        """Re-arm a stored cron row at startup (see ``_cron_runtime.restore_cron``)."""
        return _cron_runtime.restore_cron(self, task, row)

    async def _store(
        self, job: Job[Any], trigger: Trigger, stored: bytes, *, new: bool, made_id: bool = False
    ) -> bool:
        """Commit a durable job's row before it is armed; True if that passed a schedule
        point (``StorageWriter.write``). ``made_id``: the call generated the job's id (no
        stored row can have it: ``Upsert.new``).

        If the commit fails, a new job is forgotten (nothing scheduled) and the error
        raised. Then the caller checks :meth:`_armable`.
        """
        assert self.durability is not None
        try:
            return await self.durability.commit(job, trigger, stored, new=made_id)
        except (StorageError, ValueError):  # not committed (ValueError: a row it refused)
            if new:
                self.registry.discard(job)
            raise
        except BaseException:  # cancelled: the row may be committed anyway
            if new:
                self.outcomes.withdrawn(job, 0)  # forgotten, and its row deleted
            raise

    @staticmethod
    def _armable(job: Job[Any]) -> bool:
        """After :meth:`_store` of a new job: False when the caller must not arm it: it
        was cancelled meanwhile, or a concurrent ``replace=True`` call already armed it."""
        return job._status is not JobStatus.CANCELLED and not job._generation

    def _disarm(self, job: Job[Any]) -> None:
        if job._timer is not None:
            self._timer_send.send_nowait(DisarmTimer(job=job))

    async def cancel(self, job: Job[Any]) -> None:
        """Cancel ``job``: disarm its timer, cancel its running attempt, end it.

        A durable job's row is deleted first: ``StorageError`` if that is not committed,
        and the job goes on as it was (``Durability.cancel``).
        """
        sharing = self.sharing
        if sharing is not None and sharing.remote.follows(job):
            await sharing.remote.cancel(job)  # it runs on another instance
            return
        if job.status not in FINAL_STATUSES and self.durability is not None:
            await self.durability.cancel(job, functools.partial(self._cancel_now, job))
        elif job.status not in FINAL_STATUSES:
            self._cancel_now(job)
        await trio.lowlevel.checkpoint()

    async def set_paused(self, job: Job[Any], paused: bool) -> None:
        """Pause or resume ``job`` (see ``_pause``)."""
        await _pause.set_paused(self, job, paused)

    def _cancel_now(self, job: Job[Any]) -> None:
        self._disarm(job)
        if job._cron is not None:
            self.cron_triggers.stop(job)
        self.outcomes.cancelled(job)
