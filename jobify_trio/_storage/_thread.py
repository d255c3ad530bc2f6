"""A dedicated thread fed by a queue, and how trio hands it work.

A thread-per-call pool (``trio.to_thread``) costs about twice as much per hop as a
dedicated thread fed by a :class:`queue.SimpleQueue` that wakes trio with
``TrioToken.run_sync_soon``; a connection owned by the thread also never changes threads.
Work runs in submission order (FIFO), so a close queued after writes runs after them,
except *urgent* calls (a sharing heartbeat: the renewal of the instance's leases), which
run as soon as the work running now ends, ahead of queued work: behind a backlog of
write batches a renewal came more than a second late under load, and the leases of a
live instance ran out. A call that is cancelled while its work runs stops waiting, but
the work itself finishes.

Both storages' connection threads are this class: :class:`~._sqlite_thread.SQLiteThread`
and the PostgreSQL store's worker (:mod:`._postgres_thread`).
"""

from __future__ import annotations

import collections
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import trio

__all__ = ["WorkerThread"]

T = TypeVar("T")
_Work = Callable[[], None]


class _Result:
    __slots__ = ("error", "value")

    def __init__(self) -> None:
        self.value: Any = None
        self.error: BaseException | None = None


def _nothing() -> None:
    pass


class WorkerThread:
    """Runs ``fn()`` calls, in order, on one thread (started now, or by :meth:`start`)."""

    def __init__(self, name: str, *, start: bool = True) -> None:
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._urgent: collections.deque[_Work] = collections.deque()  # run before _queue
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        if start:
            self._thread.start()

    def start(self) -> None:
        """Start the thread (for one made with ``start=False``)."""
        self._thread.start()

    def _main(self) -> None:
        urgent = self._urgent
        while True:
            work = self._queue.get()
            while urgent:  # deque appends and pops are atomic
                urgent.popleft()()
            if work is None:
                return
            work()

    async def call(self, fn: Callable[[], T], *, urgent: bool = False) -> T:
        """``fn()`` on the thread; its exception is raised here. An ``urgent`` call runs
        before the queued ones (see the module docs)."""
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()
        result = _Result()

        def work() -> None:
            try:
                result.value = fn()
            except BaseException as exc:
                result.error = exc
            with contextlib.suppress(trio.RunFinishedError):  # nobody is waiting any more
                token.run_sync_soon(done.set)

        if urgent:
            self._urgent.append(work)
            self._queue.put(_nothing)  # wakes an idle thread
        else:
            self._queue.put(work)
        await done.wait()
        if result.error is not None:
            raise result.error
        value: T = result.value
        return value

    def stop(self) -> None:
        """End the thread after the queued calls."""
        self._queue.put(None)
