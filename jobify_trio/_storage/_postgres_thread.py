"""Threads of :class:`~jobify_trio.storage.PostgresStorage`: one per threaded connection.

psycopg's asyncio API does not run under trio. Writes (``apply``) run on the trio thread
(:mod:`jobify_trio._storage._postgres_native`); every other connection is a synchronous
psycopg connection owned by one dedicated thread (the house pattern of
:mod:`jobify_trio._storage._sqlite_thread`: a :class:`queue.SimpleQueue` feeds the thread,
``TrioToken.run_sync_soon`` wakes trio; measured 37-50 us per hop against 57-65 us for
``trio.to_thread`` with a ``CapacityLimiter``, and the connection never changes threads).

* :class:`WorkerThread` (:mod:`jobify_trio._storage._thread`, shared with SQLite) runs
  calls in submission order on the store's reads' connection. A call that is cancelled stops
  waiting; its statement still finishes (bounded by ``statement_timeout``).
* :class:`ListenerThread` holds another connection that ``LISTEN``\\ s on the store's
  channel and sets a trio flag on every notification (and after each reconnect, since
  notifications sent while it was away are lost).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg
import trio

from ._thread import WorkerThread

__all__ = ["ListenerThread", "WorkerThread"]

#: Seconds the listener waits for notifications before checking whether it should stop.
_LISTEN_TICK = 0.2
#: Seconds between reconnection attempts of the listener.
_RECONNECT_PAUSE = 1.0


class ListenerThread:
    """``LISTEN channel`` on a dedicated connection; :meth:`wait` for a notification."""

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]], channel: str) -> None:
        self._connect = connect
        self._channel = channel
        self._token = trio.lowlevel.current_trio_token()
        self._changed = trio.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._main, name=f"jobify-pg-listen:{channel}", daemon=True
        )
        self._thread.start()

    def _signal(self) -> None:
        self._changed.set()

    def _notify_trio(self) -> None:
        try:
            self._token.run_sync_soon(self._signal)
        except trio.RunFinishedError:
            self._stopping.set()

    def _main(self) -> None:
        while not self._stopping.is_set():
            try:
                with self._connect() as conn:
                    conn.execute(f"LISTEN {self._channel}")
                    self._notify_trio()  # anything sent while not listening was missed
                    while not self._stopping.is_set():
                        for _ in conn.notifies(timeout=_LISTEN_TICK):
                            self._notify_trio()
            except psycopg.Error:
                self._stopping.wait(_RECONNECT_PAUSE)

    async def wait(self, seconds: float) -> bool:
        """True once a notification arrived since the last call, waiting up to ``seconds``."""
        with trio.move_on_after(seconds):
            await self._changed.wait()
        if self._changed.is_set():
            self._changed = trio.Event()
            return True
        return False

    async def stop(self) -> None:
        """Stop listening and wait for the thread to end."""
        self._stopping.set()
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self._thread.join)
