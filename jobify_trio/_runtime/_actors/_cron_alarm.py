"""The shared alarm of cron triggers: one timer heap and one sleeping task.

Every trigger still waits in its own task; parking it here instead of in a cancel scope of
its own costs a heap push (entries are lists, compared in C) instead of a trio deadline
registration plus a raised and caught ``Cancelled`` per fire. The alarm sleeps until the
earliest entry, then wakes the tasks whose deadline passed. When many are due at the same
instant (10,000 crons of one schedule) it wakes them :data:`WAKE_CHUNK` at a time and
yields in between, so the executor's idle workers can run the first jobs while later
triggers are still being woken: fewer workers are spawned and lateness spreads evenly.

Cancelled entries are dropped lazily (their task slot is set to None).
"""

from __future__ import annotations

import heapq
import itertools
import math

import trio

__all__ = ["WAKE_CHUNK", "Alarm", "AlarmEntry"]

WAKE_CHUNK = 32
"""Tasks woken per scheduling batch when many are due at once."""

AlarmEntry = list[object]
"""``[deadline (trio time), sequence number, task or None]``."""


class Alarm:
    """Wakes parked tasks at their trio deadlines (see the module docs)."""

    __slots__ = ("_heap", "_scope", "_seq")

    def __init__(self) -> None:
        self._heap: list[AlarmEntry] = []
        self._scope: trio.CancelScope | None = None
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, deadline: float, task: trio.lowlevel.Task) -> AlarmEntry:
        """Reschedule ``task`` (which is, or is about to be, parked) at ``deadline``."""
        entry: AlarmEntry = [deadline, next(self._seq), task]
        heapq.heappush(self._heap, entry)
        scope = self._scope
        if scope is not None and deadline < scope.deadline:
            scope.deadline = deadline
        return entry

    @staticmethod
    def cancel(entry: AlarmEntry) -> bool:
        """Forget ``entry``; True if its task was still waiting for it."""
        waiting = entry[2] is not None
        entry[2] = None
        return waiting

    async def run(self) -> None:
        """Sleep until the earliest deadline, wake the due tasks, repeat (until cancelled)."""
        heap = self._heap
        while True:
            deadline = heap[0][0] if heap else math.inf
            with trio.CancelScope(deadline=deadline) as scope:  # type: ignore[arg-type]
                self._scope = scope
                await trio.sleep_forever()
            self._scope = None
            await self._wake_due(heap)

    @staticmethod
    async def _wake_due(heap: list[AlarmEntry]) -> None:
        now = trio.current_time()
        reschedule = trio.lowlevel.reschedule
        woken = 0
        while heap and heap[0][0] <= now:  # type: ignore[operator]
            entry = heapq.heappop(heap)
            task = entry[2]
            if task is None:
                continue
            entry[2] = None
            reschedule(task)  # type: ignore[arg-type]
            woken += 1
            if woken % WAKE_CHUNK == 0:
                await trio.lowlevel.checkpoint()
