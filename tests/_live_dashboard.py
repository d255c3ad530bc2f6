"""A Jobify app and its dashboard served by trio in a background thread, for sync tests.

Browser tests drive Playwright's sync API from the test's thread while the app runs in
its own ``trio.run``; ``call`` runs a coroutine function in that trio run.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

from jobify_trio import Jobify
from jobify_trio.dashboard import serve_dashboard

T = TypeVar("T")
STARTUP_TIMEOUT = 10.0


class LiveDashboard:
    """``with LiveDashboard(app, host, **options) as live:`` serves ``app`` at ``live.url``."""

    def __init__(self, app: Jobify, host: str = "127.0.0.1", **options: Any) -> None:
        self.app = app
        self._host = host
        self._options = options
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.url = ""

    def __enter__(self) -> LiveDashboard:
        self._thread.start()
        if not self._ready.wait(STARTUP_TIMEOUT):
            raise TimeoutError("the dashboard did not start")
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(STARTUP_TIMEOUT)
        if self._error is not None:
            raise self._error

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        return trio.from_thread.run(fn, *args, trio_token=self._token)

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as e:
            self._error = e
            self._ready.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with self.app, trio.open_nursery() as nursery:
            urls = await nursery.start(
                lambda task_status: serve_dashboard(
                    self.app, self._host, 0, task_status=task_status, **self._options
                )
            )
            self.url = urls[0]
            self._ready.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()
