"""``replace=True`` on an active one-off job (``push``/``at``): re-arm it in place.

The job keeps its :class:`~jobify_trio.Job` handle (and id); a job waiting for its run is
disarmed and armed again with the new time, task and arguments; a running job runs again
after its current run (:class:`Rerun`). A durable job's row is committed again (see
``Runtime._store``). Module functions over the :class:`Runtime`, like ``_pause``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import trio

from .._core._job import Job, JobStatus, Rerun

if TYPE_CHECKING:
    from .._api._task import Task
    from ..storage import Trigger
    from ._runtime import Runtime

__all__ = ["replace_one_off", "reschedule"]


async def replace_one_off(
    runtime: Runtime,
    job: Job[Any],
    task: Task[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    exec_at: datetime,
    trigger: Trigger,
    stored: bytes | None,
    rearm: bool,
) -> Job[Any]:
    """``replace=True`` on an active one-off job: re-arm it in place if ``rearm``."""
    if rearm:
        reschedule(runtime, job, task, args, kwargs, exec_at)
        if stored is not None:
            await runtime._store(job, trigger, stored, new=False)
    await trio.lowlevel.checkpoint()
    return job


def reschedule(
    runtime: Runtime,
    job: Job[Any],
    task: Task[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    exec_at: datetime,
) -> None:
    """Re-arm an active job in place; a running one runs again after its current run.

    A running job keeps its arguments (and task) for the rest of the current run,
    retries included; the new ones apply from the re-run on.
    """
    if job.status is JobStatus.RUNNING:
        job._rerun = Rerun(exec_at=exec_at, task=task, args=args, kwargs=kwargs)
        return
    job._task, job._args, job._kwargs = task, args, kwargs
    runtime._disarm(job)
    job._exec_at = exec_at
    runtime.outcomes.rearm(job)
