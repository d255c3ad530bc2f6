"""The optional methods a store implements to let several app instances share it.

:class:`~jobify_trio.storage.Storage` inherits them. A store that overrides none of them
can serve one app instance only; each default raises
:class:`~jobify_trio.storage.SharingNotSupportedError` naming the store and the method.
Two capabilities:

* **presence** (:meth:`register_instance`, :meth:`heartbeat`, :meth:`instances`,
  :meth:`unregister_instance`): enough for the runtime to notice a second live instance
  on a store that cannot share, and refuse to start instead of double-running;
* **sharing** (:attr:`can_share` True, and every other method here): leases, claims of due
  rows, exactly-once cron slots, requests to a row's owner, results across instances.

See :mod:`jobify_trio._storage._shared` for the model and ``docs/sharing.rst``.
Every ``now`` is an aware datetime from the calling app's wall clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import trio

from ._shared import Heartbeat, InstanceInfo, SlotClaim, StoredResult

if TYPE_CHECKING:
    from ..storage import SharingNotSupportedError, StoredJob

__all__ = ["SharingMethods"]


class SharingMethods:
    """Presence and sharing methods of a store (see the module docs)."""

    @property
    def can_share(self) -> bool:
        """True if several live instances may use this store at once."""
        return False

    # -- presence ----------------------------------------------------------------------

    async def register_instance(self, info: InstanceInfo, /) -> None:
        """Add (or replace) the row of instance ``info.instance_id``."""
        raise self._no_sharing("register_instance")

    async def heartbeat(
        self, *, instance_id: str, now: datetime, lease_until: datetime
    ) -> Heartbeat:
        """In one transaction: set the instance's ``heartbeat_at`` to ``now``, extend every
        row leased to it until ``lease_until``, take (delete and return) the commands
        addressed to it, and return the ids of the rows it owns."""
        raise self._no_sharing("heartbeat")

    async def instances(self) -> list[InstanceInfo]:
        """Every instance row, live or not (the caller compares ``heartbeat_at``)."""
        raise self._no_sharing("instances")

    async def unregister_instance(self, *, instance_id: str) -> None:
        """A clean stop: delete the instance's row and end its leases (rows stay)."""
        raise self._no_sharing("unregister_instance")

    # -- claims ------------------------------------------------------------------------

    async def claim_due(
        self, *, owner: str, now: datetime, lease: timedelta, limit: int
    ) -> list[StoredJob]:
        """Lease to ``owner`` until ``now + lease`` up to ``limit`` one-off rows (push/at)
        that are due (``next_run_at <= now``), not permanently failed, and owned by no
        live instance (no lease, or an expired one), earliest first. Concurrent callers
        never get the same row (``FOR UPDATE SKIP LOCKED`` / ``BEGIN IMMEDIATE``)."""
        raise self._no_sharing("claim_due")

    async def adopt_orphans(
        self, *, owner: str, now: datetime, lease: timedelta, limit: int
    ) -> list[StoredJob]:
        """Take over rows nobody runs: lease to ``owner`` up to ``limit`` rows (earliest
        first) that are

        * of any trigger and any ``next_run_at``, whose lease expired (``lease_expires_at
          <= now``: their owner died or stalled);
        * unowned crons (their instance stopped cleanly, or they were never leased);
        * unowned one-off rows that are not due yet (``next_run_at > now``: a future
          ``at`` row whose instance stopped cleanly is re-armed at once, so ``find_job``
          sees it as on an unshared store).

        Unowned *due* one-off rows are left to :meth:`claim_due`, which respects the
        claimer's free capacity (that is how the load spreads). Permanently failed rows
        are not adopted. Rows leased to ``owner`` itself and still live are not returned."""
        raise self._no_sharing("adopt_orphans")

    async def next_due_at(self, *, now: datetime) -> datetime | None:
        """The earliest ``next_run_at`` among the one-off rows :meth:`claim_due` could
        claim at that time (owned by no live instance at ``now``), or None."""
        raise self._no_sharing("next_due_at")

    async def next_lease_expiry(self, *, owner: str, now: datetime) -> datetime | None:
        """The earliest ``lease_expires_at`` after ``now`` among the rows leased to an
        instance other than ``owner`` (not permanently failed): when :meth:`adopt_orphans`
        may next find an orphan. None if there is none, or if the store cannot tell (the
        default): the claimer then looks for orphans every ``poll_interval``."""
        await trio.lowlevel.checkpoint()
        return None

    async def claim_cron_slots(
        self, claims: Sequence[SlotClaim], /, *, now: datetime, lease: timedelta
    ) -> set[str]:
        """Commit each :class:`SlotClaim` that still holds (see its docs), all in one
        transaction; the ids of the jobs whose claim was committed. A claim whose slot was
        already claimed, whose ``expected_next_run_at`` no longer matches, or whose row is
        leased to another live instance is left out, and changes nothing."""
        raise self._no_sharing("claim_cron_slots")

    async def try_take(self, job: StoredJob, /, *, now: datetime) -> str | None:
        """Upsert ``job`` (leased to ``job.lease_owner``) unless the stored row of that id
        is leased to another live instance. None on success, else that owner's id."""
        raise self._no_sharing("try_take")

    async def try_delete(self, job_id: str, /, *, owner: str, now: datetime) -> str | None:
        """Delete row ``job_id`` unless it is leased to a live instance other than
        ``owner``. None if deleted (or absent), else the owner's id."""
        raise self._no_sharing("try_delete")

    async def wait_changed(self, *, poll_interval: float) -> bool:
        """Wait up to ``poll_interval`` seconds for another connection to change the store
        (PostgreSQL: a ``NOTIFY`` sent by an insert, release or command; SQLite: a new
        ``PRAGMA data_version``). True if a change was seen, False if the time ran out. The default
        just sleeps: the caller then polls every ``poll_interval`` seconds."""
        await trio.sleep(poll_interval)
        return False

    # -- reading -----------------------------------------------------------------------

    async def get_job(self, job_id: str, /) -> StoredJob | None:
        """The row ``job_id`` with its lease columns, or None."""
        raise self._no_sharing("get_job")

    async def fetch_results(self, job_ids: Sequence[str], /) -> list[StoredResult]:
        """The stored results of these jobs (those that have one)."""
        raise self._no_sharing("fetch_results")

    async def prune(
        self, *, results_before: datetime, claims_before: datetime, instances_before: datetime
    ) -> None:
        """Retention: delete results finished, slot claims made, and instance rows last
        heard from before the given times; then the commands sent before
        ``instances_before`` to an instance that has no row any more (it died: no one
        will ever take them)."""
        raise self._no_sharing("prune")

    def _no_sharing(self, method: str) -> SharingNotSupportedError:
        from ..storage import SharingNotSupportedError

        return SharingNotSupportedError(
            f"{type(self).__name__} does not support sharing a schedule between app "
            f"instances: it does not implement {method}()"
        )
