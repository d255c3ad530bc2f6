"""Decision events: what the scheduler decided about a job, for listeners.

Each is a :class:`~._events.JobEvent` whose ``status`` and ``attempt`` are the job's when
the decision was made, and whose ``exception`` is None. The pure functions that decide
(:func:`~.._cron._misfire.plan_misfire`, :func:`~.._cron._dst.dst_shift`) return what
they decided; the actors publish it through :class:`~._dispatch.EventDispatcher` only
when a listener is registered.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .._core._job import Job
from .._cron._values import AnyMisfirePolicy
from ._events import JobEvent, JobEventKind

__all__ = ["DstEvent", "LeaseTakenOverEvent", "SlotClaimedElsewhereEvent", "SlotsSkippedEvent"]


class SlotsSkippedEvent(JobEvent):
    """A late cron job's misfire policy did not run some missed slots (kind
    ``SLOTS_SKIPPED``).

    With ``ONCE`` they are *coalesced*: one run, of the slot ``coalesced_into``, stands
    for them all. With ``SKIP``, or ``GRACE`` for the slots older than its window, they
    are skipped (``coalesced_into`` is None). ``next_run`` is the slot the job waits for
    next (None if the schedule has none).
    """

    __slots__ = ("coalesced_into", "count", "policy", "times", "truncated")

    _fields = (*JobEvent._fields, "policy", "count", "times", "truncated", "coalesced_into")

    #: The cron job's misfire policy.
    policy: AnyMisfirePolicy
    #: How many slots were skipped (when ``truncated``, only the listed ones).
    count: int
    #: The skipped slots, oldest first (aware, in the cron's time zone): the first 1,000.
    times: tuple[datetime, ...]
    #: True when more slots were skipped than ``times`` lists (``count`` is then a lower
    #: bound: enumerating them all could take long).
    truncated: bool
    #: The slot whose one run stands for the skipped ones (``ONCE``), else None.
    coalesced_into: datetime | None

    def __init__(
        self,
        job: Job[Any],
        *,
        policy: AnyMisfirePolicy,
        times: tuple[datetime, ...],
        truncated: bool,
        coalesced_into: datetime | None,
        next_run: datetime | None,
    ) -> None:
        kind = JobEventKind.SLOTS_SKIPPED
        super().__init__(kind, job, job._attempt, job._status, None, next_run)
        self.policy = policy
        self.count = len(times)
        self.times = times
        self.truncated = truncated
        self.coalesced_into = coalesced_into

    @property
    def first(self) -> datetime:
        """The oldest skipped slot."""
        return self.times[0]

    @property
    def last(self) -> datetime:
        """The newest skipped slot listed (the newest skipped unless ``truncated``)."""
        return self.times[-1]


class DstEvent(JobEvent):
    """A cron slot the DST rule adjusted, published just before it runs.

    Kind ``DST_GAP``: the wall time ``wall_time`` does not exist that day (spring
    forward), so the slot runs at the end of the gap, ``slot``; every other wall time of
    the expression inside the gap runs as this same slot. Kind ``DST_OVERLAP``: the wall
    time happens twice (fall back) and the expression is fixed-time, so it runs once, at
    ``slot`` (the first occurrence); ``skipped`` is the second, which does not run.
    ``next_run`` is ``slot``.
    """

    __slots__ = ("skipped", "slot", "wall_time")

    _fields = (*JobEvent._fields, "slot", "wall_time", "skipped")

    #: The instant the run happens (aware, in the cron's time zone).
    slot: datetime
    #: The local wall time the expression named (naive).
    wall_time: datetime
    #: ``DST_OVERLAP``: the second occurrence of the wall time, not run; else None.
    skipped: datetime | None

    def __init__(
        self,
        kind: JobEventKind,
        job: Job[Any],
        *,
        slot: datetime,
        wall_time: datetime,
        skipped: datetime | None,
    ) -> None:
        super().__init__(kind, job, job._attempt, job._status, None, slot)
        self.slot = slot
        self.wall_time = wall_time
        self.skipped = skipped

    @property
    def shift(self) -> timedelta:
        """The wall time of the run minus the wall time asked for (a gap: how far the slot
        moved; an overlap: zero)."""
        return self.slot.replace(tzinfo=None) - self.wall_time


class LeaseTakenOverEvent(JobEvent):
    """This instance adopted a stored job whose owner died, or stopped and gave its
    leases up (kind ``LEASE_TAKEN_OVER``, shared stores only): it runs here from now on
    (a cron job applies its misfire policy here). ``next_run`` is when it runs next.
    """

    __slots__ = ("instance", "origin")

    _fields = (*JobEvent._fields, "instance", "origin")

    #: The id of this instance, which took the job over.
    instance: str
    #: The id of the instance that scheduled the job, if stored.
    origin: str | None

    def __init__(self, job: Job[Any], *, instance: str, origin: str | None) -> None:
        kind = JobEventKind.LEASE_TAKEN_OVER
        super().__init__(kind, job, job._attempt, job._status, None, job._exec_at)
        self.instance = instance
        self.origin = origin


class SlotClaimedElsewhereEvent(JobEvent):
    """Another instance had claimed the slot this instance was about to fire (kind
    ``SLOT_CLAIMED_ELSEWHERE``, shared stores only): the cron job runs there from now on,
    and its handle here follows it remotely. ``next_run`` is None.
    """

    __slots__ = ("instance", "slot")

    _fields = (*JobEvent._fields, "slot", "instance")

    #: The slot this instance did not fire.
    slot: datetime
    #: The id of this instance, which stopped its trigger.
    instance: str

    def __init__(self, job: Job[Any], *, slot: datetime, instance: str) -> None:
        kind = JobEventKind.SLOT_CLAIMED_ELSEWHERE
        super().__init__(kind, job, job._attempt, job._status, None, None)
        self.slot = slot
        self.instance = instance
