"""A real-time limit on every trio test, that ends a hung test cleanly.

A test stuck in a wait that never ends used to run into pytest-timeout, whose SIGALRM
handler raises inside ``trio.run``: trio's run state was left behind, and every later trio
test failed with "Attempted to call run() from inside a run()". Here each trio test runs
inside a cancel scope that a timer thread cancels after ``JOBIFY_TEST_REAL_TIME_LIMIT``
seconds of real time (default 60; the slowest test takes a few seconds): the test unwinds
through its ``async with`` blocks, fails with :class:`TimeoutError`, and the next test
starts from a clean slate. The limit is in real time whatever clock the test uses (a mock
clock's virtual time can't measure a hang). pytest-timeout (``timeout`` in pyproject.toml,
larger) stays as the last resort for a test blocked outside trio's checkpoints.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
import trio

__all__ = ["pytest_collection_modifyitems", "run_with_real_time_limit"]

DEFAULT_LIMIT = 60.0


def _limit() -> float:
    return float(os.environ.get("JOBIFY_TEST_REAL_TIME_LIMIT", DEFAULT_LIMIT))


def _dump_tasks(note: str) -> None:
    """Write every live task and where it waits to stderr: what a hung test was doing."""
    lines = [f"{note}; the tasks still alive:"]

    def walk(task: trio.lowlevel.Task, depth: int) -> None:
        where = " <- ".join(
            f"{frame.f_code.co_name}:{lineno}" for frame, lineno in task.iter_await_frames()
        )
        lines.append(f"{'  ' * depth}{task.name}: {where}")
        for nursery in task.child_nurseries:
            for child in nursery.child_tasks:
                walk(child, depth + 1)

    walk(trio.lowlevel.current_root_task(), 0)  # type: ignore[arg-type]
    sys.stderr.write("\n".join(lines) + "\n")


def run_with_real_time_limit(
    async_fn: Callable[[], Awaitable[Any]],
    *,
    clock: trio.abc.Clock | None = None,
    instruments: Sequence[trio.abc.Instrument] = (),
    limit: float | None = None,
) -> Any:
    """``trio.run(async_fn)``, cancelled after ``limit`` seconds of real time (then
    :class:`TimeoutError`)."""
    seconds = _limit() if limit is None else limit

    async def guarded() -> Any:
        token = trio.lowlevel.current_trio_token()
        note = (
            f"the test ran longer than {seconds:g} s of real time and was cancelled "
            "(JOBIFY_TEST_REAL_TIME_LIMIT sets the limit)"
        )
        with trio.CancelScope() as scope:

            def cancel_after_dump() -> None:
                _dump_tasks(note)
                scope.cancel()

            def expire() -> None:
                with contextlib.suppress(trio.RunFinishedError):  # the test ended just now
                    token.run_sync_soon(cancel_after_dump)

            timer = threading.Timer(seconds, expire)
            timer.daemon = True
            timer.start()
            try:
                return await async_fn()
            except BaseException as exc:
                if scope.cancel_called:  # what the test raised while it was being cancelled
                    exc.add_note(note)
                raise
            finally:
                timer.cancel()
        raise TimeoutError(note)

    return trio.run(guarded, clock=clock, instruments=instruments)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run every async test function under the limit.

    (pytest-trio runs the examples of an async Hypothesis test with plain ``trio.run``
    whatever the marker says; the suite has none: its Hypothesis tests call ``trio.run``
    themselves.)
    """
    for item in items:
        if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(item.obj):
            # Put first: pytest-trio uses the closest ``trio`` marker that names a runner.
            item.add_marker(pytest.mark.trio(run=run_with_real_time_limit), append=False)
