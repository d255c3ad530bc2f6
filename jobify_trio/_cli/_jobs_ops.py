"""``jobify-trio jobs delete / purge-unknown / pause / resume``, on SQLite and PostgreSQL.

Written once over :class:`OpsStore`, a transaction on either backend (SQLite: ``BEGIN
IMMEDIATE``; PostgreSQL: the job row read ``FOR UPDATE``), so what the command decides
from a row still holds when it acts on it. A job held by a live app instance is never
yanked from under it:

* **held by a live instance** (its row leased to a live instance; on SQLite also the one
  live app on a file that is not shared): the command stores a CANCEL (for ``delete``),
  PAUSE or RESUME command addressed to it, which it applies at its next heartbeat exactly
  as ``job.cancel()`` / ``job.pause()`` / ``job.resume()`` there (cancelling a running
  job, deleting the row, storing the result for the instance that scheduled it);
* **held by no live instance** (no lease, or an expired one, or its process gone on this
  host): ``delete`` deletes the row in the same transaction, stores a CANCELLED result
  for the instance that scheduled it (its handle ends CANCELLED) and, on SQLite, tells
  every live app to drop the job from memory too (a CANCEL command); ``pause``/``resume``
  update a cron's stored state, or a one-off job's ``paused`` column (an app restores
  it paused; due meanwhile, it runs at resume); a SQLite file written before schema
  version 3 has no such column, and pausing a one-off job in it is refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol, TextIO

import attrs

from .._cron._expression import CronExhausted
from .._cron._state import cron_from_json, cron_to_json
from ..storage import Command, CommandKind, ResultStatus, StoredJob, StoredResult, Trigger
from ._cron import CliError
from ._tables import Instance, is_live

__all__ = ["WAIT_POLL", "OpsStore", "OpsTx", "decoded_row", "delete_jobs", "holder", "pause_job"]

WAIT_POLL = 0.1
"""Seconds between two looks at the rows ``delete --wait`` waits for."""


class OpsTx(Protocol):
    """One transaction on a job store (see the module docs)."""

    def row(self, job_id: str) -> StoredJob | None:
        """The row ``job_id``, locked until the transaction ends (``CliError`` if corrupt)."""
        ...

    def instances(self) -> list[Instance]:
        """Every instance row (none on a store without instance table)."""
        ...

    def delete(self, job_id: str) -> None: ...

    def send(self, command: Command) -> None: ...

    def put_result(self, result: StoredResult) -> None: ...

    def set_cron(self, row: StoredJob, cron: str, next_run_at: datetime) -> None: ...

    def set_paused(self, job_id: str, paused: bool) -> bool:
        """Set a one-off job's stored paused state; False if the store cannot hold it."""
        ...


class OpsStore(Protocol):
    """A job store the command changes."""

    #: True on PostgreSQL: every row an app holds is leased to it.
    always_leased: bool

    def transaction(self) -> AbstractContextManager[OpsTx]: ...


def decoded_row(
    raw: tuple[Any, ...] | None, job_id: str, decode: Callable[[tuple[Any, ...]], StoredJob]
) -> StoredJob | None:
    """The fetched row of ``job_id`` decoded by the store's ``decode``, None if there is
    none (``CliError`` if it is corrupt)."""
    if raw is None:
        return None
    try:
        return decode(raw)
    except (TypeError, ValueError) as exc:
        raise CliError(f"the row of job {job_id!r} is unreadable: {exc}") from None


def holder(
    row: StoredJob, instances: Sequence[Instance], now: datetime, *, always_leased: bool
) -> str | None:
    """The live instance that holds ``row``, if any: its lease owner while the lease runs,
    its instance row is there (not a clean stop) and, on this host, its process runs; on
    a store whose held rows may carry no lease (SQLite), the one live instance when there
    is exactly one."""
    by_id = {i.instance_id: i for i in instances}
    owner, expires = row.lease_owner, row.lease_expires_at
    if owner is not None:
        if expires is None or expires <= now:
            return None
        info = by_id.get(owner)
        return owner if info is not None and is_live(info, now) else None
    if always_leased:
        return None
    live = [i.instance_id for i in instances if is_live(i, now)]
    return live[0] if len(live) == 1 else None


