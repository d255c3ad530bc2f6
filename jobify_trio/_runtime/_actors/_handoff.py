"""The executor's inbox: a rendezvous between senders and a pool of worker tasks.

A :class:`Handoff` behaves like a zero-buffer memory channel read by the workers: an
item is taken only by a worker ready for it, and a sender with no worker ready waits
(backpressure). It is cheaper than a channel on the push path for two reasons:

* a worker that finished an attempt *looks* once more before it parks: it yields one
  checkpoint (as ``receive()`` did after taking an item), and a new job pushed
  meanwhile waits for it in a short queue instead of rescheduling a parked task
  (:meth:`Handoff.give`). In a push loop the producer and the worker then run side by
  side in every scheduler pass, and a job is handed over without parking or waking a
  task whenever the worker's step comes after the producer's in the pass (trio orders
  a pass's tasks at random: about half of the time);
* a parked worker is woken with the item directly (``trio.lowlevel.reschedule``),
  without a channel's statistics, closed checks and ``WouldBlock`` exceptions.

The queue never holds more items than there are looking workers (each takes at most
one), so a queued item is always taken at the looking worker's next step: what the zero
buffer guarantees. Workers are woken last parked first (the warmest one).

Only a job nobody can be waiting on yet (a new job's first run, handed over by
``push``) may go to a looking worker: that can start it in the very scheduler pass it
was pushed in. The next run of an existing job (a timer, a retry after a delay, a cron
slot, a forced re-run) is handed over with :meth:`Handoff.wake`, to a parked worker
only: a parked worker runs no earlier than the next pass, so a task woken by the end of
the previous run (``await job``) always sees that run's outcome before the next one
starts, as with a channel.
"""

from __future__ import annotations

import collections
from typing import Generic, TypeVar

import trio
from outcome import Error, Value

__all__ = ["Handoff"]

T = TypeVar("T")

_reschedule = trio.lowlevel.reschedule
_shielded_checkpoint = trio.lowlevel.cancel_shielded_checkpoint


class Handoff(Generic[T]):
    """A zero-buffer rendezvous between senders and worker tasks (see the module docs)."""

    __slots__ = ("_closed", "_looking", "_parked", "_queue", "_senders")

    def __init__(self) -> None:
        self._queue: collections.deque[T] = collections.deque()
        self._looking = 0  # workers between their last attempt's checkpoint and a park
        self._parked: list[trio.lowlevel.Task] = []
        self._senders: dict[trio.lowlevel.Task, T] = {}  # waiting senders, oldest first
        self._closed = False

    @property
    def idle(self) -> int:
        """Workers ready for an item that none has been offered yet."""
        return self._looking - len(self._queue) + len(self._parked)

    def give(self, item: T) -> bool:
        """Hand a new job's ``item`` to a looking or parked worker without waiting; False
        if none is ready (see the module docs). Raises ``BrokenResourceError`` once
        :meth:`close` was called."""
        if self._looking > len(self._queue):  # a worker looks at its next step
            self._queue.append(item)
            return True
        return self.wake(item)

    def wake(self, item: T) -> bool:
        """Hand ``item`` to a parked worker (it runs at the next scheduler pass, not in
        this one); False if none is parked. Raises ``BrokenResourceError`` once
        :meth:`close` was called."""
        if self._parked:
            _reschedule(self._parked.pop(), Value(item))
            return True
        if self._closed:
            raise trio.BrokenResourceError
        return False

    async def send(self, item: T, *, fresh: bool) -> None:
        """Hand ``item`` to a worker, waiting until one is ready (a checkpoint): as
        :meth:`give` if ``fresh`` (a new job's first run), else as :meth:`wake`.

        If this raises (cancelled, or ``BrokenResourceError`` once closed), ``item`` was
        not handed over.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if self.give(item) if fresh else self.wake(item):
            await _shielded_checkpoint()
            return
        task = trio.lowlevel.current_task()
        self._senders[task] = item

        def abort(_: object) -> trio.lowlevel.Abort:
            del self._senders[task]
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    async def take(self) -> T:
        """The next item, for a worker that is ready for one (a checkpoint: a worker
        parked here is cancelled as usual)."""
        if self._senders:
            await trio.lowlevel.checkpoint_if_cancelled()  # (a cancelled worker takes none)
            item = self._take_sender()
            await _shielded_checkpoint()
            return item
        self._looking += 1
        try:
            await _shielded_checkpoint()
        finally:
            self._looking -= 1
        if self._queue:
            return self._queue.popleft()
        if self._senders:  # (it may have waited since this pass: run it at the next one)
            await trio.lowlevel.checkpoint_if_cancelled()
            item = self._take_sender()
            await _shielded_checkpoint()
            return item
        task = trio.lowlevel.current_task()
        self._parked.append(task)

        def abort(_: object) -> trio.lowlevel.Abort:
            self._parked.remove(task)
            return trio.lowlevel.Abort.SUCCEEDED

        taken: T = await trio.lowlevel.wait_task_rescheduled(abort)
        return taken

    def _take_sender(self) -> T:
        task = next(iter(self._senders))
        _reschedule(task)
        return self._senders.pop(task)

    def close(self) -> None:
        """No worker takes items any more: waiting senders, and later :meth:`offer` and
        :meth:`send` calls, get ``BrokenResourceError``; queued items are dropped."""
        self._closed = True
        self._queue.clear()
        for task in self._senders:
            _reschedule(task, Error(trio.BrokenResourceError()))
        self._senders.clear()
