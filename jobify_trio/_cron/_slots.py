"""Next-slot arithmetic of live cron triggers (pure: no trio).

A trigger asks "which slot follows this one?" once per fire. :class:`Slots` answers from a
memo shared by every trigger of the same expression and time zone, keyed by POSIX
timestamps, so 10,000 jobs of one schedule compute each slot once and a fire costs a dict
lookup. A slot is a :data:`Slot`: the aware datetime and its timestamp, so the hot path
compares floats and never converts datetimes.

:func:`on_time` is the fast decision a trigger makes when it wakes; anything else goes
to :func:`~jobify_trio._misfire.plan_misfire`.
"""

from __future__ import annotations

import math
from datetime import datetime

from .._core._clock import EARLY_TOLERANCE
from ._expression import CronExhausted, CronExpression, CronIterator

__all__ = [
    "EARLY_TOLERANCE",
    "MISFIRE_TOLERANCE",
    "Slot",
    "SlotMemo",
    "Slots",
    "declarative_job_id",
    "on_time",
]

MISFIRE_TOLERANCE = 1.0
"""A trigger that wakes at most this many seconds after its slot, before the following
slot, is on time. Later than that (or past the following slot) is a misfire."""
MEMO_SIZE = 16
"""Answers kept per shared memo (oldest dropped first)."""

Slot = tuple[datetime, float]
"""A slot: the aware datetime and its POSIX timestamp."""
SlotMemo = dict[float, Slot | None]
"""Shared answers: moment timestamp -> the first slot strictly after it (None: no more)."""


def declarative_job_id(task_name: str) -> str:
    """The stable id of the cron job declared by ``@app.task(cron=...)``: ``"cron:<name>"``."""
    return f"cron:{task_name}"


def on_time(due: float, following: Slot | None, now: float) -> bool:
    """A wake at ``now`` for the slot ``due`` is on time (no misfire policy applies).

    On time means: at most :data:`MISFIRE_TOLERANCE` seconds late, and the following slot
    (if any) is still in the future. All values are POSIX timestamps.
    """
    return (following is None or following[1] > now) and now - due <= MISFIRE_TOLERANCE


class Slots:
    """Next-slot lookup for one trigger: its own iterator plus a shared :data:`SlotMemo`."""

    __slots__ = ("_expr", "_iter", "_iter_last", "_memo")

    def __init__(self, expr: CronExpression, memo: SlotMemo) -> None:
        self._expr = expr
        self._memo = memo
        self._iter: CronIterator | None = None
        self._iter_last = math.nan

    @property
    def expression(self) -> CronExpression:
        """The compiled expression."""
        return self._expr

    def after(self, moment: datetime, stamp: float | None = None) -> Slot | None:
        """The first slot strictly after ``moment`` (``stamp``: its timestamp, if known)."""
        key = moment.timestamp() if stamp is None else stamp
        memo = self._memo
        answer = memo.get(key, memo)  # the memo itself marks "absent"
        if answer is not memo:
            return answer  # type: ignore[return-value]
        if memo:  # no slot lies between the newest memoized moment and its answer
            last = next(reversed(memo))
            newest = memo[last]
            if newest is not None and last < key < newest[1]:
                return newest
        if self._iter is None or self._iter_last != key:
            self._iter = self._expr.iterate(moment)
        try:
            at = self._iter.next()
        except CronExhausted:
            following: Slot | None = None
            self._iter_last = math.nan
        else:
            following = (at, at.timestamp())
            self._iter_last = following[1]
        if len(memo) >= MEMO_SIZE:
            del memo[next(iter(memo))]
        memo[key] = following
        return following

    def next_after(self, moment: datetime) -> datetime:
        """The datetime of :meth:`after`, raising :class:`CronExhausted` at the end."""
        following = self.after(moment)
        if following is None:
            raise CronExhausted(self._expr.expression, moment)
        return following[0]
