"""Pure decisions of the sharing protocol (no trio, no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from ..storage import InstanceInfo, ResultStatus

__all__ = [
    "FINAL_TO_RESULT",
    "describe_error",
    "describe_instance",
    "live_others",
    "reread_expiry",
    "taken_away",
    "takeover_wait",
]

FINAL_TO_RESULT: Mapping[str, ResultStatus] = {
    "success": ResultStatus.SUCCESS,
    "failed": ResultStatus.FAILED,
    "timeout": ResultStatus.TIMEOUT,
    "cancelled": ResultStatus.CANCELLED,
    "permanently_failed": ResultStatus.PERMANENTLY_FAILED,
}
"""The stored status of a job that ended with a :class:`~jobify_trio.JobStatus` value."""


def live_others(
    instances: Iterable[InstanceInfo], *, me: str, now: datetime, lease: timedelta
) -> list[InstanceInfo]:
    """The instances other than ``me`` heard from within one lease of ``now``."""
    return [i for i in instances if i.instance_id != me and i.heartbeat_at + lease > now]


def taken_away(candidates: Iterable[str], owned: frozenset[str]) -> list[str]:
    """Ids of rows we held before a heartbeat that it no longer reports as ours."""
    return [job_id for job_id in candidates if job_id not in owned]


def describe_error(exception: BaseException | None) -> str | None:
    """``"ExceptionType: message"`` for a stored result (the cause, for a wrapper)."""
    if exception is None:
        return None
    return f"{type(exception).__name__}: {exception}"


def describe_instance(info: InstanceInfo) -> str:
    """How an error message names another instance."""
    return f"{info.instance_id!r} (host {info.host!r}, pid {info.pid})"


def reread_expiry(
    expiry: datetime | None, read_at: datetime | None, now: datetime, *, every: timedelta
) -> bool:
    """Read the earliest lease expiry of the other instances again? Yes if never read, once
    it passed (its rows were adopted, or renewed: a later one is next), and, while there
    was none, every ``every`` (the heartbeat interval: a row leased after a read expires at
    least one lease later, so the next read still comes before it), and after the wall
    clock was set back."""
    if read_at is None or now < read_at or (expiry is not None and expiry <= now):
        return True
    return expiry is None and now - read_at >= every


def takeover_wait(expiry: datetime | None, now: datetime, *, slack: float) -> float | None:
    """Seconds until the claimer should look for orphans: ``slack`` after the earliest
    lease expiry of another instance (None: no lease to wait for)."""
    if expiry is None:
        return None
    return max((expiry - now).total_seconds(), 0.0) + slack
