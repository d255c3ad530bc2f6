"""The records of the storage interface: stored rows, load results and the writes of a batch.

Private: every name here is public as ``jobify_trio.storage.<name>`` (their documented home;
``__module__`` is set to it below, for the reference, pickling and reprs). Kept apart from
:mod:`jobify_trio.storage` (the :class:`~jobify_trio.storage.Storage` interface and the
SQLite store) so that module stays small; this one imports nothing of the package but the
sharing values.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Final, TypeAlias

import attrs

from ._shared import Command, StoredResult

__all__ = [
    "CorruptRow",
    "Delete",
    "LoadResult",
    "PruneRuns",
    "PutResult",
    "RecordRun",
    "Release",
    "SendCommand",
    "SetPaused",
    "StoredJob",
    "StoredRun",
    "StoredState",
    "Trigger",
    "Upsert",
    "validate_table_name",
]

_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class Trigger(enum.StrEnum):
    """What kind of schedule a stored row holds."""

    PUSH = "push"
    AT = "at"
    CRON = "cron"


class StoredState(enum.StrEnum):
    """Where a stored job is: waiting for its run, for a retry, or failed for good (crons)."""

    SCHEDULED = "scheduled"
    RETRYING = "retrying"
    PERMANENTLY_FAILED = "permanently_failed"


def _aware(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None and attribute.name == "lease_expires_at":
        return
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{attribute.name} must be an aware datetime, got {value!r}")


@attrs.frozen(kw_only=True)
class StoredJob:
    """One stored job.

    ``arguments`` is the envelope written by
    :func:`~jobify_trio.serializers.encode_call_arguments`. ``attempt`` is the attempt
    the job runs next (``> 1`` for a pending retry). ``cron`` is a JSON text holding a
    cron job's schedule and counters (``None`` for one-off jobs). ``lease_owner`` and
    ``lease_expires_at`` are set while an app instance holds a claim on the row;
    ``origin`` is the instance that scheduled the job (for results across instances).
    ``paused`` is True while a one-off job is paused (a cron job's paused state is kept in
    its ``cron`` state).
    """

    job_id: str
    task_name: str
    trigger: Trigger = attrs.field(converter=Trigger)
    next_run_at: datetime = attrs.field(validator=_aware)
    arguments: bytes
    attempt: int = 1
    state: StoredState = attrs.field(default=StoredState.SCHEDULED, converter=StoredState)
    cron: str | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = attrs.field(default=None, validator=_aware)
    origin: str | None = None
    paused: bool = False

    @classmethod
    def _trusted(
        cls,
        job_id: str,
        task_name: str,
        trigger: Trigger,
        next_run_at: datetime,
        arguments: bytes,
        attempt: int = 1,
        state: StoredState = StoredState.SCHEDULED,
        cron: str | None = None,
        lease_owner: str | None = None,
        lease_expires_at: datetime | None = None,
        origin: str | None = None,
        paused: bool = False,
    ) -> StoredJob:
        """A row built from values the caller already checked (hot paths: scheduling calls
        and loading rows). Skips the attrs validators and converters."""
        (
            set_id, set_task, set_trigger, set_next, set_arguments, set_attempt, set_state,
            set_cron, set_owner, set_lease, set_origin, set_paused,
        ) = _STORED_JOB_SLOTS  # fmt: skip
        job = object.__new__(cls)
        set_id(job, job_id)
        set_task(job, task_name)
        set_trigger(job, trigger)
        set_next(job, next_run_at)
        set_arguments(job, arguments)
        set_attempt(job, attempt)
        set_state(job, state)
        set_cron(job, cron)
        set_owner(job, lease_owner)
        set_lease(job, lease_expires_at)
        set_origin(job, origin)
        set_paused(job, paused)
        return job


def _slot_setters(cls: type) -> tuple[Callable[[Any, Any], None], ...]:
    """The ``__set__`` of each field's slot, in field order: setting a slot through it
    skips the frozen class's ``__setattr__`` and the attribute lookup ``object.__setattr__``
    makes (about a third of :meth:`StoredJob._trusted`'s time)."""
    return tuple(cls.__dict__[field.name].__set__ for field in attrs.fields(cls))


_STORED_JOB_SLOTS: Final = _slot_setters(StoredJob)


@attrs.frozen(kw_only=True)
class CorruptRow:
    """A stored row that could not even be read as a :class:`StoredJob`; it is kept."""

    job_id: str
    task_name: str
    reason: str


@attrs.frozen(kw_only=True)
class LoadResult:
    """What :meth:`Storage.load` found: readable rows, and rows it could not read."""

    jobs: Sequence[StoredJob]
    corrupt: Sequence[CorruptRow] = ()


@attrs.frozen(kw_only=True)
class Upsert:
    """Insert the row, or replace the row with the same ``job_id``.

    ``new`` is True when the scheduling call generated the job's id itself, so no stored
    row is expected to have it: a store may then insert without looking for one first
    (:class:`~jobify_trio.storage.PostgresStorage` does). Should a row have that id after
    all, it is replaced all the same.
    """

    job: StoredJob
    new: bool = False


@attrs.frozen(kw_only=True)
class Delete:
    """Delete the row with this id (no error if there is none)."""

    job_id: str


_SET_UPSERT_JOB, _SET_UPSERT_NEW = _slot_setters(Upsert)
(_SET_DELETE_ID,) = _slot_setters(Delete)


#: A push's row as ``StorageWriter.push_now`` hands it to ``Storage._push_now``: its id,
#: task name, run time and encoded arguments (the other columns at their defaults).
PushedRow: TypeAlias = tuple[str, str, datetime, bytes]


def upsert_of(job: StoredJob, new: bool) -> Upsert:
    """``Upsert(job=job, new=new)`` through the slots (see :func:`_slot_setters`): about
    half the time of the frozen class's ``__init__`` (each durable scheduling call)."""
    write = object.__new__(Upsert)
    _SET_UPSERT_JOB(write, job)
    _SET_UPSERT_NEW(write, new)
    return write


def delete_of(job_id: str) -> Delete:
    """``Delete(job_id=job_id)`` through its slot, like :func:`upsert_of` (each ended job)."""
    write = object.__new__(Delete)
    _SET_DELETE_ID(write, job_id)
    return write


@attrs.frozen(kw_only=True)
class PutResult:
    """Store the outcome of a job for the instance that scheduled it (sharing stores)."""

    result: StoredResult


@attrs.frozen(kw_only=True)
class Release:
    """End ``owner``'s lease on row ``job_id`` (no-op if it is not ``owner``'s).

    ``Release(job_id="")`` changes nothing and wakes no other instance: the heartbeat
    commits it through the storage writer as a barrier (every store must accept it)."""

    job_id: str
    owner: str


@attrs.frozen(kw_only=True)
class SendCommand:
    """Queue ``command`` for its target instance (sharing stores)."""

    command: Command


@attrs.frozen(kw_only=True)
class SetPaused:
    """Set the ``paused`` column of row ``job_id`` (no-op if there is no such row)."""

    job_id: str
    paused: bool


@attrs.frozen(kw_only=True)
class StoredRun:
    """One stored run of a job (an attempt that ended): see :class:`~jobify_trio.RunRecord`.

    ``status`` is a :class:`~jobify_trio.JobStatus` value; ``started_at`` is None for a job
    cancelled before it ran; ``instance`` is the app instance that ran it, with a shared
    store (else None).
    """

    job_id: str
    task_name: str
    attempt: int
    status: str
    started_at: datetime | None
    ended_at: datetime
    error: str | None = None
    retried: bool = False
    instance: str | None = None


@attrs.frozen(kw_only=True)
class RecordRun:
    """Store ``run`` in the run history (stores whose :attr:`Storage.keeps_runs` is True)."""

    run: StoredRun


@attrs.frozen(kw_only=True)
class PruneRuns:
    """Delete the stored runs that ended before ``before``, keep at most ``per_job`` (the
    latest) of each job in ``job_ids``, then at most ``max_runs`` (the latest) in all
    (stores whose ``keeps_runs`` is True). A store may leave the runs committed in the
    same batch out of these bounds until the next prune (PostgreSQL does: its batch is
    one statement)."""

    before: datetime
    per_job: int
    job_ids: tuple[str, ...] = ()
    max_runs: int | None = None


def validate_table_name(table_name: object) -> str:
    """``table_name`` if it is a plain SQL identifier, else ``ValueError`` naming it."""
    if not isinstance(table_name, str) or not _TABLE_NAME.fullmatch(table_name):
        raise ValueError(
            f"invalid table name {table_name!r}: use 1-63 letters, digits and underscores, "
            "not starting with a digit"
        )
    return table_name


def _fix_module() -> None:
    """Name ``jobify_trio.storage`` as the home of the public names (as trio does)."""
    for name in __all__:
        globals()[name].__module__ = "jobify_trio.storage"


_fix_module()
