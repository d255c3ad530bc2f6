"""The rows of this instance's cron jobs outside their slot claims: :class:`CronRows`.

A shared cron's progress (next slot, offset, ``run_count``, consecutive failures) is
stored by its slot claims (see :mod:`._slots`), each a compare-and-set committed before
the slot fires, not by a write after each run. What a claim cannot carry is written
here, each write only while the row is still ours (``try_take`` / ``try_delete``):

* a cron that failed for good, or was paused or resumed: its row as it is now;
* a cron that ended here (``max_runs``...): its row is deleted;
* at a clean stop, the progress of each cron whose last run ended after its last claim
  (otherwise its counters would lag one run behind on the instance that goes on).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from .._core._job import JobStatus
from .._cron._state import cron_to_json
from .._storage._durability import is_durable
from ..storage import StoredJob, StoredState, Trigger

if TYPE_CHECKING:
    from .._core._job import Job
    from .._cron._state import CronState
    from ._session import Sharing

__all__ = ["ENDED_CRON_DELETE_TIMEOUT", "CronRows"]

log = logging.getLogger("jobify_trio.sharing")

ENDED_CRON_DELETE_TIMEOUT = 10.0
"""Seconds the last write of an ended cron (delete, or PERMANENTLY_FAILED), or the
progress written at a clean stop, may hold up a stopping app at most."""


class CronRows:
    """Writes of this instance's cron rows besides slot claims (see the module docs)."""

    def __init__(self, sharing: Sharing) -> None:
        self._sharing = sharing
        # cron jobs with a run ended since their last claim: the progress to store at stop
        self.unstored: dict[str, tuple[Job[Any], CronState]] = {}

    def run_ended(self, job: Job[Any], state: CronState) -> None:
        """After a cron run: a cron that failed for good is stored so, unless the row is
        no longer ours. Its progress otherwise travels with its next slot claim, or is
        stored at a clean stop (:meth:`store_unstored`)."""
        if job.status is JobStatus.PERMANENTLY_FAILED:
            self.store(job, state)
        elif state.next_run_at is not None and is_durable(job._task):
            self.unstored[job.id] = (job, state)
        else:
            self.unstored.pop(job.id, None)

    def forget(self, job: Job[Any]) -> None:
        """``job`` ended or left this instance: no progress of it is stored at stop."""
        self.unstored.pop(job.id, None)

    def forget_id(self, job_id: str) -> None:
        """A row of ``job_id`` was written (a claim, a replace...): it holds the progress."""
        self.unstored.pop(job_id, None)

    async def store_unstored(self) -> None:
        """Store the progress of the crons whose last run ended after their last claim
        (at a clean stop), each unless its row is no longer ours."""
        sharing = self._sharing
        unstored, self.unstored = self.unstored, {}
        for job, state in unstored.values():
            row = self._row(job, state)
            if row is None:
                continue
            try:
                await sharing.storage.try_take(sharing.stamp(row), now=sharing.runtime.now())
            except Exception as exc:
                log.warning("could not store the progress of cron job %r: %s", job.id, exc)

    def store(self, job: Job[Any], state: CronState) -> None:
        """Store a cron job's row as it is now (a cron that failed for good, or one paused
        or resumed), unless the row is no longer ours."""
        sharing = self._sharing
        row = self._row(job, state) if is_durable(job._task) else None
        if row is not None:
            sharing.runtime._nursery.start_soon(self._take, sharing.stamp(row))

    def _row(self, job: Job[Any], state: CronState) -> StoredJob | None:
        """The row of cron ``job`` with progress ``state`` (None: it cannot be encoded)."""
        durability = self._sharing.durability
        arguments = durability._encode_again(job)
        if arguments is None or job._cron is None:
            return None
        return durability.row(
            job, Trigger.CRON, arguments, attempt=1, state=_stored_state(job),
            cron=cron_to_json(job._cron, state), next_run_at=state.next_run_at or job.exec_at,
        )  # fmt: skip

    def delete_ended(self, job_id: str) -> None:
        """A cron ended here (``max_runs``...): delete its row unless another instance
        took it over meanwhile (we stalled past our lease): then the row is its."""
        sharing = self._sharing
        sharing.runtime._nursery.start_soon(self._delete_if_ours, job_id)

    async def _delete_if_ours(self, job_id: str) -> None:
        # Shielded and bounded: an app stopping right after the cron ended still deletes
        # the row (as the writer's flush would on an unshared store). No writer barrier:
        # the writer may be stopping, and a shared cron's progress is committed by its
        # slot claims, before its run, not queued after it.
        sharing = self._sharing
        with trio.CancelScope(shield=True), trio.move_on_after(ENDED_CRON_DELETE_TIMEOUT):
            try:
                now = sharing.runtime.now()
                owner = await sharing.storage.try_delete(job_id, owner=sharing.me, now=now)
            except Exception as exc:
                log.warning("could not delete the row of ended cron job %r: %s", job_id, exc)
                return
            if owner is not None:
                log.info("cron job %r ended here but instance %r runs it now", job_id, owner)

    async def _take(self, row: StoredJob) -> None:
        # Shielded and bounded, as _delete_if_ours: an app stopping now still stores it.
        sharing = self._sharing
        with trio.CancelScope(shield=True), trio.move_on_after(ENDED_CRON_DELETE_TIMEOUT):
            try:
                await sharing.storage.try_take(row, now=sharing.runtime.now())
            except Exception as exc:
                log.warning("could not store cron job %r as failed: %s", row.job_id, exc)


def _stored_state(job: Job[Any]) -> StoredState:
    failed = job.status is JobStatus.PERMANENTLY_FAILED
    return StoredState.PERMANENTLY_FAILED if failed else StoredState.SCHEDULED
