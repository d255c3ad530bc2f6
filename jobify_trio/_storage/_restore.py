"""Restore at startup: stored rows become armed jobs again (contract §12).

Runs after storage opened and before the actors start, so every restored job is armed
(its timer command queued for the scheduler) when ``async with app:`` is entered.

* push rows run at once; at rows at their time; a pending retry at its stored time with
  its stored attempt number; a one-off row stored paused is restored paused (it runs at
  resume if it fell due meanwhile); cron rows through the cron engine, which applies the
  misfire policy and keeps ``run_count`` (a permanently failed cron stays so).
* Declarative crons (``@app.task(cron=...)``): the cron engine decides, from the stored
  row, whether the cron in code is unchanged (resume) or changed (replace); a stored
  declarative cron whose task no longer declares a cron is deleted.
* Rows of unknown (or no longer durable) tasks, unreadable rows, rows whose arguments
  no longer decode or bind, and rows that fail to restore for any other reason (a date
  that overflows, cron state nested too deep...) are **kept** and reported in one
  :class:`RestoreWarning` naming each; every other row is restored.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..serializers import SerializationError
from ..storage import RestoreWarning, StoredJob, StoredState, Trigger
from ._durability import is_durable

if TYPE_CHECKING:
    from .._api._task import Task
    from .._runtime._runtime import Runtime
    from ._durability import Durability

__all__ = ["MAX_NAMED", "restore"]

MAX_NAMED = 50
"""At most this many kept rows are named in the warning; the rest are counted."""


async def restore(runtime: Runtime, durability: Durability) -> None:
    """Load every stored row and re-arm the jobs it can; warn about the rows it keeps."""
    loaded = await durability.load_rows()
    kept = [
        f"{row.job_id!r} (task {row.task_name!r}): unreadable row: {row.reason}"
        for row in loaded.corrupt
    ]
    tasks = _all_tasks(runtime)
    now = runtime.now()
    for row in loaded.jobs:
        problem = _restore_or_explain(runtime, durability, tasks, row, now)
        if problem is not None:
            kept.append(problem)
    if kept:
        warnings.warn(RestoreWarning(_report(kept)), stacklevel=4)


def _all_tasks(runtime: Runtime) -> Mapping[str, Task[..., Any]]:
    """Every task of the app, the included routers' ones too, by full name."""
    return runtime.app._tasks


def _report(kept: list[str]) -> str:
    named = "\n  ".join(kept[:MAX_NAMED])
    more = len(kept) - MAX_NAMED
    tail = f"\n  ... and {more} more" if more > 0 else ""
    return (
        f"{len(kept)} stored job(s) were kept in storage but not restored "
        f"(list or delete them with `python -m jobify_trio jobs`):\n  {named}{tail}"
    )


def _restore_or_explain(
    runtime: Runtime,
    durability: Durability,
    tasks: Mapping[str, Task[..., Any]],
    row: StoredJob,
    now: datetime,
) -> str | None:
    """:func:`_restore_row`, but a row that fails for *any* reason is kept and named.

    A stored value can break restoring in ways no check foresees (a date that overflows
    in the app's time zone, JSON nested too deep, a grace too long for a ``timedelta``):
    one such row must not stop the app from starting. What the row armed is undone.
    """
    try:
        return _restore_row(runtime, durability, tasks, row, now)
    except Exception as exc:  # not BaseException: Cancelled and KeyboardInterrupt go on
        _undo(runtime, row.job_id)
        return f"{_label(row)}: cannot be restored: {type(exc).__name__}: {exc}"


def _undo(runtime: Runtime, job_id: str) -> None:
    job = runtime.registry.get(job_id)
    if job is not None:
        runtime.cron_triggers.stop(job)
        job._generation += 1  # a timer command already queued for it is ignored
        runtime.registry.discard(job)


def _restore_row(
    runtime: Runtime,
    durability: Durability,
    tasks: Mapping[str, Task[..., Any]],
    row: StoredJob,
    now: datetime,
) -> str | None:
    """Re-arm one row; a sentence naming it if it is kept instead."""
    task = tasks.get(row.task_name)
    if task is None:
        return f"{_label(row)}: no task of that name is registered"
    if not is_durable(task):
        return f"{_label(row)}: the task is registered with durable=False"
    if runtime.registry.get(row.job_id) is not None:
        return f"{_label(row)}: a job with this id is already active"
    if row.trigger is Trigger.CRON:
        return _restore_cron(runtime, task, row)
    try:
        args, kwargs = durability.codec.decode(row.arguments, task.name)
        task._binder.check(args, kwargs)
    except (SerializationError, TypeError) as exc:
        return f"{_label(row)}: {exc}"
    exec_at = row.next_run_at
    if row.trigger is Trigger.PUSH and row.state is StoredState.SCHEDULED:
        exec_at = now  # push rows run at once
    job = runtime._new_job(task, args, kwargs, row.job_id, exec_at.astimezone(runtime._tz))
    if row.paused:  # stored paused: held when due, until resumed
        job._paused = True
        runtime.registry.hold(job, True)
    runtime.outcomes.rearm(job, attempt=row.attempt)
    return None


def _label(row: StoredJob) -> str:
    return f"{row.job_id!r} (task {row.task_name!r})"


def _restore_cron(runtime: Runtime, task: Task[..., Any], row: StoredJob) -> str | None:
    """Hand a cron row to the cron engine (``runtime.restore_cron``)."""
    try:
        return runtime.restore_cron(task, row)
    except (SerializationError, TypeError, ValueError) as exc:
        return f"{_label(row)}: {exc}"