def delete_jobs(
    store: OpsStore, job_ids: Sequence[str], now: datetime, out: TextIO, *, wait: float = 0.0
) -> int:
    """Delete (or have their live holders cancel) ``job_ids``, then wait up to ``wait``
    seconds for the holders to apply their cancels; the exit code."""
    deleted, sent = 0, []
    for job_id in job_ids:
        target = _delete_one(store, job_id, now)
        if target is None:
            continue
        if target:
            sent.append(job_id)
            print(f"cancel of {job_id!r} sent to instance {target!r} (it deletes the job at "
                  "its next heartbeat)", file=out)  # fmt: skip
        else:
            deleted += 1
    tail = f"; {len(sent)} sent to the live instance(s) holding them" if sent else ""
    print(f"deleted {deleted} of {len(job_ids)} job(s){tail}", file=out)
    applied = not sent or wait <= 0 or _wait_applied(store, sent, wait, out)
    return 0 if deleted + len(sent) == len(job_ids) and applied else 1


def _wait_applied(store: OpsStore, job_ids: Sequence[str], wait: float, out: TextIO) -> bool:
    """Poll until the rows ``job_ids`` are gone (their cancels applied), ``wait`` s at most."""
    start = time.monotonic()
    left = list(job_ids)
    while True:
        with store.transaction() as tx:
            left = [job_id for job_id in left if tx.row(job_id) is not None]
        took = time.monotonic() - start
        if not left:
            print(f"all {len(job_ids)} cancel(s) applied after {took:.1f} s", file=out)
            return True
        if took >= wait:
            print(f"after {wait:g} s, still held: {', '.join(left)}", file=out)
            return False
        time.sleep(min(WAIT_POLL, max(wait - took, 0.0)))


def _delete_one(store: OpsStore, job_id: str, now: datetime) -> str | None:
    """None: no such row; ``""``: deleted here; else the instance sent a CANCEL."""
    with store.transaction() as tx:
        row = tx.row(job_id)
        if row is None:
            return None
        instances = tx.instances()
        target = holder(row, instances, now, always_leased=store.always_leased)
        if target is not None and (store.always_leased or row.lease_owner is not None):
            tx.send(Command(target=target, job_id=job_id, kind=CommandKind.CANCEL, created_at=now))
            return target
        tx.delete(job_id)
        if row.origin is not None:
            status = ResultStatus.CANCELLED
            result = StoredResult(job_id=job_id, origin=row.origin, status=status, finished_at=now)
            tx.put_result(result)
        if not store.always_leased:  # a lone app on the file may hold it unleased
            for info in instances:
                if is_live(info, now):
                    command = Command(
                        target=info.instance_id, job_id=job_id, kind=CommandKind.CANCEL,
                        created_at=now,
                    )  # fmt: skip
                    tx.send(command)
        return ""


def pause_job(store: OpsStore, job_id: str, *, paused: bool, now: datetime, out: TextIO) -> int:
    """Pause (or resume) ``job_id``; the exit code."""
    verb = "pause" if paused else "resume"
    with store.transaction() as tx:
        row = tx.row(job_id)
        if row is None:
            raise CliError(f"no stored job {job_id!r}")
        target = holder(row, tx.instances(), now, always_leased=store.always_leased)
        if target is not None:
            kind = CommandKind.PAUSE if paused else CommandKind.RESUME
            tx.send(Command(target=target, job_id=job_id, kind=kind, created_at=now))
            print(f"{verb} of {job_id!r} sent to instance {target!r} (applied at its next "
                  "heartbeat)", file=out)  # fmt: skip
            return 0
        if row.trigger is not Trigger.CRON:
            if not tx.set_paused(job_id, paused):
                raise CliError(
                    f"job {job_id!r} is a one-off job, no live app holds it, and this file "
                    f"(schema version < 3) cannot store its paused state; {verb} it from its "
                    "app while it runs"
                )
        else:
            cron, next_run_at = paused_cron(row, paused=paused, now=now)
            tx.set_cron(row, cron, next_run_at)
    print(f"{job_id!r} {verb}d in the store (an app restoring it sees that)", file=out)
    return 0


def paused_cron(row: StoredJob, *, paused: bool, now: datetime) -> tuple[str, datetime]:
    """A cron row's stored state with its paused flag; on resume, a next run in the past
    moves to the next slot after now (paused slots are not caught up)."""
    try:
        cron, state = cron_from_json(row.cron or "")
    except ValueError as exc:
        raise CliError(f"job {row.job_id!r}: {exc}") from None
    state = attrs.evolve(state, paused=paused)
    next_run_at = row.next_run_at
    if not paused and state.next_run_at is not None and state.next_run_at <= now:
        # the next slot after now: in the cron's zone, else at the offset stored with the row
        zone = cron.tz or state.next_run_at.tzinfo
        try:
            following = cron.compile(hash_id=row.job_id).next_after(now.astimezone(zone))
        except CronExhausted:
            following = None
        state = attrs.evolve(state, next_run_at=following, offset=now.astimezone(zone))
        next_run_at = following or now
    return cron_to_json(cron, state), next_run_at
