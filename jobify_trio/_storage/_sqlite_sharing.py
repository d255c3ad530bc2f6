"""The sharing methods of :class:`~jobify_trio.storage.SQLiteStorage` (a mixin).

Each method hands one function of :mod:`jobify_trio._storage._sqlite_share` to the
connection's thread. :meth:`wait_changed` polls ``PRAGMA data_version`` on that thread
every :data:`DATA_VERSION_POLL` seconds of real time: it changes when another connection
(another process) commits, and costs one thread hop.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from types import ModuleType
from typing import TYPE_CHECKING, Final

import trio

from ._shared import Heartbeat, InstanceInfo, SlotClaim, StoredResult

if TYPE_CHECKING:
    from ..storage import StoredJob
    from ._sqlite_thread import SQLiteThread

__all__ = ["DATA_VERSION_POLL", "SQLiteSharing"]

#: Seconds between two ``PRAGMA data_version`` reads in :meth:`SQLiteSharing.wait_changed`.
DATA_VERSION_POLL: Final = 0.05


def _share() -> ModuleType:
    # Imported on first use: the module needs jobify_trio.storage, which imports this one.
    return importlib.import_module("jobify_trio._storage._sqlite_share")


class SQLiteSharing:
    """Presence, leases, claims, results and wake-ups on one SQLite file."""

    _data_version: int | None = None
    shared: bool = False

    if TYPE_CHECKING:

        def _open_thread(self) -> SQLiteThread: ...  # provided by SQLiteStorage

    @property
    def can_share(self) -> bool:
        """True if built with ``shared=True``: several processes may share the file."""
        return self.shared

    async def register_instance(self, info: InstanceInfo, /) -> None:
        """Add (or replace) the instance's row."""
        await self._open_thread().call(lambda db: _share().register_instance(db, info))

    async def heartbeat(
        self, *, instance_id: str, now: datetime, lease_until: datetime
    ) -> Heartbeat:
        """Renew the instance and its leases; take its commands (one transaction). It runs
        ahead of the calls queued on the connection's thread (claims, reads, commits that
        fell back to the thread), as on PostgreSQL: a renewal behind a backlog can come
        after the leases of a live instance ran out."""
        beat: Heartbeat = await self._open_thread().call(
            lambda db: _share().heartbeat(
                db, instance_id=instance_id, now=now, lease_until=lease_until
            ),
            urgent=True,
        )
        return beat

    async def instances(self) -> list[InstanceInfo]:
        """Every instance row."""
        found: list[InstanceInfo] = await self._open_thread().call(_share().instances)
        return found

    async def unregister_instance(self, *, instance_id: str) -> None:
        """Delete the instance's row and end its leases."""
        await self._open_thread().call(
            lambda db: _share().unregister_instance(db, instance_id=instance_id)
        )

    async def claim_due(
        self, *, owner: str, now: datetime, lease: timedelta, limit: int
    ) -> list[StoredJob]:
        """Lease due rows owned by no live instance to ``owner`` (``BEGIN IMMEDIATE``)."""
        jobs: list[StoredJob] = await self._open_thread().call(
            lambda db: _share().claim_due(db, owner=owner, now=now, lease=lease, limit=limit)
        )
        return jobs

    async def adopt_orphans(
        self, *, owner: str, now: datetime, lease: timedelta, limit: int
    ) -> list[StoredJob]:
        """Lease rows whose lease expired (and unowned cron rows) to ``owner``."""
        jobs: list[StoredJob] = await self._open_thread().call(
            lambda db: _share().adopt_orphans(db, owner=owner, now=now, lease=lease, limit=limit)
        )
        return jobs

    async def next_due_at(self, *, now: datetime) -> datetime | None:
        """The earliest run of a claimable one-off row."""
        due: datetime | None = await self._open_thread().call(
            lambda db: _share().next_due_at(db, now=now)
        )
        return due

    async def next_lease_expiry(self, *, owner: str, now: datetime) -> datetime | None:
        """The earliest future lease expiry of a row leased to another instance."""
        expiry: datetime | None = await self._open_thread().call(
            lambda db: _share().next_lease_expiry(db, owner=owner, now=now)
        )
        return expiry

    async def claim_cron_slots(
        self, claims: Sequence[SlotClaim], /, *, now: datetime, lease: timedelta
    ) -> set[str]:
        """Commit the slot claims that still hold, in one transaction."""
        if not claims:
            return set()
        won: set[str] = await self._open_thread().call(
            lambda db: _share().claim_cron_slots(db, claims, now=now, lease=lease)
        )
        return won

    async def try_take(self, job: StoredJob, /, *, now: datetime) -> str | None:
        """Upsert ``job`` unless another live instance owns the row."""
        other: str | None = await self._open_thread().call(
            lambda db: _share().try_take(db, job, now=now)
        )
        return other

    async def try_delete(self, job_id: str, /, *, owner: str, now: datetime) -> str | None:
        """Delete the row unless another live instance owns it."""
        other: str | None = await self._open_thread().call(
            lambda db: _share().try_delete(db, job_id, owner=owner, now=now)
        )
        return other

    async def get_job(self, job_id: str, /) -> StoredJob | None:
        """The row with its lease columns and origin, or None."""
        job: StoredJob | None = await self._open_thread().call(
            lambda db: _share().get_job(db, job_id)
        )
        return job

    async def fetch_results(self, job_ids: Sequence[str], /) -> list[StoredResult]:
        """The stored results of these jobs."""
        if not job_ids:
            return []
        found: list[StoredResult] = await self._open_thread().call(
            lambda db: _share().fetch_results(db, job_ids)
        )
        return found

    async def prune(
        self, *, results_before: datetime, claims_before: datetime, instances_before: datetime
    ) -> None:
        """Delete old results, slot claims and instance rows."""
        await self._open_thread().call(
            lambda db: _share().prune(
                db,
                results_before=results_before,
                claims_before=claims_before,
                instances_before=instances_before,
            )
        )

    async def wait_changed(self, *, poll_interval: float) -> bool:
        """Poll ``PRAGMA data_version`` every 50 ms for up to ``poll_interval`` seconds.

        The whole 50 ms pauses are *real* time, slept in a worker thread: they are no trio
        deadline, so under a virtual clock (``autojump_clock``) they never hold time back
        nor make it crawl in 50 ms steps; ``poll_interval`` is measured on trio's clock.
        The last, shorter pause is a trio sleep to that deadline: as a real pause shorter
        than the autojump threshold it livelocked a virtual clock, which never jumped to
        the deadline and never reached it.
        """
        thread = self._open_thread()
        deadline = trio.current_time() + poll_interval
        while True:
            version = await thread.call(lambda db: db.data_version())
            seen, self._data_version = self._data_version, version
            if seen is not None and seen != version:
                return True
            left = deadline - trio.current_time()
            if left <= 0:
                return False
            if left <= DATA_VERSION_POLL:
                await trio.sleep_until(deadline)
            else:
                await trio.to_thread.run_sync(time.sleep, DATA_VERSION_POLL, abandon_on_cancel=True)
