"""Which cron slots our DST rule adjusted (pure: no trio).

The rule (``docs/cron.rst``, applied by :class:`~._expression.CronIterator`): a wall time
inside a spring-forward gap runs at the end of the gap; a wall time a fall-back overlap
repeats runs in both occurrences, except for a *fixed-time* expression, which runs once,
in the first. :func:`dst_shift` tells, from a slot alone, whether that rule touched it,
so the trigger can publish it as an event. It is asked only when a listener is
registered, and costs a few offset lookups (nothing for a fixed-offset time zone).
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta, timezone

import attrs

from ._expression import CronExhausted, CronExpression

__all__ = ["DstShift", "DstShiftKind", "dst_shift"]

_SECOND = timedelta(seconds=1)


class DstShiftKind(enum.Enum):
    """How the DST rule adjusted a slot."""

    GAP = "gap"
    """The wall time does not exist (spring forward): the slot runs at the gap's end."""
    OVERLAP = "overlap"
    """The wall time happens twice (fall back): a fixed-time slot runs only in the first."""


@attrs.frozen(kw_only=True)
class DstShift:
    """How the DST rule adjusted one slot.

    ``slot`` is the instant the run happens; ``wall_time`` the naive local time the
    expression named (for a gap, the first such time inside the gap: every one of them
    runs as this slot). ``skipped`` is, for an overlap, the second occurrence of the wall
    time, which does not run; None for a gap.
    """

    kind: DstShiftKind
    slot: datetime
    wall_time: datetime
    skipped: datetime | None = None


def dst_shift(expr: CronExpression, slot: datetime) -> DstShift | None:
    """The adjustment the DST rule made to ``slot`` (a fire time of ``expr``), or None."""
    tz = slot.tzinfo
    if tz is None or isinstance(tz, timezone):
        return None  # a fixed offset has no DST
    offset = slot.utcoffset()
    if slot.fold == 0 and expr.fixed_time:
        later = slot.replace(fold=1)
        if later.utcoffset() != offset:  # the wall time repeats: the second one is dropped
            return DstShift(
                kind=DstShiftKind.OVERLAP,
                slot=slot,
                wall_time=slot.replace(tzinfo=None),
                skipped=later,
            )
    before = datetime.fromtimestamp(slot.timestamp() - 1, tz).utcoffset()
    if before is None or offset is None or before >= offset:
        return None  # not the end of a spring-forward gap
    wall = slot.replace(tzinfo=None)
    probe = wall - (offset - before) - _SECOND  # just before the gap, on the old offset
    try:  # (a fixed offset: the expression's naive wall times, unadjusted)
        named = expr.next_after(probe.replace(tzinfo=timezone(before))).replace(tzinfo=None)
    except CronExhausted:
        return None
    if named >= wall:
        return None  # the slot's own wall time: nothing in the gap moved here
    return DstShift(kind=DstShiftKind.GAP, slot=slot, wall_time=named)
