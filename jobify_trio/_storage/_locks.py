"""A lock for the write paths, taken without a schedule point when it is free.

``trio.Lock.acquire`` always yields, even for a free lock, and its bookkeeping of the
owning task costs a few microseconds per use. On the write paths (the storage writer's
commit lock, the PostgreSQL write connection's lock), taken on every push, that yield
would run every ready task before the statement is sent instead of during its round trip;
so :class:`QuickLock` is taken at once when free, and only a held one is waited for. Like
``trio.Lock`` it is fair: a release hands the lock to the first waiter.
"""

from __future__ import annotations

from types import TracebackType

import trio

__all__ = ["QuickLock"]


class QuickLock:
    """A FIFO lock: :meth:`acquire` has no schedule point when the lock is free."""

    __slots__ = ("_held", "_lot")

    def __init__(self) -> None:
        self._held = False
        self._lot = trio.lowlevel.ParkingLot()  # the waiters, in order

    def locked(self) -> bool:
        """Whether the lock is held."""
        return self._held

    async def acquire(self) -> None:
        """Take the lock: at once if it is free, else wait until it is handed over."""
        if self._held:
            await self._lot.park()  # woken by release(), the lock is ours (still held)
        else:
            self._held = True

    def release(self) -> None:
        """Hand the lock to the first waiter, or free it."""
        if self._lot:
            self._lot.unpark()
        else:
            self._held = False

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        etype: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
