"""Cron scheduling on a :class:`~jobify_trio._runtime.Runtime`: create, replace, restore.

The runtime's ``cron``/``restore_cron`` methods and the app's startup call these; the
live part is :mod:`jobify_trio._actors._cron_trigger`. Storage (when the app has it) is
told about a cron job when it is scheduled (committed before ``cron()`` returns), after
each run (``CronTriggers.run_ended_hooks`` -> :func:`store_cron_state`), and when it
ends (``Outcomes.job_ended_hooks``).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterable
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .._core._clock import to_tz
from .._core._job import Job, JobStatus
from .._cron._expression import CronExhausted
from .._cron._state import CronState, cron_from_json, cron_to_json, same_schedule
from ..exceptions import InvalidCronExpression
from ..storage import StoredJob, StoredState
from ._actors._cron_trigger import cron_call_arguments, declarative_job_id

if TYPE_CHECKING:
    from .._api._task import Task
    from .._cron._values import Cron
    from ._actors._cron_trigger import CronTriggers
    from ._runtime import Runtime

__all__ = [
    "attach_storage",
    "check_fires",
    "restore_cron",
    "schedule_cron",
    "start_declared_crons",
    "store_cron_state",
]

_TICK = timedelta(microseconds=1)


async def schedule_cron(
    runtime: Runtime,
    task: Task[..., Any],
    cron: Cron,
    *,
    job_id: str,
    replace: bool,
    force: bool,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Job[Any]:
    """Schedule ``task`` on ``cron`` under ``job_id`` (contract §4 and §11).

    The arguments are those given to ``schedule(...)``, else ``cron.args/kwargs``. An
    active id without ``replace`` raises ``DuplicateJobError``; ``replace`` with an equal
    schedule and arguments and no ``force`` returns the existing job; otherwise the same
    job object gets the new schedule (offset kept unless ``start_date`` changed,
    ``run_count`` reset). A durable cron's row is committed *before* it is armed: if the
    commit fails the call raises ``StorageError`` and nothing changed (no new cron; a
    replaced job, cron or one-off, goes on as it was).
    """
    args, kwargs = cron_call_arguments(task, cron, args, kwargs)
    now = runtime.now()
    check_fires(cron, job_id=job_id, now=now, tz=runtime.cron_triggers.zone(cron))
    durability = runtime.durability
    stored = None if durability is None else durability.prepare(task, args, kwargs)
    existing = runtime._active(job_id, replace)
    if existing is None or existing._cron is None:
        return await _new_cron(runtime, task, cron, job_id, args, kwargs, stored, existing, now)
    same = same_schedule(existing._cron, cron) and existing._task is task
    if same and not force and (existing._args, existing._kwargs) == (args, kwargs):
        await trio.lowlevel.checkpoint()
        return existing
    state = _replacement_state(runtime.cron_triggers, existing, cron, now)
    if stored is not None:
        await _commit(runtime, existing.id, task, stored, cron, state, now)
        if existing.is_done():  # cancelled (or ended) while its row was being committed
            return existing
    existing._task, existing._args, existing._kwargs = task, args, kwargs
    await runtime.cron_triggers.arm(existing, cron, state, now=now)
    return existing


def check_fires(cron: Cron, *, job_id: str, now: datetime, tz: tzinfo) -> None:
    """``InvalidCronExpression`` naming ``cron`` if it can never fire again: its expression
    has no fire time after ``now``, or none at or after its ``start_date``."""
    expr = cron.compile(hash_id=job_id)
    try:
        expr.next_after(now.astimezone(tz))
    except CronExhausted:
        raise InvalidCronExpression(
            cron.expression, f"it never fires: its last fire time is before now ({now})"
        ) from None
    if cron.start_date is not None:
        start = to_tz(cron.start_date, tz)
        try:
            expr.next_after(start - _TICK)
        except CronExhausted:
            raise InvalidCronExpression(
                cron.expression,
                f"it never fires on or after its start_date {start.isoformat()} "
                "(its last fire time is earlier)",
            ) from None
        except OverflowError:  # a start_date at the very start of year 1: long past
            pass


async def _new_cron(
    runtime: Runtime,
    task: Task[..., Any],
    cron: Cron,
    job_id: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    stored: bytes | None,
    one_off: Job[Any] | None,
    now: datetime,
) -> Job[Any]:
    """A new cron job under ``job_id``; it replaces the active one-off job ``one_off``."""
    job = runtime._new_job(task, args, kwargs, job_id, now)  # takes the id over from one_off
    state = runtime.cron_triggers.first_state(job, cron, now=now, offset=None)
    if stored is not None:
        try:
            await _commit(runtime, job_id, task, stored, cron, state, now)
        except BaseException:
            if one_off is not None and not one_off.is_done():
                runtime.registry.add(one_off)  # it goes on as it was
            runtime.registry.discard(job)
            raise
    if one_off is not None:  # its row was replaced by the cron's (Durability.job_ended)
        await runtime.cancel(one_off)
    if job.status is not JobStatus.CANCELLED:  # not cancelled while it was being committed
        await runtime.cron_triggers.arm(job, cron, state, now=now)
    return job


def _replacement_state(
    triggers: CronTriggers, job: Job[Any], cron: Cron, now: datetime
) -> CronState:
    """Where a live cron job restarts on ``cron``: from its offset unless ``start_date`` changed."""
    old_cron, old = job._cron, triggers.state(job)
    keep = old is not None and old_cron is not None and old_cron.start_date == cron.start_date
    offset = old.offset if keep and old is not None else None
    state = triggers.first_state(job, cron, now=now, offset=offset)
    return attrs.evolve(state, paused=job._paused)  # a replaced paused cron stays paused


async def _commit(
    runtime: Runtime,
    job_id: str,
    task: Task[..., Any],
    arguments: bytes,
    cron: Cron,
    state: CronState,
    now: datetime,
) -> None:
    assert runtime.durability is not None
    await runtime.durability.commit_cron(
        job_id,
        task.name,
        arguments,
        cron_json=cron_to_json(cron, state),
        next_run_at=state.next_run_at or now,
    )


def restore_cron(runtime: Runtime, task: Task[..., Any], row: StoredJob) -> str | None:
    """Re-arm a stored cron row at startup; a sentence naming the problem if it is kept.

    Applies the misfire policy and keeps ``run_count`` and consecutive failures. A row
    that ended PERMANENTLY_FAILED is not armed, and an unchanged declarative cron is not
    started again for it. A declarative row whose task no longer declares a cron is
    deleted. Raises ``ValueError``/``TypeError``/``SerializationError`` for unreadable rows
    (the row is kept). The caller (:mod:`._restore`) has checked that the id is free.
    """
    durability = runtime.durability
    assert durability is not None, "cron rows are restored only when the app has storage"
    if row.job_id == declarative_job_id(task.name) and task.options.cron is None:
        durability.deleted(row.job_id)
        return None
    cron, state = cron_from_json(row.cron or "")
    args, kwargs = durability.codec.decode(row.arguments, task.name)
    task._binder.check(args, kwargs)
    if row.state is StoredState.PERMANENTLY_FAILED:
        runtime.cron_triggers.failed_ids[row.job_id] = cron
        return None
    now = runtime.now()
    job = runtime._new_job(task, args, kwargs, row.job_id, state.next_run_at or now)
    if state.paused:  # it was paused when stored: it stays paused until resumed
        job._paused = True
        runtime.registry.hold(job, True)
    runtime.cron_triggers.arm_nowait(job, cron, state, now=now)
    return None


async def start_declared_crons(runtime: Runtime, tasks: Iterable[Task[..., Any]]) -> None:
    """Create the crons of ``@app.task(cron=...)`` under ``declarative_job_id(task.name)``.

    A restored job of that id with the same schedule goes on; a changed one is replaced;
    one that ended PERMANENTLY_FAILED with the same schedule stays ended. A cron that can
    never fire again (its years are over) is not started: a ``RuntimeWarning`` says so.
    """
    for task in tasks:
        cron = task.options.cron
        if cron is None:
            continue
        job_id = declarative_job_id(task.name)
        failed = runtime.cron_triggers.failed_ids.get(job_id)
        if failed is not None and same_schedule(failed, cron):
            continue
        sharing = runtime.sharing
        if sharing is not None and not await sharing.may_declare(task, job_id):
            continue  # a live instance runs this declarative cron: one schedule, not N
        try:
            await runtime.cron(task, cron, job_id=job_id, replace=True, force=False)
        except InvalidCronExpression as exc:  # it can never fire (any more): don't stop the app
            warnings.warn(
                f"task {task.name!r}: its declared cron is not started: {exc}",
                RuntimeWarning,
                stacklevel=2,
            )


def attach_storage(runtime: Runtime) -> None:
    """Store each cron job's progress after its runs, if the app has storage."""
    if runtime.sharing is not None and runtime.sharing.active:
        # the next slot claim stores the progress (a compare-and-set); see _sharing._slots
        runtime.cron_triggers.run_ended_hooks.append(runtime.sharing.crons.run_ended)
    elif runtime.durability is not None:
        runtime.cron_triggers.run_ended_hooks.append(functools.partial(store_cron_state, runtime))


def store_cron_state(runtime: Runtime, job: Job[Any], state: CronState) -> None:
    """After each cron run: store its progress (a permanently failed job stays stored)."""
    durability = runtime.durability
    if durability is None or job._cron is None:
        return
    failed = job.status is JobStatus.PERMANENTLY_FAILED
    if state.next_run_at is None and not failed:
        return  # the job ended: Outcomes.job_ended_hooks delete its row
    durability.cron_updated(
        job,
        cron_json=cron_to_json(job._cron, state),
        next_run_at=state.next_run_at or job.exec_at,
        permanently_failed=failed,
    )
