"""Wall clocks: where cron and ``at()`` arithmetic get the current aware time.

Sleeping always happens on trio's clock. A wall clock only answers "what time is it",
so the scheduler converts a wall-clock instant into a trio deadline when it arms a
timer, and re-reads the wall clock when the timer fires (see :mod:`._actors._scheduler`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Protocol, runtime_checkable

__all__ = [
    "EARLY_TOLERANCE",
    "JUMP_CHECK",
    "JUMP_THRESHOLD",
    "SET_BACK_REPLAN",
    "SystemWallClock",
    "WallClock",
    "check_wall_clock",
    "clock_offset",
    "may_jump",
    "stamp_reader",
]

EARLY_TOLERANCE = 0.001
"""A timer or trigger that wakes at most this early by the wall clock fires (rounding)."""
JUMP_CHECK = 60.0
"""How often, in seconds of trio time, a clock that may jump is compared with trio's."""
JUMP_THRESHOLD = 0.5
"""Drift between the wall clock and trio's clock, in seconds, that counts as a jump."""
SET_BACK_REPLAN = 3600.0
"""A wall clock set back by more than this many seconds (plus :data:`JUMP_THRESHOLD` of
measuring slack) makes cron jobs plan their next slot from the new wall time, as cron(8)
does for large jumps; a smaller step back keeps their slot (nothing runs twice)."""


def is_large_set_back(jump: float) -> bool:
    """Whether a measured change of :func:`clock_offset` is a step back past
    :data:`SET_BACK_REPLAN`."""
    return -jump > SET_BACK_REPLAN + JUMP_THRESHOLD


@runtime_checkable
class WallClock(Protocol):
    """Anything with ``now() -> datetime`` returning an aware datetime."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...


class SystemWallClock:
    """The system's real-time clock (``datetime.now(UTC)``).

    Jumps of this clock (NTP steps, a suspended laptop) are noticed because every timer
    re-reads it when it fires, and no timer sleeps longer than
    :data:`~jobify_trio._actors._scheduler.MAX_SLEEP` seconds of trio time at once.
    """

    __slots__ = ()

    def now(self) -> datetime:
        """The current time in UTC."""
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemWallClock()"


def clock_offset(clock: WallClock, trio_now: float) -> float:
    """Wall-clock time minus trio time, in seconds; a change of it is a wall-clock jump."""
    return clock.now().timestamp() - trio_now


def may_jump(clock: WallClock) -> bool:
    """Whether ``clock`` can jump against trio's clock (so the runtime must watch for it).

    A clock says it cannot by having ``may_jump = False`` (as ``VirtualWallClock``, which
    is derived from trio's clock, does); any other clock is assumed to be able to jump.
    Then timers sleep until their deadline in one go and no jump watcher wakes each minute,
    so a virtual week runs with a handful of wake-ups instead of one a minute.
    """
    return bool(getattr(clock, "may_jump", True))


def stamp_reader(clock: WallClock) -> Callable[[], float]:
    """A function reading ``clock`` as a POSIX timestamp: the system clock is read with
    :func:`time.time` (no datetime built, about six times cheaper); any other clock with
    ``now().timestamp()``."""
    if type(clock) is SystemWallClock:
        return time.time
    return lambda: clock.now().timestamp()


def clock_reader(clock: WallClock) -> Callable[[], datetime]:
    """``clock.now``, as a function: the system clock's is ``datetime.now(UTC)`` itself
    (no Python call in between)."""
    if type(clock) is SystemWallClock:
        return functools.partial(datetime.now, UTC)
    return clock.now


def now_reader(clock: WallClock, tz: tzinfo) -> Callable[[], datetime]:
    """A function reading ``clock`` as an aware datetime in ``tz``: the system clock is read
    with ``datetime.now(tz)`` (one datetime built, not two); any other clock with
    ``now().astimezone(tz)``."""
    if type(clock) is SystemWallClock:
        return functools.partial(datetime.now, tz)
    return lambda: clock.now().astimezone(tz)


def check_wall_clock(clock: object) -> WallClock:
    """Validate a user-supplied wall clock, naming the value when it is wrong."""
    if not isinstance(clock, WallClock):
        raise TypeError(
            f"wall_clock must have a now() method returning an aware datetime, got {clock!r}"
        )
    return clock


def to_tz(moment: datetime, tz: tzinfo) -> datetime:
    """``moment`` as an aware datetime in ``tz``; a naive ``moment`` is taken to be in ``tz``."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.replace(tzinfo=tz)
    return moment.astimezone(tz)
