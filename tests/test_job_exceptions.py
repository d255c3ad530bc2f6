"""A job can't take the app down (issue 10, items 1 and 11).

A job raising any ``BaseException`` other than ``KeyboardInterrupt``/``SystemExit`` (and
trio's ``Cancelled``, which keeps its meaning) fails that job: FAILED, ``result()`` raises
``JobFailedError`` from it; the app runs on and no other job is cancelled. A job that
overran its timeout (it swallowed the ``Cancelled``, or blocked the loop past the
deadline) ends TIMEOUT even though it returned.
"""

from __future__ import annotations

import time
from typing import Any

import _process_base_tasks
import pytest
import trio
import trio.testing
from _helpers import new_app

from jobify_trio import JobContext, JobStatus, RunMode, SmartRetry
from jobify_trio._runtime._actors._executor import passes_through
from jobify_trio.exceptions import JobFailedError, JobTimeoutError
from jobify_trio.middleware import CallNext


class CustomBaseError(BaseException):
    """A BaseException that is neither an Exception nor KeyboardInterrupt/SystemExit."""


def _assert_failed_with(job: Any, exc_type: type[BaseException]) -> None:
    assert job.status is JobStatus.FAILED
    assert isinstance(job.exception, exc_type)
    with pytest.raises(JobFailedError) as info:
        job.result()
    assert isinstance(info.value.__cause__, exc_type)


@pytest.mark.parametrize("exc_type", [CustomBaseError, GeneratorExit])
async def test_async_job_raising_a_base_exception_fails_only_itself(
    autojump_clock: trio.testing.MockClock, exc_type: type[BaseException]
) -> None:
    app = new_app()

    @app.task
    async def bad() -> None:
        await trio.sleep(1)
        raise exc_type("boom")

    @app.task
    async def good() -> str:
        await trio.sleep(5)
        return "done"

    async with app:
        other = await good.push()
        job = await bad.push()
        await job.wait()
        _assert_failed_with(job, exc_type)
        assert other.status is JobStatus.RUNNING  # not cancelled
        assert await other == "done"
        assert await (await good.push()) == "done"  # the app keeps accepting jobs


@pytest.mark.parametrize("mode", [RunMode.THREAD, RunMode.MAIN])
async def test_sync_job_raising_a_base_exception_fails_only_itself(mode: RunMode) -> None:
    app = new_app()

    @app.task(run_mode=mode)
    def bad() -> None:
        raise CustomBaseError("boom")

    @app.task(run_mode=mode)
    def good() -> int:
        return 1

    with trio.fail_after(10):
        async with app:
            job = await bad.push()
            await job.wait()
            _assert_failed_with(job, CustomBaseError)
            assert await (await good.push()) == 1


@pytest.mark.slow
async def test_process_job_raising_a_base_exception_fails_only_itself() -> None:
    app = _process_base_tasks.app
    with trio.fail_after(60):
        async with app:
            job = await _process_base_tasks.raise_base.push()
            await job.wait()
            _assert_failed_with(job, _process_base_tasks.ProcessBaseError)
            assert await (await _process_base_tasks.answer.push()) == 42


