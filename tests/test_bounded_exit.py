"""Refused shutdowns change nothing, and leaving the app takes bounded time (issue 10,
items 9 and 10).

Threads are real here (autojump cannot see them): every wait has a real-time bound, and
``EXIT_GRACE`` is made short so that no test waits long.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import trio
import trio.testing
from _helpers import new_app

from jobify_trio import Job, JobContext, JobStatus, RunMode
from jobify_trio.exceptions import JobTimeoutError

GRACE = 0.2


@pytest.fixture
def short_exit_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    from jobify_trio._runtime import _thread_jobs

    monkeypatch.setattr(_thread_jobs, "EXIT_GRACE", GRACE, raising=False)


# -- item 9: a refused shutdown changes nothing ----------------------------------------------


@pytest.mark.parametrize("grace", [float("nan"), -1, -0.5, "5", None, True, [1]])
async def test_invalid_grace_is_refused_and_the_app_keeps_accepting_jobs(
    autojump_clock: trio.testing.MockClock, grace: Any
) -> None:
    app = new_app()

    @app.task
    async def work() -> str:
        return "ran"

    async with app:
        with pytest.raises(ValueError, match="grace"):
            await app.shutdown(grace)
        assert await (await work.push()) == "ran"
        await app.shutdown(float("inf"))  # inf is valid: wait as long as it takes


# -- item 10: leaving the app is bounded -----------------------------------------------------


async def test_thread_job_ignoring_its_timeout_ends_timeout_and_exit_is_bounded(
    short_exit_grace: None,
) -> None:
    app = new_app()
    release = threading.Event()
    returned = threading.Event()

    @app.task(run_mode=RunMode.THREAD, timeout=0.05)
    def stubborn() -> str:
        release.wait(10)  # ignores its timeout
        returned.set()
        return "late"

    async def run() -> Job[str]:
        async with app:
            job = await stubborn.push()
            await job.wait()
            assert time.monotonic() - began < 2  # TIMEOUT at its deadline
            assert job.status is JobStatus.TIMEOUT
            assert isinstance(job.exception, JobTimeoutError)
        return job

    try:
        with trio.fail_after(5):
            began = time.monotonic()
            with pytest.warns(RuntimeWarning, match="1 job thread"):
                job = await run()
            left_after = time.monotonic() - began
        assert left_after < 3  # bounded by EXIT_GRACE, not by the thread
        assert not returned.is_set()  # abandoned: it still runs
        assert job.status is JobStatus.TIMEOUT
    finally:
        release.set()
    assert returned.wait(5)  # (the thread ends once released; its result is discarded)


async def test_sync_handler_blocking_in_its_thread_does_not_hold_the_exit(
    short_exit_grace: None,
) -> None:
    release = threading.Event()
    entered = threading.Event()

    def blocking_handler(exc: BaseException, context: JobContext) -> str:
        entered.set()
        release.wait(10)
        return "handled"

    app = new_app(exception_handlers={ValueError: blocking_handler})

    @app.task
    async def fails() -> None:
        raise ValueError

    async def run() -> Job[None]:
        async with app:
            job = await fails.push()
            while not entered.is_set():
                await trio.sleep(0.01)
        return job

    try:
        with trio.fail_after(5):
            began = time.monotonic()
            with pytest.warns(RuntimeWarning, match="abandoned"):
                job = await run()
            assert time.monotonic() - began < 3
        assert job.status is JobStatus.CANCELLED
    finally:
        release.set()


async def test_cancelling_a_job_whose_sync_handler_blocks_returns_at_once(
    short_exit_grace: None,
) -> None:
    release = threading.Event()
    entered = threading.Event()

    def blocking_handler(exc: BaseException, context: JobContext) -> str:
        entered.set()
        release.wait(10)
        return "handled"

    app = new_app(exception_handlers={ValueError: blocking_handler})

    @app.task
    async def fails() -> None:
        raise ValueError

    @app.task
    async def fine() -> int:
        return 1

    async def run() -> None:
        async with app:
            job = await fails.push()
            while not entered.is_set():
                await trio.sleep(0.01)
            await job.cancel()
            await job.wait()
            assert job.status is JobStatus.CANCELLED
            assert await (await fine.push()) == 1
            await app.wait_all()  # the abandoned handler does not keep it busy

    try:
        with trio.fail_after(5), pytest.warns(RuntimeWarning, match="abandoned"):
            await run()
    finally:
        release.set()


async def test_threads_that_return_within_the_grace_are_waited_for() -> None:
    app = new_app()
    returned = threading.Event()

    @app.task(run_mode=RunMode.THREAD, timeout=0.01)
    def slightly_slow() -> None:
        time.sleep(0.1)
        returned.set()

    with trio.fail_after(5):
        async with app:
            job = await slightly_slow.push()
            await job.wait()
    assert returned.is_set()  # leaving waited for it (no warning: none was abandoned)
    assert job.status is JobStatus.TIMEOUT
