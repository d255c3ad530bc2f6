"""Middleware: code around each attempt of a job, or around each scheduling call.

* Inner middleware (:class:`BaseMiddleware`) is called as ``await mw(call_next, context)``
  around every attempt, with a :class:`~jobify_trio.JobContext`. Whatever it returns is
  the attempt's result; raising fails the attempt (and may be retried). Not calling
  ``call_next`` skips the function: the attempt succeeds with the middleware's value.
* Outer middleware (:class:`BaseOuterMiddleware`) is called as ``await mw(call_next,
  context)`` around every scheduling call (``push``, ``at``, ``delay``, ``cron``) with an
  :class:`~jobify_trio.OuterContext`; ``call_next`` returns the scheduled
  :class:`~jobify_trio.Job`. Not calling it leaves the job unscheduled and unstored.

Order: the app's middleware first, then each router's, from the outermost router to the
task's own. :class:`QueueMiddleware` bounds how many attempts run at once.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import trio

from ._core._context import JobContext, OuterContext

if TYPE_CHECKING:
    from ._api._task import Task
    from ._core._job import Job

__all__ = [
    "BaseMiddleware",
    "BaseOuterMiddleware",
    "CallNext",
    "CallNextOuter",
    "QueueMiddleware",
]

CallNext: TypeAlias = Callable[[JobContext], Awaitable[Any]]
"""The rest of the inner chain: ``await call_next(context)`` runs it and returns its result."""

CallNextOuter: TypeAlias = Callable[[OuterContext], Awaitable["Job[Any]"]]
"""The rest of the outer chain: ``await call_next(context)`` schedules and returns the job."""


class BaseMiddleware(Protocol):
    """Inner middleware: ``async def __call__(self, call_next, context) -> Any``."""

    async def __call__(self, call_next: CallNext, context: JobContext) -> Any:
        """Run around one attempt; return its result (normally ``await call_next(context)``)."""


class BaseOuterMiddleware(Protocol):
    """Outer middleware: ``async def __call__(self, call_next, context) -> Job | Any``."""

    async def __call__(self, call_next: CallNextOuter, context: OuterContext) -> Any:
        """Run around one scheduling call; normally ``return await call_next(context)``."""


class _Waiter:
    """A job waiting in a :class:`QueueMiddleware` for a free slot."""

    __slots__ = ("event", "key", "live")

    def __init__(self, key: tuple[int, int]) -> None:
        self.key = key
        self.event = trio.Event()
        self.live = True

    def __lt__(self, other: _Waiter) -> bool:
        return self.key < other.key


def _check_positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"QueueMiddleware: {name} must be an int >= 1, got {value!r}")
    return value


class QueueMiddleware:
    """At most ``workers`` attempts run through this middleware at once.

    Waiting attempts start in order of ``metadata["priority"]`` (a larger number first,
    default 0), first come first served among equal priorities. At most ``maxsize``
    attempts wait in the queue; more wait (first come first served) to enter it. An
    attempt waits in its own task, so cancelling a queued job removes it from the queue
    and it never starts; at shutdown the backlog is cancelled, not run. Time spent in the
    queue does not count toward the task's ``timeout``.
    """

    def __init__(self, workers: int = 100, maxsize: int = 1024) -> None:
        self.workers = _check_positive("workers", workers)
        self.maxsize = _check_positive("maxsize", maxsize)
        self._free = self.workers
        self._heap: list[_Waiter] = []
        self._queued = 0  # live waiters in the heap
        self._seq = itertools.count()
        self._space = trio.lowlevel.ParkingLot()

    @property
    def running(self) -> int:
        """Attempts holding a slot now."""
        return self.workers - self._free

    @property
    def queued(self) -> int:
        """Attempts waiting for a slot now."""
        return self._queued

    async def __call__(self, call_next: CallNext, context: JobContext) -> Any:
        if self._free and not self._queued:
            self._free -= 1
        else:
            await self._wait_for_slot(_priority(context))
        try:
            return await call_next(context)
        finally:
            self._release()

    async def _wait_for_slot(self, priority: int) -> None:
        while self._queued >= self.maxsize:
            await self._space.park()
        if self._free and not self._queued:  # the slots emptied while we were parked
            self._free -= 1
            self._space.unpark()  # we were woken for a queue place we leave unused
            return
        waiter = _Waiter((-priority, next(self._seq)))
        heapq.heappush(self._heap, waiter)
        self._queued += 1
        try:
            await waiter.event.wait()
        except BaseException:
            if waiter.event.is_set():  # a slot was handed to us as we were cancelled
                self._release()
            else:
                waiter.live = False
                self._left_queue()
            raise

    def _left_queue(self) -> None:
        self._queued -= 1
        self._space.unpark()

    def _release(self) -> None:
        """Hand the slot to the best live waiter, or free it."""
        heap = self._heap
        while heap:
            waiter = heapq.heappop(heap)
            if waiter.live:
                waiter.live = False
                self._left_queue()
                waiter.event.set()
                return
        self._free += 1

    def __repr__(self) -> str:
        return (
            f"<QueueMiddleware workers={self.workers} maxsize={self.maxsize} "
            f"running={self.running} queued={self.queued}>"
        )


def _priority(context: JobContext) -> int:
    priority: int = context.task.options.metadata.get("priority", 0)
    return priority


def check_priority(task: Task[..., Any]) -> None:
    """``TypeError`` unless the task's ``metadata["priority"]`` is absent or an int."""
    value = task.options.metadata.get("priority", 0)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"task {task.name!r}: metadata['priority'] must be an int, got {value!r}")