async def test_base_exception_in_middleware_or_through_it_fails_the_job(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Raising:
        async def __call__(self, call_next: CallNext, context: JobContext) -> Any:
            if context.job.task_name.endswith("in_middleware"):
                raise CustomBaseError("middleware")
            return await call_next(context)

    app = new_app(middleware=[Raising()])

    @app.task
    async def in_middleware() -> None:
        await trio.lowlevel.checkpoint()

    @app.task(timeout=10)
    async def through_middleware() -> None:
        raise GeneratorExit("job")

    async with app:
        first = await in_middleware.push()
        second = await through_middleware.push()
        await app.wait_all()
    _assert_failed_with(first, CustomBaseError)
    _assert_failed_with(second, GeneratorExit)


async def test_group_of_errors_from_a_jobs_nursery_fails_the_job(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = new_app()

    @app.task
    async def fan_out() -> None:
        async def raise_it(exc: BaseException) -> None:
            await trio.sleep(1)
            raise exc

        async with trio.open_nursery() as nursery:
            nursery.start_soon(raise_it, ValueError("a"))
            nursery.start_soon(raise_it, CustomBaseError("b"))

    async with app:
        job = await fan_out.push()
        await job.wait()
    _assert_failed_with(job, BaseExceptionGroup)


async def test_base_exception_is_retried_only_if_included_and_reaches_handlers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    attempts = {"default": 0, "included": 0}

    def handler(exc: BaseException, context: JobContext) -> str:
        return f"handled {exc}"

    app = new_app(exception_handlers={CustomBaseError: handler})

    @app.task(retry=3)
    async def default() -> None:
        attempts["default"] += 1
        raise CustomBaseError("default")

    @app.task(retry=SmartRetry(2, initial_delay=0, include_exceptions=(CustomBaseError,)))
    async def included() -> None:
        attempts["included"] += 1
        raise CustomBaseError("included")

    async with app:
        first = await default.push()
        second = await included.push()
        await app.wait_all()
    # SmartRetry retries Exception by default: a BaseException is retried only if included
    assert attempts == {"default": 1, "included": 3}
    assert first.result() == "handled default"
    assert second.result() == "handled included"


async def test_handler_raising_a_base_exception_fails_the_job(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def handler(exc: BaseException, context: JobContext) -> None:
        raise CustomBaseError("from the handler")

    app = new_app(exception_handlers={ValueError: handler})

    @app.task
    async def failing() -> None:
        raise ValueError("original")

    @app.task
    async def fine() -> int:
        return 7

    async with app:
        job = await failing.push()
        await job.wait()
        _assert_failed_with(job, CustomBaseError)
        assert isinstance(job.exception.__cause__, ValueError)  # type: ignore[union-attr]
        assert await (await fine.push()) == 7


async def test_system_exit_from_a_job_still_stops_the_app(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = new_app()

    @app.task
    async def leave() -> None:
        raise SystemExit(3)

    with pytest.raises(SystemExit):
        async with app:
            await leave.push()
            await trio.sleep(1)


async def test_cancel_of_a_running_job_keeps_its_meaning(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = new_app()

    @app.task
    async def sleeper() -> None:
        await trio.sleep(100)

    async with app:
        job = await sleeper.push()
        await trio.sleep(1)
        await job.cancel()
        await job.wait()
        assert job.status is JobStatus.CANCELLED


# -- a job that overran is never SUCCESS (item 11) ------------------------------------------


class PassThrough:
    async def __call__(self, call_next: CallNext, context: JobContext) -> Any:
        return await call_next(context)


@pytest.mark.parametrize("middleware", [False, True])
async def test_job_swallowing_its_timeout_cancel_ends_timeout(
    autojump_clock: trio.testing.MockClock, middleware: bool
) -> None:
    app = new_app(middleware=[PassThrough()] if middleware else None)

    @app.task(timeout=1)
    async def stubborn() -> str:
        try:
            await trio.sleep(10)
        except trio.Cancelled:
            return "swallowed"  # what the test is about: it swallows its Cancelled
        return "on time"

    async with app:
        job = await stubborn.push()
        await job.wait()
    assert job.status is JobStatus.TIMEOUT
    with pytest.raises(JobTimeoutError):
        job.result()


async def test_a_cancelled_job_swallowing_its_cancel_leaves_its_worker_usable(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Its worker's cancel scope stays cancelled: the worker must not run (and lose) the
    next job in it, even one queued for it while it looked for work."""
    app = new_app()
    swallowed = trio.Event()

    @app.task
    async def stubborn() -> str:
        try:
            await trio.sleep(10)
        except trio.Cancelled:
            swallowed.set()
            return "swallowed"
        return "on time"

    @app.task
    async def quick(i: int) -> int:
        await trio.lowlevel.checkpoint()
        return i

    async with app:
        job = await stubborn.push()
        await trio.sleep(1)
        await job.cancel()
        await swallowed.wait()
        others = [await quick.push(i) for i in range(5)]
        with trio.fail_after(5):
            assert [await other for other in others] == list(range(5))
    assert job.status is JobStatus.CANCELLED


@pytest.mark.parametrize("middleware", [False, True])
async def test_main_mode_job_blocking_past_its_timeout_ends_timeout(middleware: bool) -> None:
    app = new_app(middleware=[PassThrough()] if middleware else None)

    @app.task(run_mode=RunMode.MAIN, timeout=0.01)
    def blocks() -> str:
        time.sleep(0.05)  # blocks the loop past the deadline, then returns
        return "late"

    @app.task(run_mode=RunMode.MAIN, timeout=5)
    def quick() -> str:
        return "quick"

    with trio.fail_after(10):
        async with app:
            job = await blocks.push()
            await job.wait()
            assert job.status is JobStatus.TIMEOUT
            assert isinstance(job.exception, JobTimeoutError)
            assert await (await quick.push()) == "quick"


def test_passes_through_keeps_cancel_interrupt_and_exit() -> None:
    cancelled = trio.Cancelled._create()
    custom = CustomBaseError()
    assert passes_through(cancelled) is cancelled
    assert passes_through(KeyboardInterrupt()) is not None
    assert passes_through(SystemExit()) is not None
    assert passes_through(custom) is None
    assert passes_through(GeneratorExit()) is None
    assert passes_through(BaseExceptionGroup("g", [custom, ValueError()])) is None
    exit_group = BaseExceptionGroup("g", [custom, SystemExit()])
    assert passes_through(exit_group) is exit_group
    part = passes_through(BaseExceptionGroup("g", [custom, cancelled]))
    assert isinstance(part, BaseExceptionGroup)
    assert part.exceptions == (cancelled,)  # only the Cancelled part goes on
