"""SQLite: a job row's column values to and from a :class:`~jobify_trio.storage.StoredJob`.

Times are stored as UTC ISO-8601 text with microseconds (``2026-01-01T00:00:00.000000+00:00``):
readable in any SQLite shell, and ordered correctly by plain text comparison. Used by
``_sqlite.py`` (the job table), the sharing and run-history modules, and the operator CLI.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

from ..storage import StoredJob, StoredState, Trigger
from ._columns import STATES, TRIGGERS

__all__ = ["ROW_GROUPS", "from_db_time", "job_to_row", "row_to_job", "row_values", "to_db_time"]

_OPTIONAL: tuple[Any, ...] = (None, None, None, 0)  # lease_owner, lease_expires_at, origin, paused


#: The last second :func:`to_db_time` wrote: its start and end (UTC) and its text up to
#: the microseconds (replaced whole, so the SQLite thread and the trio thread may share it).
_last_second: tuple[datetime, datetime, str] = (
    datetime.max.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC), ""
)  # fmt: skip
_SECOND: Final = timedelta(seconds=1)
_LAST_SECOND: Final = datetime.max.replace(microsecond=0, tzinfo=UTC)


def to_db_time(moment: datetime) -> str:
    """An aware datetime as sortable UTC text (``isoformat`` with microseconds).

    The text up to the microseconds is reused while the second does not change: the
    times of a loop of pushes share it, and formatting it costs ``isoformat`` most of
    its time. Two comparisons find that second (cheaper than reading its six fields)."""
    global _last_second
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    start, end, text = _last_second
    if start <= moment < end:
        return f"{text}{moment.microsecond:06d}+00:00"
    start = moment.replace(microsecond=0)
    text = (
        f"{start.year:04d}-{start.month:02d}-{start.day:02d}T{start.hour:02d}:"
        f"{start.minute:02d}:{start.second:02d}."
    )
    if start < _LAST_SECOND:  # (the last one has no end: it is not reused)
        _last_second = (start, start + _SECOND, text)
    return f"{text}{moment.microsecond:06d}+00:00"


def from_db_time(text: str) -> datetime:
    """Stored UTC text back to an aware datetime (``ValueError`` if it is not one)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"stored time {text!r} has no UTC offset")
    return moment


def job_to_row(job: StoredJob) -> tuple[Any, ...]:
    """The column values of a :class:`StoredJob`, in ``COLUMNS`` order."""
    lease = job.lease_expires_at
    return (
        *_leading(job),
        job.cron,
        job.lease_owner,
        None if lease is None else to_db_time(lease),
        job.origin,
        int(job.paused),
    )


#: How :func:`row_values` binds a row, by kind: the values of one row in a statement
#: and their number. A "plain" row has no cron, lease nor origin (a row of an unshared
#: store): those are ``NULL`` literals. A "pushed" row is also a push at its first
#: attempt, scheduled and not paused (each row of a push loop): those columns are
#: literals too.
ROW_GROUPS: Final = {
    "upsert": ("(" + ", ".join("?" * 12) + ")", 12),
    "plain": ("(?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, ?)", 8),
    "pushed": (
        f"(?, ?, '{Trigger.PUSH._value_}', ?, ?, 1, '{StoredState.SCHEDULED._value_}', "
        "NULL, NULL, NULL, NULL, 0)",
        4,
    ),
}


def row_values(job: StoredJob) -> tuple[str, tuple[Any, ...]]:
    """The kind of ``job``'s row in :data:`ROW_GROUPS` and the values it binds. Binding
    ``None`` costs ``sqlite3`` an adapter lookup per value (see :func:`_leading`), and each
    text value a copy; a literal in the statement costs nothing."""
    if (
        job.cron is not None
        or job.lease_owner is not None
        or job.lease_expires_at is not None
        or job.origin is not None
    ):
        return "upsert", job_to_row(job)
    if (
        job.trigger is Trigger.PUSH
        and job.attempt == 1
        and job.state is StoredState.SCHEDULED
        and not job.paused
    ):
        arguments = bytearray(job.arguments)
        return "pushed", (job.job_id, job.task_name, to_db_time(job.next_run_at), arguments)
    return "plain", (*_leading(job), int(job.paused))


def _leading(job: StoredJob) -> tuple[Any, ...]:
    """The values of the first seven columns (up to ``state``).

    The arguments are bound as a ``bytearray`` (stored as the same blob): ``sqlite3`` binds
    ``str``, ``int``, ``float`` and ``bytearray`` as they are, but looks every other value
    (``bytes``, ``None``) up in its adapter registry first, which costs more than the copy.
    The enums' ``_value_`` is their text read as a plain attribute (``.value`` is a
    property: a Python call each).
    """
    return (
        job.job_id,
        job.task_name,
        job.trigger._value_,
        to_db_time(job.next_run_at),
        bytearray(job.arguments),
        job.attempt,
        job.state._value_,
    )


def row_to_job(raw: tuple[Any, ...]) -> StoredJob:
    """Column values back to a :class:`StoredJob`; ``ValueError``/``TypeError`` if corrupt.

    ``raw`` holds the columns of ``COLUMNS`` (the last four, lease, origin and paused,
    may be left out). Every column is checked here, so the row is built unvalidated.
    """
    job_id, task, trigger, next_run_at, arguments, attempt, state, cron = raw[:8]
    if type(job_id) is not str or type(task) is not str:
        raise TypeError("job_id and task must be text")
    if type(arguments) is not bytes:
        raise TypeError(f"arguments must be a blob, got {type(arguments).__name__}")
    if type(attempt) is not int or attempt < 1:
        raise ValueError(f"attempt must be an integer >= 1, got {attempt!r}")
    if cron is not None and type(cron) is not str:
        raise TypeError("cron must be text")
    kind, where = TRIGGERS.get(trigger), STATES.get(state)
    if kind is None or where is None:
        raise ValueError(f"unknown trigger {trigger!r} or state {state!r}")
    optional: tuple[Any, ...] = (*raw[8:12], *_OPTIONAL[len(raw) - 8 :])
    owner, lease, origin, paused = optional
    if paused not in (0, 1):
        raise ValueError(f"paused must be 0 or 1, got {paused!r}")
    if (owner is not None and type(owner) is not str) or (
        origin is not None and type(origin) is not str
    ):
        raise TypeError("lease_owner and origin must be text")
    return StoredJob._trusted(
        job_id,
        task,
        kind,
        from_db_time(next_run_at),
        arguments,
        attempt,
        where,
        cron,
        owner,
        None if lease is None else from_db_time(lease),
        origin,
        paused == 1,
    )
