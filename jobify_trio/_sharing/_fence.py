"""The lease fence: a live instance does not start a job whose lease it may have lost.

A row's lease is only renewed by the heartbeat. Under CPU load, or while the process is
paused, a beat can come late; once a lease has run out another instance may adopt the row
and run the job, and this instance must not run it too. So before the executor starts a
durable job (:meth:`LeaseFence.holds`), it checks by the local clock that the last
renewal's lease still holds for at least :data:`MARGIN` of the lease (measured from when
that renewal *began*: the store's lease runs from then). If not, :meth:`LeaseFence.confirm`
runs a heartbeat first (one for all waiting jobs): a row another instance took is
detached there (the job follows it remotely and does not start), a row still ours was
renewed and the job starts.

A beat that fails (the store is down) is retried every poll interval while the job waits:
with its lease run out, running it could run it twice. A job already running when its
lease is lost is cancelled by the next beat that finds the row taken (see
:mod:`._heartbeat`); a run that ended before that beat may still run again elsewhere
(at-least-once, see docs/sharing.rst).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from .._storage._durability import is_durable

if TYPE_CHECKING:
    from .._core._job import Job
    from ._session import Sharing

__all__ = ["MARGIN", "LeaseFence"]

log = logging.getLogger("jobify_trio.sharing")

MARGIN = 0.25
"""Part of the lease that must still be left for a job to start without a beat first."""


class LeaseFence:
    """When the leases of this instance were last renewed; the check before a run."""

    def __init__(self, sharing: Sharing) -> None:
        self._sharing = sharing
        self.lock = trio.Lock()  # one confirming beat at a time, for every waiting job
        self.renewed_at = trio.current_time()  # rows leased at startup: from about now
        self.unsure: set[str] = set()
        """Rows held but not renewed by the last beat, not yet known to be ours (their
        write may be queued, or another instance took them)."""
        self._valid = sharing.options.lease * (1 - MARGIN)

    def renewed(self, began: float) -> None:
        """A renewal that began at ``began`` (trio time) succeeded just now; a warning if
        the previous one's lease may have run out before it."""
        sharing = self._sharing
        late = trio.current_time() - self.renewed_at - sharing.options.lease
        if late > 0:
            log.warning(
                "instance %r renewed its leases up to %.3f s after they ran out (paused, "
                "or starved of CPU?): other instances may have taken over its jobs",
                sharing.me, late,
            )  # fmt: skip
        self.renewed_at = max(self.renewed_at, began)

    def holds(self, job: Job[Any]) -> bool:
        """May ``job`` start now without a beat first?"""
        if trio.current_time() < self.renewed_at + self._valid and job.id not in self.unsure:
            return True
        sharing = self._sharing
        return not sharing.active or not is_durable(job._task) or sharing.remote.follows(job)

    async def confirm(self, job: Job[Any]) -> None:
        """A beat that renews our leases and checks every row we hold, writer barrier
        included (one beat for every job waiting meanwhile)."""
        from ._heartbeat import beat_once

        sharing = self._sharing
        async with self.lock:
            if self.holds(job):
                return  # a beat that ran meanwhile renewed and checked it
            await sharing.wait_if_stalled()
            try:
                await beat_once(sharing)
            except Exception as exc:
                log.warning("instance %r cannot renew its leases: %s", sharing.me, exc)
                await trio.sleep(sharing.options.poll_interval)
