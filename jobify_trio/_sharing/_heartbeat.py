"""The heartbeat actor: keep this instance and its leases alive, apply commands.

Every heartbeat interval (default lease / 3), counted from the start of the previous beat
(a slow beat does not push the next renewal back), in order:

1. :meth:`~jobify_trio.storage.Storage.heartbeat`: renew the instance and every lease it
   holds, take the commands addressed to it. This comes first, not behind the storage
   writer: under load the writer may be seconds behind, and a renewal that waited for it
   let the leases of a live instance run out (measured: the failover test's pusher lost
   rows of jobs it had already run, whose deletes were still queued, and they ran again);
2. if some row we hold was not renewed, a *barrier* write through the storage writer (so
   every row this instance wrote before the beat is in the store) and a second renewal:
   a row we held before the beat and no longer own was taken away (we stalled past our
   lease and another instance adopted it, or it was deleted or replaced elsewhere): the
   job stops here (a running one is cancelled) and its handle follows it remotely. The
   barrier is waited for one heartbeat interval at most (the next beat checks again),
   and until then those jobs do not start (:attr:`LeaseFence.unsure
   <jobify_trio._sharing._fence.LeaseFence.unsure>`);
3. the commands are applied as local calls (cancel, replace);
4. the list of live instances is refreshed, and old results, slot claims and instance
   rows are pruned (every :data:`PRUNE_EVERY` beats).

Each renewal records when it began (:meth:`LeaseFence.renewed
<jobify_trio._sharing._fence.LeaseFence.renewed>`): the executor starts a durable job only
while that renewal's lease still holds with a margin, else it asks for a beat first (the
*fence*, :mod:`._fence`).

With a store that has presence but cannot share, only the renewal runs.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import trio

from .._core._job import JobStatus
from .._storage._durability import is_durable
from ..storage import Heartbeat, Release
from ._commands import apply_command
from ._decide import live_others, taken_away

if TYPE_CHECKING:
    from ._session import Sharing

__all__ = ["PRUNE_EVERY", "beat_once", "run_heartbeat"]

log = logging.getLogger("jobify_trio.sharing")

PRUNE_EVERY = 30
"""Beats between two prunes of old results, slot claims and instance rows."""


async def run_heartbeat(
    sharing: Sharing, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Beat every heartbeat interval until cancelled (store errors are retried)."""
    task_status.started()
    beats = 0
    beat = sharing.options.beat
    due = trio.current_time()
    while True:
        due = max(due + beat, trio.current_time())  # from the last start
        await trio.sleep_until(due)
        await sharing.wait_if_stalled()
        beats += 1
        try:  # a slow writer holds the next renewal back by one interval at most
            await beat_once(sharing, prune=beats % PRUNE_EVERY == 0, barrier_wait=beat)
        except Exception as exc:  # the store is down: the next beat tries again
            log.warning("heartbeat of instance %r failed: %s", sharing.me, exc)


async def beat_once(
    sharing: Sharing, *, prune: bool = False, barrier_wait: float | None = None
) -> None:
    """One heartbeat (see the module docs); the barrier is waited for ``barrier_wait``
    seconds at most (None: until it is committed), else the check is left to the next."""
    if not sharing.active:  # alone on the store: only presence, and commands (the CLI's)
        now = sharing.runtime.now()
        beat = await sharing.storage.heartbeat(
            instance_id=sharing.me, now=now, lease_until=now + sharing.lease
        )
        for command in beat.commands:
            await apply_command(sharing, command)
        return
    held = _held_here(sharing)
    beat = await _renew(sharing)  # first: not behind the writer (see the module docs)
    commands = list(beat.commands)
    unsure = taken_away(held, beat.owned)  # taken away, or not written yet
    sharing.fence.unsure = set(unsure)  # not started until known
    if unsure:
        with trio.move_on_after(math.inf if barrier_wait is None else barrier_wait):
            await sharing.writer.write(Release(job_id="", owner=sharing.me))  # barrier
            beat = await _renew(sharing)
            commands += beat.commands
            _detach_lost(sharing, taken_away(unsure, beat.owned))
            sharing.fence.unsure = set()
    for command in commands:
        await apply_command(sharing, command)
    now = sharing.runtime.now()
    others = live_others(
        await sharing.storage.instances(), me=sharing.me, now=now, lease=sharing.lease
    )
    sharing.others_live = bool(others)
    if prune:
        await _prune(sharing, now)


async def _renew(sharing: Sharing) -> Heartbeat:
    """Renew the instance and its leases (recorded as renewed when it began)."""
    began = trio.current_time()
    now = sharing.runtime.now()
    beat = await sharing.storage.heartbeat(
        instance_id=sharing.me, now=now, lease_until=now + sharing.lease
    )
    sharing.fence.renewed(began)
    return beat


def _detach_lost(sharing: Sharing, lost: list[str]) -> None:
    """Stop here the jobs whose rows another instance took (a running one is cancelled)."""
    registry = sharing.runtime.registry
    running = []
    for job_id in lost:
        job = registry.get(job_id)
        if job is not None and not sharing.remote.follows(job):
            if job.status is JobStatus.RUNNING:
                running.append(job_id)
            sharing.detach(job)
    if running:
        log.warning(
            "instance %r lost the leases of %d running jobs (stalled past its lease?); "
            "cancelled here, they run elsewhere: %s",
            sharing.me, len(running), ", ".join(running[:10]),
        )  # fmt: skip


def _held_here(sharing: Sharing) -> list[str]:
    """Ids of the durable jobs this instance holds (runs, or will run) right now."""
    remote = sharing.remote
    return [
        job.id
        for job in sharing.runtime.registry
        if is_durable(job._task) and not remote.follows(job)
    ]


async def _prune(sharing: Sharing, now: datetime) -> None:
    options = sharing.options
    await sharing.storage.prune(
        results_before=now - timedelta(seconds=options.result_retention),
        claims_before=now - timedelta(seconds=options.slot_claim_retention),
        instances_before=now - 10 * sharing.lease,
    )
