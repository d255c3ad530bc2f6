"""Pausing and resuming a job (``job.pause()`` / ``job.resume()``).

A paused job starts no run until it is resumed; a run already under way goes on.

- One-off job: its timer stays armed; when it falls due the scheduler holds its command
  instead of running it, and :func:`set_paused` sends that command again on resume (so a
  job that fell due during the pause runs at resume; one not yet due runs at its time).
- A durable one-off job's paused state is stored (the row's ``paused`` column) before
  :func:`set_paused` returns; restored paused, it waits for a resume the same way.
- Cron job: its trigger parks instead of firing; on resume it goes on from the first slot
  after now, the slots that passed meanwhile dropped (no catch-up, whatever the misfire
  policy).
- A job that another live instance runs: the owner is sent a PAUSE/RESUME command and
  applies it as a local call (see ``_sharing/_commands.py``).

A paused job that is not running does not keep :meth:`Jobify.wait_all` waiting (the
registry counts it as held).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from .._core._job import Job, JobStatus
from .._core._messages import ArmTimer
from . import _cron_runtime
from ._events import JobEvent, JobEventKind

if TYPE_CHECKING:
    from ._runtime import Runtime

__all__ = ["set_paused"]


async def set_paused(runtime: Runtime, job: Job[Any], paused: bool) -> None:
    """Pause (``paused`` True) or resume ``job`` (see the module docs)."""
    sharing = runtime.sharing
    if sharing is not None and sharing.remote.follows(job):
        await sharing.remote.set_paused(job, paused)
        return
    job._paused = paused
    runtime.registry.hold(job, paused)
    if not paused:
        _resume(runtime, job)
    if job._cron is not None:
        _store_cron(runtime, job)
    _emit(runtime, job, paused)
    if job._cron is None and runtime.durability is not None:
        await runtime.durability.store_paused(job)  # (a checkpoint)
    else:
        await trio.lowlevel.checkpoint()


def _emit(runtime: Runtime, job: Job[Any], paused: bool) -> None:
    events = runtime.outcomes.events
    if events is not None:
        kind = JobEventKind.PAUSED if paused else JobEventKind.RESUMED
        again = None if paused or job.status is not JobStatus.SCHEDULED else job.exec_at
        events(
            JobEvent(kind=kind, job=job, attempt=job._attempt, status=job.status, next_run=again)
        )


def _store_cron(runtime: Runtime, job: Job[Any]) -> None:
    """A durable cron's row keeps its paused state (and, on resume, its new next slot)."""
    state = runtime.cron_triggers.state(job)
    if state is None or runtime.durability is None:
        return
    sharing = runtime.sharing
    if sharing is not None and sharing.active:
        sharing.crons.store(job, state)
    else:
        _cron_runtime.store_cron_state(runtime, job, state)


def _resume(runtime: Runtime, job: Job[Any]) -> None:
    held = job._timer
    if isinstance(held, ArmTimer):  # it (or a cron run's retry) fell due while paused
        job._timer = None
        runtime._timer_send.send_nowait(held)
    if job._cron is not None:
        runtime.cron_triggers.resume(job)
