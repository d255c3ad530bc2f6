"""Taking a :class:`trio.Lock` without a schedule point when it is free.

``Lock.acquire`` always yields, even for a free lock. On the write paths (the storage
writer's commit lock, the PostgreSQL write connection's lock) that extra yield would run
every ready task before the statement is sent, instead of during its round trip; so a
free lock is taken at once, and only a held one is waited for.
"""

from __future__ import annotations

import trio

__all__ = ["acquire_at_once"]


async def acquire_at_once(lock: trio.Lock) -> None:
    """Acquire ``lock``: at once if it is free (no schedule point), else wait for it."""
    try:
        lock.acquire_nowait()
    except trio.WouldBlock:
        await lock.acquire()
