"""The slot-claim batcher: group commit of cron :class:`~jobify_trio.storage.SlotClaim`.

A cron trigger asks :meth:`SlotBatcher.claim` ``SharingOptions.slot_claim_lead`` seconds
before each slot (or when it fires, if it could not earlier): the slot then fires on the
local timer, without waiting for the store. Claims made while a batch is being committed
gather in the next one, so triggers claiming together cost one transaction
(:meth:`~jobify_trio.storage.Storage.claim_cron_slots`). A claim that is not committed
means another instance owns the cron now (the trigger stops here and the handle follows
the job remotely), unless the row is still ours: then the slot had been claimed before
and is skipped. A failed commit (store down) is retried every poll interval: the slot
fires late rather than twice.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .._cron._state import cron_to_json
from .._storage._durability import is_durable
from ..storage import SlotClaim

if TYPE_CHECKING:
    from .._core._job import Job
    from .._cron._state import CronState
    from ._session import Sharing

__all__ = ["SlotBatcher"]

log = logging.getLogger("jobify_trio.sharing")

LOST_CLAIM_RETRIES = 2
"""A lost claim whose row is still ours is retried with the stored ``next_run_at`` (a
write of ours overtook it) at most this many times."""

GATHER_PASSES = 64
"""Most scheduling passes a batch waits for more claims before it is committed."""


class _Batch:
    __slots__ = ("claims", "done", "failed", "won")

    def __init__(self) -> None:
        self.claims: list[SlotClaim] = []
        self.done = trio.Event()
        self.won: set[str] = set()
        self.failed = False


class SlotBatcher:
    """Commits the slot claims of this instance's cron triggers in batches."""

    def __init__(self, sharing: Sharing) -> None:
        self._sharing = sharing
        self._open = _Batch()
        self._wakeup = trio.Event()
        self.batches = 0

    async def claim(self, job: Job[Any], slot: datetime, state: CronState) -> bool | None:
        """Claim ``slot`` of cron ``job`` (``state``: its progress once it fired).

        True: fire it. False: another instance owns the cron now (it is detached here).
        None: the row is still ours but ``slot`` was claimed before (by an earlier
        schedule of this id cancelled or replaced within the claim lead, or by an
        instance that died between its claim and the slot): it is not run again.
        """
        sharing = self._sharing
        if not is_durable(job._task):
            await trio.lowlevel.checkpoint()
            return True  # no row: every instance runs its own (documented)
        next_run_at = state.next_run_at or slot
        claim = SlotClaim(
            job_id=job.id, slot=slot,
            expected_next_run_at=sharing.expected.get(job.id, slot), owner=sharing.me,
            cron=cron_to_json(job._cron, state), next_run_at=next_run_at,
        )  # fmt: skip
        for _ in range(LOST_CLAIM_RETRIES + 1):
            if await self._commit_one(claim):
                sharing.expected[job.id] = next_run_at
                sharing.crons.forget_id(job.id)  # the claim stored its progress
                return True
            stored = await self._our_next_run_at(job)
            if stored is None:
                break
            sharing.expected[job.id] = stored
            if stored == claim.expected_next_run_at:
                return None  # the compare-and-set held: the slot row exists already
            claim = attrs.evolve(claim, expected_next_run_at=stored)
        if sharing.runtime.registry.get(job.id) is job:
            sharing.detach(job)
        return False

    async def _commit_one(self, claim: SlotClaim) -> bool:
        """Add ``claim`` to the open batch and wait for its commit (retried every poll
        interval while the store fails)."""
        while True:
            batch = self._open
            batch.claims.append(claim)
            self._wakeup.set()
            await batch.done.wait()
            if not batch.failed:
                return claim.job_id in batch.won
            await trio.sleep(self._sharing.options.poll_interval)

    async def _our_next_run_at(self, job: Job[Any]) -> datetime | None:
        """After a lost claim: the stored ``next_run_at`` if the row is still leased to
        us, else None (it was taken over, deleted, or the store cannot be read)."""
        sharing = self._sharing
        try:
            row = await sharing.storage.get_job(job.id)
        except Exception as exc:
            log.warning("cron job %r: its row could not be read: %s", job.id, exc)
            return None
        if row is None or row.lease_owner != sharing.me:
            return None
        expires = row.lease_expires_at
        if expires is None or expires <= sharing.runtime.now():
            return None
        return row.next_run_at

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Commit batches until cancelled."""
        task_status.started()
        while True:
            await self._wakeup.wait()
            await self._gather()
            self._wakeup = trio.Event()
            await self._sharing.wait_if_stalled()
            batch, self._open = self._open, _Batch()
            try:
                with trio.CancelScope(shield=True):
                    batch.won = await self._commit(batch.claims)
            except Exception as exc:  # retried by each claimer after a poll interval
                log.warning("cron slot claims failed: %s", exc)
                batch.failed = True
            finally:
                self.batches += 1
                batch.done.set()

    async def _gather(self) -> None:
        """Let the triggers firing in this instant add their claims first: wait while the
        open batch still grows (until two scheduling passes add nothing; the cron alarm
        wakes triggers in chunks), at most :data:`GATHER_PASSES` passes."""
        quiet = 0
        for _ in range(GATHER_PASSES):
            size = len(self._open.claims)
            await trio.lowlevel.checkpoint()
            quiet = quiet + 1 if len(self._open.claims) == size else 0
            if quiet == 2:
                return

    async def _commit(self, claims: list[SlotClaim]) -> set[str]:
        sharing = self._sharing
        return await sharing.storage.claim_cron_slots(
            claims, now=sharing.runtime.now(), lease=sharing.lease
        )
