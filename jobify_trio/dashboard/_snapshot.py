"""The dashboard's view of an app: a JSON-ready dict of its jobs and their recent runs.

Everything user-supplied (task names, job ids, arguments, error texts) goes out as JSON
strings; the page puts them into the DOM with ``textContent`` only. Lists are capped
(``MAX_ACTIVE`` / ``MAX_FINISHED``) so a busy app costs the dashboard a bounded amount of
work per refresh.
"""

from __future__ import annotations

import reprlib
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from .._core._job import Job, JobStatus
from .._ops._history import RunHistory, RunRecord

if TYPE_CHECKING:
    from .._api._app import Jobify

__all__ = ["MAX_ACTIVE", "MAX_FINISHED", "actions_for", "snapshot"]

MAX_ACTIVE = 200
MAX_FINISHED = 50

_repr = reprlib.Repr()  # (keyword arguments need Python 3.12)
_repr.maxstring = _repr.maxother = 60
_repr.maxlist = _repr.maxtuple = _repr.maxdict = 6
_repr.maxlevel = 2


def _time(at: datetime | None, tz: tzinfo) -> dict[str, str] | None:
    if at is None:
        return None
    local = at.astimezone(tz)
    return {"iso": local.isoformat(), "text": local.strftime("%a %d %b %Y, %H:%M:%S %Z")}


def _arguments(job: Job[Any]) -> str:
    parts = [_repr.repr(arg) for arg in job._args]
    parts += [f"{key}={_repr.repr(value)}" for key, value in job._kwargs.items()]
    text = ", ".join(parts)
    return text if len(text) <= 160 else text[:159] + "…"


def _run(record: RunRecord, tz: tzinfo) -> dict[str, Any]:
    return {
        "attempt": record.attempt,
        "status": str(record.status),
        "started": _time(record.started_at, tz),
        "ended": _time(record.ended_at, tz),
        "duration": record.duration,
        "error": record.error,
        "retried": record.retried,
    }


def actions_for(job: Job[Any]) -> list[str]:
    """What the dashboard offers for an active job; a handle that can pause adds those."""
    actions = [] if job.status is JobStatus.RUNNING else ["run"]
    paused = getattr(job, "paused", None)
    if isinstance(paused, bool):
        actions.append("resume" if paused else "pause")
    actions.append("cancel")
    return actions


def _active(job: Job[Any], history: RunHistory, app_tz: tzinfo) -> dict[str, Any]:
    tz = getattr(job._cron, "tz", None) or app_tz  # a cron's own zone, once crons have one
    runs = [_run(record, tz) for record in history.runs(job.id)]
    entry: dict[str, Any] = {
        "id": job.id,
        "task": job.task_name,
        "cron": job.cron_expression,
        "args": _arguments(job),
        "status": str(job.status),
        "next_run": None if job.status is JobStatus.RUNNING else _time(job.exec_at, tz),
        "running_since": _time(history.running_since(job.id), tz),
        "runs": runs,
        "actions": actions_for(job),
    }
    paused = getattr(job, "paused", None)
    if isinstance(paused, bool):
        entry["paused"] = paused
    return entry


def _finished(job_id: str, history: RunHistory, tz: tzinfo) -> dict[str, Any] | None:
    records = history.runs(job_id)
    if not records:
        return None
    last = records[-1]
    return {
        "id": job_id,
        "task": last.task,
        "status": str(last.status),
        "runs": [_run(record, tz) for record in records],
    }


def _order(job: Job[Any]) -> tuple[int, datetime]:
    return (0 if job.status is JobStatus.RUNNING else 1, job.exec_at)


def snapshot(app: Jobify, history: RunHistory) -> dict[str, Any]:
    """The state the page shows (without the current time, so equal states compare equal)."""
    tz = app.tz
    active = sorted(app.get_active_jobs(), key=_order)
    running = sum(1 for job in active if job.status is JobStatus.RUNNING)
    active_ids = {job.id for job in active}
    finished: list[dict[str, Any]] = []
    for job_id in history.finished_ids(limit=MAX_FINISHED + len(active_ids)):
        entry = None if job_id in active_ids else _finished(job_id, history, tz)
        if entry is not None and len(finished) < MAX_FINISHED:
            finished.append(entry)
    return {
        "tz": str(tz),
        "running": app.is_running,
        "counts": {"active": len(active), "running": running, "scheduled": len(active) - running},
        "jobs": [_active(job, history, tz) for job in active[:MAX_ACTIVE]],
        "finished": finished,
    }
