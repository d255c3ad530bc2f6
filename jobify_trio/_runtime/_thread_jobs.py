"""Job functions in worker threads: run them, and know when none is left running.

A thread cannot be cancelled. On cancel (a timeout or ``job.cancel()``) the attempt is
abandoned: trio stops waiting and the function's result is discarded when it returns.
:class:`ThreadJobs` counts the functions that are running or about to run (THREAD-mode
jobs and sync exception handlers), and after its nursery has exited the runtime waits up
to :data:`EXIT_GRACE` seconds (real time) for the count to reach zero. A function still
running then is abandoned for good: leaving the app does not wait for it, a
``RuntimeWarning`` says so, and the thread runs on until the function returns (trio's
worker threads are daemon threads: they die with the interpreter).

The count is taken before the call is handed to trio and given back by the thread when
the function returns. If the call is cancelled before trio started the thread (while
waiting for the thread limiter, say), the thread never runs: the trio side gives the
count back instead. A small state machine under one lock decides which side does it, so
the count never leaks (which would hang shutdown) and never goes negative.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import trio

__all__ = ["EXIT_GRACE", "ThreadJobs"]

EXIT_GRACE = 5.0
"""Seconds (real time) leaving the app waits for job threads before abandoning them."""

_PENDING, _STARTED, _ABANDONED = 0, 1, 2


class ThreadJobs:
    """Runs sync job functions in threads and tracks how many are still running."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._idle = threading.Event()
        self._idle.set()

    @property
    def busy(self) -> bool:
        """True while a job function runs in a thread (or is about to)."""
        return not self._idle.is_set()

    def wait_idle(self, timeout: float | None = None) -> int:
        """Block (in a thread) until no job function runs in a thread, or ``timeout``
        seconds pass; returns how many still run (0 when idle)."""
        self._idle.wait(timeout)
        with self._lock:
            return self._running

    async def wait_exit_grace(self) -> int:
        """Wait up to :data:`EXIT_GRACE` seconds (shielded) for every job function to
        return; returns how many are abandoned still running."""
        if not self.busy:
            return 0
        with trio.CancelScope(shield=True):
            # a limiter of its own: abandoned threads may still hold the default one's tokens
            left: int = await trio.to_thread.run_sync(
                self.wait_idle, EXIT_GRACE, limiter=trio.CapacityLimiter(1)
            )
        return left

    async def run(self, call: Callable[[], Any]) -> Any:
        """Run ``call`` in a worker thread; abandoned, not stopped, when cancelled."""
        state = [_PENDING]
        self._add()

        def in_thread() -> Any:
            with self._lock:
                if state[0] == _ABANDONED:
                    return None  # cancelled before the thread started: do not run it
                state[0] = _STARTED
            try:
                return call()
            finally:
                self._done()

        try:
            return await trio.to_thread.run_sync(in_thread, abandon_on_cancel=True)
        except BaseException:
            with self._lock:
                never_started = state[0] == _PENDING
                if never_started:
                    state[0] = _ABANDONED
            if never_started:
                self._done()
            raise

    def _add(self) -> None:
        with self._lock:
            self._running += 1
            self._idle.clear()

    def _done(self) -> None:
        with self._lock:
            self._running -= 1
            if not self._running:
                self._idle.set()
