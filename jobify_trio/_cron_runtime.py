"""Cron scheduling on a :class:`~jobify_trio._runtime.Runtime`: create, replace, restore.

The runtime's ``cron``/``restore_cron`` methods and the app's startup call these; the
live part is :mod:`jobify_trio._actors._cron_trigger`. Storage (when the app has it) is
told about a cron job when it is scheduled (committed before ``cron()`` returns), after
each run (``CronTriggers.run_ended_hooks`` -> :func:`store_cron_state`), and when it
ends (``Outcomes.job_ended_hooks``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import trio

from ._actors._cron_trigger import cron_call_arguments, declarative_job_id
from ._cron_state import CronState, cron_from_json, cron_to_json, same_schedule
from ._job import Job, JobStatus

if TYPE_CHECKING:
    from ._cron import Cron
    from ._runtime import Runtime
    from ._task import Task

__all__ = [
    "attach_storage",
    "restore_cron",
    "schedule_cron",
    "start_declared_crons",
    "store_cron_state",
]


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
    job object gets the new schedule (``CronTriggers.replace``: offset kept unless
    ``start_date`` changed, ``run_count`` reset).
    """
    args, kwargs = cron_call_arguments(task, cron, args, kwargs)
    durability = getattr(runtime, "durability", None)
    stored = None if durability is None else durability.prepare(task, args, kwargs)
    existing = runtime._active(job_id, replace)
    now = runtime.now()
    triggers = runtime.cron_triggers
    if existing is not None and existing._cron is not None:
        same = same_schedule(existing._cron, cron) and existing._task is task
        if same and not force and (existing._args, existing._kwargs) == (args, kwargs):
            await trio.lowlevel.checkpoint()
            return existing
        existing._task, existing._args, existing._kwargs = task, args, kwargs
        await triggers.replace(existing, cron, now=now)
        job = existing
    else:
        if existing is not None:  # a one-off job under this id: the cron replaces it
            await runtime.cancel(existing)
        job = runtime._new_job(task, args, kwargs, job_id, now)
        first = triggers.first_state(job, cron, now=now, offset=None)
        await triggers.arm(job, cron, first, now=now)
    state = triggers.state(job)
    if durability is not None and stored is not None and state is not None:
        from .storage import Trigger

        await durability.commit(job, Trigger.CRON, stored, cron=cron_to_json(cron, state))
    return job


def restore_cron(runtime: Runtime, task: Task[..., Any], row: Any) -> str | None:
    """Re-arm a stored cron row at startup; a sentence naming the problem if it is kept.

    Applies the misfire policy and keeps ``run_count`` and consecutive failures. A row
    that ended PERMANENTLY_FAILED is not armed, and an unchanged declarative cron is not
    started again for it. A declarative row whose task no longer declares a cron is
    deleted. Raises ``ValueError``/``TypeError`` for unreadable rows (the row is kept).
    """
    from .serializers import decode_call_arguments

    durability = getattr(runtime, "durability", None)
    assert durability is not None, "cron rows are restored only when the app has storage"
    if row.job_id == declarative_job_id(task.name) and task.options.cron is None:
        durability.deleted(row.job_id)
        return None
    if runtime.registry.get(row.job_id) is not None:
        return f"job {row.job_id!r}: a job with this id is already active"
    cron, state = cron_from_json(row.cron or "")
    args, kwargs = decode_call_arguments(durability.serializer, row.arguments, task_name=task.name)
    task._binder.check(args, kwargs)
    if row.state.value == JobStatus.PERMANENTLY_FAILED.value:
        runtime.cron_triggers.failed_ids[row.job_id] = cron
        return None
    now = runtime.now()
    job = runtime._new_job(task, args, kwargs, row.job_id, state.next_run_at or now)
    runtime.cron_triggers.arm_nowait(job, cron, state, now=now)
    return None


async def start_declared_crons(runtime: Runtime, tasks: Iterable[Task[..., Any]]) -> None:
    """Create the crons of ``@app.task(cron=...)`` under ``declarative_job_id(task.name)``.

    A restored job of that id with the same schedule goes on; a changed one is replaced;
    one that ended PERMANENTLY_FAILED with the same schedule stays ended.
    """
    for task in tasks:
        cron = task.options.cron
        if cron is None:
            continue
        job_id = declarative_job_id(task.name)
        failed = runtime.cron_triggers.failed_ids.get(job_id)
        if failed is not None and same_schedule(failed, cron):
            continue
        await runtime.cron(task, cron, job_id=job_id, replace=True, force=False)


def attach_storage(runtime: Runtime) -> None:
    """Store each cron job's progress after its runs, if the app has storage."""
    if getattr(runtime, "durability", None) is not None:
        runtime.cron_triggers.run_ended_hooks.append(functools.partial(store_cron_state, runtime))


def store_cron_state(runtime: Runtime, job: Job[Any], state: CronState) -> None:
    """After each cron run: store its progress (a permanently failed job stays stored)."""
    durability = getattr(runtime, "durability", None)
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
