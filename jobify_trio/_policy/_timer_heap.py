"""The timer heap of one-off jobs: a pure data structure, no trio here.

The scheduler actor keeps every pending one-off timer in one :class:`TimerHeap` and
sleeps on a single deadline, :meth:`TimerHeap.next_deadline`. Disarming is lazy: a
cancelled entry stays in the heap, marked dead, until it reaches the top or until the
dead entries outnumber the live ones, when the heap is rebuilt. So arming and disarming
are O(log n), and memory stays proportional to the live timers.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import Generic, TypeVar

__all__ = ["TimerHeap", "TimerToken"]

T = TypeVar("T")


class TimerToken:
    """Identifies one armed timer, for :meth:`TimerHeap.disarm`."""

    __slots__ = ("alive", "seq")

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self.alive = True


class TimerHeap(Generic[T]):
    """A min-heap of ``(deadline, item)`` with lazy disarm and compaction."""

    __slots__ = ("_counter", "_dead", "_heap")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, TimerToken, T]] = []
        self._counter = itertools.count()
        self._dead = 0

    def __len__(self) -> int:
        """Number of live (armed, not disarmed, not popped) timers."""
        return len(self._heap) - self._dead

    def arm(self, deadline: float, item: T) -> TimerToken:
        """Add a timer firing at ``deadline``; timers with equal deadlines fire in arming order."""
        if math.isnan(deadline):
            raise ValueError("a timer deadline cannot be NaN")
        token = TimerToken(next(self._counter))
        heapq.heappush(self._heap, (deadline, token.seq, token, item))
        return token

    def disarm(self, token: TimerToken) -> bool:
        """Disarm a timer; returns False if it already fired or was disarmed."""
        if not token.alive:
            return False
        token.alive = False
        self._dead += 1
        if self._dead > 64 and self._dead * 2 > len(self._heap):
            self._compact()
        return True

    def next_deadline(self) -> float:
        """The earliest live deadline, or ``math.inf`` when no timer is armed."""
        self._drop_dead_top()
        return self._heap[0][0] if self._heap else math.inf

    def pop_due(self, now: float) -> list[T]:
        """Remove and return the items of every live timer with ``deadline <= now``, in order."""
        due: list[T] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, token, item = heapq.heappop(heap)
            if token.alive:
                token.alive = False
                due.append(item)
            else:
                self._dead -= 1
        return due

    def _drop_dead_top(self) -> None:
        heap = self._heap
        while heap and not heap[0][2].alive:
            heapq.heappop(heap)
            self._dead -= 1

    def _compact(self) -> None:
        self._heap = [entry for entry in self._heap if entry[2].alive]
        heapq.heapify(self._heap)
        self._dead = 0
