"""Helpers for testing schedules under virtual time.

Run the app under :class:`trio.testing.MockClock` with ``autojump_threshold=0``
(pytest-trio's ``autojump_clock`` fixture) and give it a :class:`VirtualWallClock`: wall time then
advances exactly with trio's virtual clock, so a week of cron fires runs in
milliseconds with exact, reproducible wall times::

    clock = VirtualWallClock(datetime(2026, 1, 1, tzinfo=UTC))
    app = Jobify(storage=False, wall_clock=clock)

:class:`MemoryStorage` is a store in memory that implements the whole storage interface,
sharing included: several app instances in one ``trio.run`` can share one
``MemoryStorage`` under one ``MockClock``, to test a schedule shared by several
instances deterministically (see docs/sharing.rst).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import trio

from ._storage._memory import MemoryStorage

__all__ = ["MemoryStorage", "VirtualWallClock"]


class VirtualWallClock:
    """A wall clock that reads ``start`` plus the trio time elapsed since it was anchored.

    The clock anchors itself to :func:`trio.current_time` the first time :meth:`now` is called
    inside a :func:`trio.run` (normally when the app starts), so it reads exactly ``start`` at
    that moment. In a later ``trio.run`` it re-anchors and continues from the last time it
    read, so wall time never goes backwards. Outside ``trio.run`` it reads its last value.
    """

    __slots__ = ("_anchor", "_last", "_start", "_token")

    may_jump = False
    """Derived from trio's clock, so it never jumps against it (no jump watching needed)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError(f"VirtualWallClock needs an aware start datetime, got {start!r}")
        self._start = start
        self._last = start
        self._anchor = 0.0
        self._token: object = None

    def now(self) -> datetime:
        """The virtual wall time."""
        try:
            token = trio.lowlevel.current_trio_token()
        except RuntimeError:  # outside trio.run
            return self._last
        current = trio.current_time()
        if token is not self._token:
            self._token = token
            self._anchor = current
            self._start = self._last
        start, elapsed = self._start, timedelta(seconds=current - self._anchor)
        if start.tzinfo is UTC:
            self._last = start + elapsed
        else:  # add real time in UTC: aware + timedelta is wall-clock arithmetic (DST)
            self._last = (start.astimezone(UTC) + elapsed).astimezone(start.tzinfo)
        return self._last

    def __repr__(self) -> str:
        return f"VirtualWallClock(now={self._last.isoformat()!r})"
