"""An in-memory store that implements the whole :class:`~jobify_trio.storage.Storage`
interface, sharing methods included: the reference for the sharing protocol.

Public as :class:`jobify_trio.testing.MemoryStorage`. Several app instances in one
``trio.run`` may share one object under one ``MockClock``: that is how the protocol is
tested deterministically (the SQLite and PostgreSQL stores work in threads, which
trio's autojump cannot see). Every method is atomic (it never awaits in the middle).

Liveness of a row (as in the SQL stores): it is held by ``lease_owner`` while
``lease_expires_at > now``; its lease *expired* when ``lease_expires_at <= now``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import attrs
import trio

from ..storage import (
    Command,
    Delete,
    Heartbeat,
    InstanceInfo,
    LoadResult,
    PruneRuns,
    PutResult,
    RecordRun,
    Release,
    SendCommand,
    SetPaused,
    SlotClaim,
    Storage,
    StorageError,
    StoredJob,
    StoredResult,
    StoredRun,
    StoredState,
    Trigger,
    Upsert,
    Write,
)

__all__ = ["MemoryStorage"]

_ONE_OFF = (Trigger.PUSH, Trigger.AT)


def _held(job: StoredJob, now: datetime) -> bool:
    """True while a live lease holds the row."""
    expires = job.lease_expires_at
    return job.lease_owner is not None and expires is not None and expires > now


def _expired(job: StoredJob, now: datetime) -> bool:
    expires = job.lease_expires_at
    return job.lease_owner is not None and (expires is None or expires <= now)


def _adoptable_unowned(job: StoredJob, now: datetime) -> bool:
    """An unowned row anyone adopts: a cron, or a one-off row not due yet (a due one is
    left to :meth:`MemoryStorage.claim_due`, which respects the claimer's capacity)."""
    return job.trigger is Trigger.CRON or job.next_run_at > now


def _latest(runs: list[StoredRun], per_job: int, only: set[str] | None) -> list[StoredRun]:
    """``runs`` without those past the latest ``per_job`` of their job (of the jobs in
    ``only``; of every job if it is None), order kept."""
    counts: dict[str, int] = {}
    kept: list[StoredRun] = []
    for run in reversed(runs):
        count = counts[run.job_id] = counts.get(run.job_id, 0) + 1
        if count <= per_job or (only is not None and run.job_id not in only):
            kept.append(run)
    kept.reverse()
    return kept


def _pruned(runs: list[StoredRun], prune: PruneRuns) -> list[StoredRun]:
    recent = [run for run in runs if run.ended_at >= prune.before]
    if prune.job_ids:
        recent = _latest(recent, prune.per_job, set(prune.job_ids))
    if prune.max_runs is not None:
        recent = recent[-prune.max_runs :] if prune.max_runs else []
    return recent


def _leased(job: StoredJob, owner: str | None, until: datetime | None) -> StoredJob:
    return attrs.evolve(job, lease_owner=owner, lease_expires_at=until)


class MemoryStorage(Storage):
    """Jobs, instances, commands, slot claims and results in memory (see the module docs).

    The rows outlive :meth:`shutdown` (so one object can be restarted like a file), but
    not the process. ``startups`` counts the instances that opened it.
    """

    def __init__(self) -> None:
        self.rows: dict[str, StoredJob] = {}
        self.instance_rows: dict[str, InstanceInfo] = {}
        self.commands: list[Command] = []
        self.claims: dict[tuple[str, datetime], datetime] = {}  # (job_id, slot) -> made at
        self.results: dict[str, StoredResult] = {}
        self.runs: list[StoredRun] = []  # the run history, oldest first
        self.startups = 0
        self.applied = 0  # apply() calls (transactions), for tests
        self._command_ids = 0
        self._changed = trio.Event()

    @property
    def can_share(self) -> bool:
        """Several instances may share one :class:`MemoryStorage` (in one process)."""
        return True

    async def startup(self) -> None:
        """Nothing to open."""
        self.startups += 1
        await trio.lowlevel.checkpoint()

    async def shutdown(self) -> None:
        """Nothing to close; the rows stay."""
        await trio.lowlevel.checkpoint()

    async def load(self) -> LoadResult:
        """Every stored row, in insertion order."""
        await trio.lowlevel.checkpoint()
        return LoadResult(jobs=list(self.rows.values()))

    async def apply(self, writes: Sequence[Write], /) -> None:
        """Apply the writes in order (atomically: nothing awaits in between)."""
        await trio.lowlevel.checkpoint()
        notify = False
        for write in writes:
            notify |= self._apply_one(write)
        self.applied += 1
        if notify:
            self._notify()

    def _apply_one(self, write: Write) -> bool:
        if isinstance(write, Upsert):
            self.rows[write.job.job_id] = write.job
            return True
        if isinstance(write, Delete):
            self.rows.pop(write.job_id, None)
            return False
        if isinstance(write, PutResult):
            self.results[write.result.job_id] = write.result
            return False
        if isinstance(write, Release):
            row = self.rows.get(write.job_id)
            if row is None or row.lease_owner != write.owner:
                return False  # not ours (or the heartbeat's empty barrier): nothing changes
            self.rows[write.job_id] = _leased(row, None, None)
            return True
        if isinstance(write, SendCommand):
            self._command_ids += 1
            self.commands.append(attrs.evolve(write.command, command_id=self._command_ids))
            return True
        return self._apply_other(write)

    def _apply_other(self, write: Write) -> bool:
        if isinstance(write, SetPaused):
            row = self.rows.get(write.job_id)
            if row is not None:
                self.rows[write.job_id] = attrs.evolve(row, paused=write.paused)
            return False
        if isinstance(write, RecordRun):
            self.runs.append(write.run)
            return False
        if isinstance(write, PruneRuns):
            self.runs = _pruned(self.runs, write)
            return False
        raise StorageError(f"MemoryStorage cannot apply {write!r}")

    @property
    def keeps_runs(self) -> bool:
        """True: runs are kept in the list ``runs``."""
        return True

    @property
    def stores_paused(self) -> bool:
        """True: ``StoredJob.paused`` of the rows."""
        return True

    async def load_runs(
        self, *, since: datetime, per_job: int, job_id: str | None = None
    ) -> list[StoredRun]:
        """The latest ``per_job`` runs of each job that ended at or after ``since``."""
        await trio.lowlevel.checkpoint()
        found = [r for r in self.runs if r.ended_at >= since and job_id in (None, r.job_id)]
        return _latest(found, per_job, None)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # -- presence ----------------------------------------------------------------------

    async def register_instance(self, info: InstanceInfo, /) -> None:
        """Add (or replace) the instance's row."""
        await trio.lowlevel.checkpoint()
        self.instance_rows[info.instance_id] = info

    async def heartbeat(
        self, *, instance_id: str, now: datetime, lease_until: datetime
    ) -> Heartbeat:
        """Renew the instance and its leases, take its commands (see the interface)."""
        await trio.lowlevel.checkpoint()
        info = self.instance_rows.get(instance_id)
        if info is not None:
            self.instance_rows[instance_id] = attrs.evolve(info, heartbeat_at=now)
        owned = set()
        for job_id, row in self.rows.items():
            if row.lease_owner == instance_id:
                self.rows[job_id] = _leased(row, instance_id, lease_until)
                owned.add(job_id)
        mine = tuple(c for c in self.commands if c.target == instance_id)
        if mine:
            self.commands = [c for c in self.commands if c.target != instance_id]
        return Heartbeat(owned=frozenset(owned), commands=mine)

    async def instances(self) -> list[InstanceInfo]:
        """Every instance row."""
        await trio.lowlevel.checkpoint()
        return list(self.instance_rows.values())

    async def unregister_instance(self, *, instance_id: str) -> None:
        """Delete the instance's row and end its leases (rows stay)."""
        await trio.lowlevel.checkpoint()
        self.instance_rows.pop(instance_id, None)
        for job_id, row in list(self.rows.items()):
            if row.lease_owner == instance_id:
                self.rows[job_id] = _leased(row, None, None)
        self._notify()

    # -- claims ------------------------------------------------------------------------

    async def claim_due(
        self, *, owner: str, now: datetime, lease: timedelta, limit: int
    ) -> list[StoredJob]:
        """Lease due, unowned one-off rows to ``owner``, earliest first."""
        await trio.lowlevel.checkpoint()
        due = [
            row
            for row in self.rows.values()
            if row.trigger in _ONE_OFF
            and row.state is not StoredState.PERMANENTLY_FAILED
            and row.next_run_at <= now
            and not _held(row, now)
        ]
        due.sort(key=lambda row: row.next_run_at)
        return self._lease_all(due[: max(limit, 0)], owner, now + lease)

    async def adopt_orphans(
        self, *, owner: str, now: datetime, lease: timedelta, limit: int
    ) -> list[StoredJob]:
        """Lease to ``owner`` rows with an expired lease, and unowned crons and not yet
        due one-off rows."""
        await trio.lowlevel.checkpoint()
        orphans = [
            row
            for row in self.rows.values()
            if row.state is not StoredState.PERMANENTLY_FAILED
            and (_expired(row, now) or (row.lease_owner is None and _adoptable_unowned(row, now)))
        ]
        orphans.sort(key=lambda row: row.next_run_at)
        return self._lease_all(orphans[: max(limit, 0)], owner, now + lease)

    def _lease_all(self, rows: list[StoredJob], owner: str, until: datetime) -> list[StoredJob]:
        leased = [_leased(row, owner, until) for row in rows]
        for row in leased:
            self.rows[row.job_id] = row
        return leased

    async def next_due_at(self, *, now: datetime) -> datetime | None:
        """The earliest ``next_run_at`` of an unowned one-off row."""
        await trio.lowlevel.checkpoint()
        times = [
            row.next_run_at
            for row in self.rows.values()
            if row.trigger in _ONE_OFF
            and row.state is not StoredState.PERMANENTLY_FAILED
            and not _held(row, now)
        ]
        return min(times, default=None)

    async def next_lease_expiry(self, *, owner: str, now: datetime) -> datetime | None:
        """The earliest future lease expiry of a row leased to another instance."""
        await trio.lowlevel.checkpoint()
        times = [
            row.lease_expires_at
            for row in self.rows.values()
            if row.lease_owner not in (None, owner)
            and row.lease_expires_at is not None
            and row.lease_expires_at > now
            and row.state is not StoredState.PERMANENTLY_FAILED
        ]
        return min(times, default=None)

    async def claim_cron_slots(
        self, claims: Sequence[SlotClaim], /, *, now: datetime, lease: timedelta
    ) -> set[str]:
        """Commit each claim that still holds (unique slot + compare-and-set)."""
        await trio.lowlevel.checkpoint()
        won: set[str] = set()
        for claim in claims:
            row = self.rows.get(claim.job_id)
            if row is None or (claim.job_id, claim.slot) in self.claims:
                continue
            if row.next_run_at != claim.expected_next_run_at:
                continue
            if _held(row, now) and row.lease_owner != claim.owner:
                continue
            self.claims[(claim.job_id, claim.slot)] = now
            self.rows[claim.job_id] = attrs.evolve(
                row,
                cron=claim.cron,
                next_run_at=claim.next_run_at,
                lease_owner=claim.owner,
                lease_expires_at=now + lease,
            )
            won.add(claim.job_id)
        return won

    async def try_take(self, job: StoredJob, /, *, now: datetime) -> str | None:
        """Upsert ``job`` unless its row is held by another live instance."""
        await trio.lowlevel.checkpoint()
        stored = self.rows.get(job.job_id)
        if stored is not None and _held(stored, now) and stored.lease_owner != job.lease_owner:
            return stored.lease_owner
        self.rows[job.job_id] = job
        self._notify()
        return None

    async def try_delete(self, job_id: str, /, *, owner: str, now: datetime) -> str | None:
        """Delete the row unless it is held by a live instance other than ``owner``."""
        await trio.lowlevel.checkpoint()
        stored = self.rows.get(job_id)
        if stored is None:
            return None
        if _held(stored, now) and stored.lease_owner != owner:
            return stored.lease_owner
        del self.rows[job_id]
        return None

    async def wait_changed(self, *, poll_interval: float) -> bool:
        """Wait for an insert, release, command or unregistration (from any instance)."""
        with trio.move_on_after(poll_interval):
            await self._changed.wait()
            return True
        return False

    # -- reading -----------------------------------------------------------------------

    async def get_job(self, job_id: str, /) -> StoredJob | None:
        """The row, lease columns included."""
        await trio.lowlevel.checkpoint()
        return self.rows.get(job_id)

    async def fetch_results(self, job_ids: Sequence[str], /) -> list[StoredResult]:
        """The stored results of these jobs."""
        await trio.lowlevel.checkpoint()
        return [self.results[i] for i in job_ids if i in self.results]

    async def prune(
        self, *, results_before: datetime, claims_before: datetime, instances_before: datetime
    ) -> None:
        """Drop old results, slot claims and instance rows."""
        await trio.lowlevel.checkpoint()
        self.results = {k: r for k, r in self.results.items() if r.finished_at >= results_before}
        self.claims = {k: t for k, t in self.claims.items() if t >= claims_before}
        self.instance_rows = {
            k: i for k, i in self.instance_rows.items() if i.heartbeat_at >= instances_before
        }
        self.commands = [
            c
            for c in self.commands
            if c.target in self.instance_rows or c.created_at >= instances_before
        ]

    def __repr__(self) -> str:
        return f"<MemoryStorage rows={len(self.rows)} instances={len(self.instance_rows)}>"
