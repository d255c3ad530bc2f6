"""The claimer actor: run here the due rows no live instance owns, and adopt orphans.

It loops: adopt the rows of dead instances (any due time: a future ``at`` row is
re-armed here with our lease; a cron row gets its trigger here, which applies the
misfire policy), claim due unowned rows up to the executor's free capacity (rows
released by a busy instance, or whose owner died), then sleep until the store reports
a change (:meth:`~jobify_trio.storage.Storage.wait_changed`), the earliest unowned row
is due (:meth:`~jobify_trio.storage.Storage.next_due_at`), the earliest lease of another
instance runs out (:meth:`~jobify_trio.storage.Storage.next_lease_expiry`, plus
:data:`TAKEOVER_SLACK`: the rows of a dead instance are adopted as their leases expire,
not up to a poll interval later), or one poll interval passed.

A pass that handed back rows it cannot run here (their task is unknown to this version of
the app) waits a whole poll interval, whatever the store reports: its own release is a
change, and the row is due and unowned again, so waking on it would claim and release the
same row every few milliseconds for as long as no instance runs it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import trio

from ._decide import reread_expiry, takeover_wait

if TYPE_CHECKING:
    from ._session import Sharing

__all__ = ["MIN_WAIT", "TAKEOVER_SLACK", "LeaseWatch", "claim_once", "run_claimer"]

log = logging.getLogger("jobify_trio.sharing")

MIN_WAIT = 0.01
"""Shortest sleep between two passes (a due row that cannot be claimed yet: no spin)."""

TAKEOVER_SLACK = 0.01
"""Seconds after the earliest lease expiry of another instance the claimer looks for
orphans (a lease is adoptable once ``lease_expires_at <= now``)."""


class LeaseWatch:
    """When the next lease of another instance runs out, as last read from the store."""

    def __init__(self) -> None:
        self.expiry: datetime | None = None
        self.read_at: datetime | None = None

    async def wait(self, sharing: Sharing) -> float | None:
        """Seconds until the next orphan may appear (None: none known)."""
        now = sharing.runtime.now()
        every = timedelta(seconds=sharing.options.beat)
        if reread_expiry(self.expiry, self.read_at, now, every=every):
            self.expiry = await sharing.storage.next_lease_expiry(owner=sharing.me, now=now)
            self.read_at = now
        return takeover_wait(self.expiry, now, slack=TAKEOVER_SLACK)


async def run_claimer(
    sharing: Sharing, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Claim and adopt until cancelled (store errors are retried after a poll interval)."""
    task_status.started()
    poll = sharing.options.poll_interval
    leases = LeaseWatch()
    while True:
        await sharing.wait_if_stalled()
        try:
            wait, handed_back = await claim_once(sharing)
            expiry = await leases.wait(sharing)
        except Exception as exc:  # the store is down: try again later
            log.warning("claiming due jobs failed: %s", exc)
            wait, handed_back, expiry = poll, False, None
        if expiry is not None:
            wait = min(wait, expiry)
        if handed_back:
            await trio.sleep(min(poll, wait))
        else:
            await sharing.storage.wait_changed(poll_interval=max(wait, MIN_WAIT))


async def claim_once(sharing: Sharing) -> tuple[float, bool]:
    """One pass; returns how long to wait for the next one at most, and whether it
    handed back rows it cannot run here (then the wait ignores changes)."""
    poll = sharing.options.poll_interval
    free = sharing.capacity()
    rows = await sharing.acquire(free)
    if rows:
        if sharing.arm_claimed(rows):
            return poll, True
        await trio.lowlevel.checkpoint()
    if free <= len(rows):
        return poll, False
    now = sharing.runtime.now()
    due = await sharing.storage.next_due_at(now=now)
    if due is None:
        return poll, False
    return min(poll, max((due - now).total_seconds(), 0.0)), False
