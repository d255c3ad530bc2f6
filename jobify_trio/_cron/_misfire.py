"""The pure misfire decision: what a cron trigger does when its slot ``due`` is late.

Used by the trigger actor at creation, at restore, and whenever it wakes late.

Definitions (``docs/cron.rst``): the trigger is *late* when ``due < now``. The
*missed slots* are then the fire times in ``[due, now]`` (``due`` is the first).
Everything after ``now`` is future and is never run early.

* ``ONCE``: one run now standing for all missed slots (its slot is ``due``);
  then wait for the first slot after ``now``.
* ``SKIP``: run nothing now; wait for the first slot after ``now``.
* ``ALL``: run every missed slot, back to back, in order.
* ``GRACE(td)``: like ``ALL`` for the missed slots no older than ``td``
  (``slot >= now - td``); older ones are skipped without being enumerated.

Catch-up bound: one plan holds at most ``max_catch_up`` slots. When more were
missed, ``next_due`` is the next missed slot (``< now``) and
``more_missed`` is true: the actor runs the batch, then plans again with
``due=plan.next_due`` and a fresh ``now``. Memory stays bounded and ``ALL``
still runs every slot; ``GRACE`` re-applies its window to each batch.

A plan also says which missed slots it does not run (:attr:`MisfirePlan.skipped`, a
range found in O(1)); :func:`list_skipped` enumerates them, bounded, for the decision
event a listener receives (only when one is registered).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import attrs

from jobify_trio._cron._expression import CronExhausted
from jobify_trio._cron._values import AnyMisfirePolicy, GracePolicy, MisfirePolicy

__all__ = [
    "DEFAULT_MAX_CATCH_UP",
    "MAX_LISTED_SKIPS",
    "MisfirePlan",
    "NextAfter",
    "Skipped",
    "list_skipped",
    "plan_misfire",
]

DEFAULT_MAX_CATCH_UP = 1000
MAX_LISTED_SKIPS = 1000
"""Most skipped slots :func:`list_skipped` enumerates (about 15 ms of cron arithmetic)."""
_TICK = timedelta(microseconds=1)

NextAfter = Callable[[datetime], datetime]
"""First fire time strictly after the argument; raises ``CronExhausted`` at the end."""


@attrs.frozen(kw_only=True)
class Skipped:
    """The missed slots a plan does not run: every slot ``s`` with ``first <= s < stop``
    (compared in UTC; ``stop`` None: every slot from ``first`` on, the schedule having no
    later slot to run or wait for).

    ``coalesced_into`` is the slot whose one run stands for them (``ONCE``), else None
    (they were skipped: ``SKIP``, or older than a ``GRACE`` window).
    """

    first: datetime
    stop: datetime | None
    coalesced_into: datetime | None = None


@attrs.frozen(kw_only=True)
class MisfirePlan:
    """What to do now: run ``run_now`` back to back, then wait for ``next_due``.

    ``next_due`` is None when the schedule has no further slot. When
    ``more_missed`` is true, ``next_due < now`` (the batch was capped at
    ``max_catch_up``) and the caller should plan again (``due=next_due``, fresh
    ``now``) after running ``run_now``. Otherwise it sleeps until ``next_due``.
    ``skipped`` is the missed slots it does not run, if any (see :class:`Skipped`).
    """

    run_now: tuple[datetime, ...]
    next_due: datetime | None
    more_missed: bool = False
    skipped: Skipped | None = None


def plan_misfire(
    policy: AnyMisfirePolicy,
    *,
    due: datetime,
    now: datetime,
    next_after: NextAfter,
    max_catch_up: int = DEFAULT_MAX_CATCH_UP,
) -> MisfirePlan:
    """Decide what a trigger whose next slot is ``due`` does at ``now`` (both aware).

    All comparisons and arithmetic are done in UTC (two datetimes sharing a
    zoneinfo tz compare by wall time, ignoring ``fold``).
    """
    if max_catch_up < 1:
        raise ValueError(f"max_catch_up must be >= 1, got {max_catch_up!r}")
    if _utc(due) >= _utc(now):
        return MisfirePlan(run_now=(), next_due=due)
    if policy is MisfirePolicy.ONCE:
        return _once(due, now, next_after)
    if policy is MisfirePolicy.SKIP:
        following = _next(next_after, now)
        return MisfirePlan(
            run_now=(), next_due=following, skipped=Skipped(first=due, stop=following)
        )
    if policy is MisfirePolicy.ALL:
        return _catch_up(due, now, next_after, max_catch_up)
    if isinstance(policy, GracePolicy):
        return _grace(policy, due, now, next_after, max_catch_up)
    raise TypeError(f"unknown misfire policy {policy!r}")


def _once(due: datetime, now: datetime, next_after: NextAfter) -> MisfirePlan:
    """Run ``due`` now for every missed slot; the others in ``(due, now]`` coalesce."""
    following = _next(next_after, now)
    second = _next(next_after, due)
    skipped = None
    if second is not None and _utc(second) <= _utc(now):
        skipped = Skipped(first=second, stop=following, coalesced_into=due)
    return MisfirePlan(run_now=(due,), next_due=following, skipped=skipped)


def _grace(
    policy: GracePolicy, due: datetime, now: datetime, next_after: NextAfter, limit: int
) -> MisfirePlan:
    cutoff = _utc(now) - policy.value
    if _utc(due) >= cutoff:
        return _catch_up(due, now, next_after, limit)
    first = _next(next_after, (cutoff - _TICK).astimezone(now.tzinfo))
    skipped = Skipped(first=due, stop=first)
    if first is None or _utc(first) > _utc(now):
        return MisfirePlan(run_now=(), next_due=first, skipped=skipped)
    return attrs.evolve(_catch_up(first, now, next_after, limit), skipped=skipped)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"misfire planning needs aware datetimes, got {moment!r}")
    return moment.astimezone(UTC)


def _next(next_after: NextAfter, moment: datetime) -> datetime | None:
    try:
        return next_after(moment)
    except CronExhausted:
        return None


def _catch_up(first: datetime, now: datetime, next_after: NextAfter, limit: int) -> MisfirePlan:
    """Slots from ``first`` (a missed slot) up to ``now``, at most ``limit`` of them."""
    end = _utc(now)
    slots = [first]
    following = _next(next_after, first)
    while following is not None and _utc(following) <= end and len(slots) < limit:
        slots.append(following)
        following = _next(next_after, following)
    more = following is not None and _utc(following) < end
    return MisfirePlan(run_now=tuple(slots), next_due=following, more_missed=more)


def list_skipped(
    skipped: Skipped, next_after: NextAfter, *, limit: int = MAX_LISTED_SKIPS
) -> tuple[tuple[datetime, ...], bool]:
    """The slots of ``skipped``, oldest first, at most ``limit`` of them; and whether more
    were skipped than listed."""
    stop = None if skipped.stop is None else _utc(skipped.stop)
    listed: list[datetime] = []
    slot: datetime | None = skipped.first
    while slot is not None and (stop is None or _utc(slot) < stop):
        if len(listed) >= limit:
            return tuple(listed), True
        listed.append(slot)
        slot = _next(next_after, slot)
    return tuple(listed), False
