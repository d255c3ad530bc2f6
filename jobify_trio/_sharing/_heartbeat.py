"""The heartbeat actor: keep this instance and its leases alive, apply commands.

Every heartbeat interval (default lease / 3), in order:

1. a *barrier* write through the storage writer, so every row this instance committed
   before the beat is in the store when it looks;
2. :meth:`~jobify_trio.storage.Storage.heartbeat`: renew the instance and every lease it
   holds, take the commands addressed to it;
3. a row we held before the beat and no longer own was taken away (we stalled past our
   lease and another instance adopted it, or it was deleted or replaced elsewhere): the
   job stops here and its handle follows it remotely;
4. the commands are applied as local calls (cancel, replace);
5. the list of live instances is refreshed, and old results, slot claims and instance
   rows are pruned (every :data:`PRUNE_EVERY` beats).

With a store that has presence but cannot share, only the renewal runs.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import trio

from .._storage._durability import is_durable
from ..storage import Release
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
    while True:
        await trio.sleep(sharing.options.beat)
        await sharing.wait_if_stalled()
        beats += 1
        try:
            await beat_once(sharing, prune=beats % PRUNE_EVERY == 0)
        except Exception as exc:  # the store is down: the next beat tries again
            log.warning("heartbeat of instance %r failed: %s", sharing.me, exc)


async def beat_once(sharing: Sharing, *, prune: bool = False) -> None:
    """One heartbeat (see the module docs)."""
    if not sharing.active:  # alone on the store: only presence, and commands (the CLI's)
        now = sharing.runtime.now()
        beat = await sharing.storage.heartbeat(
            instance_id=sharing.me, now=now, lease_until=now + sharing.lease
        )
        for command in beat.commands:
            await apply_command(sharing, command)
        return
    held = _held_here(sharing)
    await sharing.writer.write(Release(job_id="", owner=sharing.me))  # barrier: no-op write
    now = sharing.runtime.now()
    beat = await sharing.storage.heartbeat(
        instance_id=sharing.me, now=now, lease_until=now + sharing.lease
    )
    registry = sharing.runtime.registry
    for job_id in taken_away(held, beat.owned):
        job = registry.get(job_id)
        if job is not None and not sharing.remote.follows(job):
            sharing.detach(job)
    for command in beat.commands:
        await apply_command(sharing, command)
    others = live_others(
        await sharing.storage.instances(), me=sharing.me, now=now, lease=sharing.lease
    )
    sharing.others_live = bool(others)
    if prune:
        await _prune(sharing, now)


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
