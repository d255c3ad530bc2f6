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
    "taken_away",
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
