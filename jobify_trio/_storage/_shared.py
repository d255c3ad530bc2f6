"""Values of the sharing protocol: what several app instances on one store exchange.

Several instances of one app (same task names) may share one store. The runtime's sharing
protocol (``jobify_trio._sharing``) speaks to the store only through the optional methods
of :class:`~jobify_trio.storage.Storage` listed in ``docs/sharing.rst`` and the values
below. The model, in short:

* **Instances.** Each running app has an ``instance_id`` and a row in the store's instance
  table, renewed by :meth:`~jobify_trio.storage.Storage.heartbeat`. An instance is *live*
  while ``heartbeat_at + lease > now``.
* **Leases.** A job row is owned by at most one instance (``lease_owner``) until
  ``lease_expires_at``. Every heartbeat extends the leases of all rows its instance owns
  in the same statement, so a live instance never loses a lease; a dead one's leases run
  out one lease length after its last heartbeat and its rows are taken over
  (:meth:`~jobify_trio.storage.Storage.adopt_orphans`).
* **One-off jobs** are inserted leased to the scheduling instance (no extra commit for the
  common case: it runs them itself). A due row that no live instance owns (released because
  its owner was busy, or orphaned) is claimed by whichever instance has a free executor slot
  (:meth:`~jobify_trio.storage.Storage.claim_due`).
* **Cron jobs** are owned like one-off rows (the owner runs the trigger). Before each run the
  owner commits a :class:`SlotClaim`: a unique ``(job_id, slot)`` claim row plus a
  compare-and-set of the row's ``next_run_at`` in one transaction. A slot is therefore fired
  at most once however long an instance stalls: a lagging instance's claim of an old slot
  fails on the compare-and-set even after the claim rows were pruned.
* **Requests** to a row owned by another live instance (cancel, replace) are sent as
  :class:`Command` rows to its owner, which applies them as if they were local calls.
* **Results** of a job that ran on another instance than the one that scheduled it
  (``origin``) are stored as :class:`StoredResult` rows, kept for a retention period.

Every time in these values is an aware datetime read from the app's wall clock.
"""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

__all__ = [
    "Command",
    "CommandKind",
    "Heartbeat",
    "InstanceInfo",
    "ResultStatus",
    "SlotClaim",
    "StoredResult",
]


def _aware(_: object, attribute: attrs.Attribute[datetime], value: datetime) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{attribute.name} must be an aware datetime, got {value!r}")


def _non_empty(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{attribute.name} must be a non-empty str, got {value!r}")


@attrs.frozen(kw_only=True)
class InstanceInfo:
    """One app instance as the store knows it."""

    instance_id: str = attrs.field(validator=_non_empty)
    host: str
    pid: int
    started_at: datetime = attrs.field(validator=_aware)
    heartbeat_at: datetime = attrs.field(validator=_aware)


class CommandKind(enum.StrEnum):
    """What a :class:`Command` asks the owner of a row to do."""

    CANCEL = "cancel"
    REPLACE = "replace"
    PAUSE = "pause"
    RESUME = "resume"


@attrs.frozen(kw_only=True)
class Command:
    """A request to the instance that owns a job row.

    ``payload`` is opaque to the store (the runtime encodes a replacement's schedule and
    arguments in it; empty for a cancel). ``command_id`` is assigned by the store
    (``0`` when sending).
    """

    command_id: int = 0
    target: str = attrs.field(validator=_non_empty)
    job_id: str
    kind: CommandKind = attrs.field(converter=CommandKind)
    payload: bytes = b""
    created_at: datetime = attrs.field(validator=_aware)


@attrs.frozen(kw_only=True)
class Heartbeat:
    """What :meth:`~jobify_trio.storage.Storage.heartbeat` found.

    ``owned`` holds the ids of every row leased to the instance after the renewal: a row
    the instance is running that is missing from it was cancelled or taken away.
    ``commands`` are the requests addressed to the instance; they are deleted from the store
    in the same transaction (delivered once).
    """

    owned: frozenset[str]
    commands: tuple[Command, ...] = ()


@attrs.frozen(kw_only=True)
class SlotClaim:
    """Fire ``slot`` of cron job ``job_id``: the claim row and the cron's new state.

    Committed only if the row's stored ``next_run_at`` still equals
    ``expected_next_run_at`` and the row is not leased to another live instance; then in
    the same transaction the claim row ``(job_id, slot)`` is inserted, the row's ``cron``
    text and ``next_run_at`` become ``cron`` and ``next_run_at`` and its lease is
    ``owner``'s.
    """

    job_id: str
    slot: datetime = attrs.field(validator=_aware)
    expected_next_run_at: datetime = attrs.field(validator=_aware)
    owner: str = attrs.field(validator=_non_empty)
    cron: str
    next_run_at: datetime = attrs.field(validator=_aware)


class ResultStatus(enum.StrEnum):
    """How a job that ran on another instance ended."""

    SUCCESS = "success"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    PERMANENTLY_FAILED = "permanently_failed"


@attrs.frozen(kw_only=True)
class StoredResult:
    """The outcome of a job, stored for the instance that scheduled it (``origin``).

    ``value`` is the result encoded by the app's serializer (``None`` unless SUCCESS);
    ``error`` is ``"ExceptionType: message"`` for a failure or a timeout.
    """

    job_id: str
    origin: str | None
    status: ResultStatus = attrs.field(converter=ResultStatus)
    value: bytes | None = None
    error: str | None = None
    finished_at: datetime = attrs.field(validator=_aware)
