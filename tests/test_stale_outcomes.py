"""A failure or a handler's outcome that arrives for a job already cancelled or re-armed
changes nothing: the job's generation moved on, and the late news is dropped."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import trio
import trio.testing
from _helpers import START, new_app

from jobify_trio import JobContext, JobStatus, SmartRetry
from jobify_trio._core._messages import AttemptFailed
from jobify_trio._runtime._actors._supervisor import Supervisor


async def test_failure_raised_after_the_job_was_cancelled_is_dropped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    handled: list[BaseException] = []

    async def handler(exc: BaseException, context: JobContext) -> str:
        handled.append(exc)
        return "handled"

    app = new_app(exception_handlers={ValueError: handler})

    @app.task(retry=SmartRetry(3, initial_delay=1))
    async def stubborn() -> None:
        try:
            await trio.sleep(100)
        finally:
            raise ValueError("raised while being cancelled")

    async with app:
        job = await stubborn.push()
        await trio.sleep(1)
        await job.cancel()
        await trio.sleep(10)
        await app.wait_all()
    assert job.status is JobStatus.CANCELLED
    assert handled == []  # neither handled nor retried


async def test_handler_outcome_after_the_job_was_cancelled_is_dropped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    finished: list[str] = []

    async def stubborn_handler(exc: BaseException, context: JobContext) -> str:
        with trio.CancelScope(shield=True):  # ignores the cancel, then returns a value
            await trio.sleep(5)
        finished.append("handler")
        return "handled"

    app = new_app(exception_handlers={ValueError: stubborn_handler})

    @app.task
    async def fails() -> None:
        raise ValueError

    async with app:
        job = await fails.push()
        await trio.sleep(1)
        assert job.status is JobStatus.RUNNING  # its handler runs
        await job.cancel()
        await trio.sleep(10)
    assert finished == ["handler"]
    assert job.status is JobStatus.CANCELLED


async def test_handler_raising_after_the_job_was_cancelled_is_dropped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def handler(exc: BaseException, context: JobContext) -> None:
        try:
            await trio.sleep(5)
        finally:
            raise RuntimeError("from a cancelled handler")

    app = new_app(exception_handlers={ValueError: handler})

    @app.task
    async def fails() -> None:
        raise ValueError

    async with app:
        job = await fails.push()
        await trio.sleep(1)
        await job.cancel()
        await trio.sleep(10)
    assert job.status is JobStatus.CANCELLED
    assert isinstance(job.exception, ValueError)  # not the handler's late RuntimeError


async def test_job_re_armed_while_its_handler_runs_runs_again_after_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def handler(exc: BaseException, context: JobContext) -> str:
        await trio.sleep(5)
        return f"handled {exc}"

    app = new_app(exception_handlers={ValueError: handler})
    calls: list[str] = []

    @app.task
    async def work(name: str) -> str:
        calls.append(name)
        if name == "first":
            raise ValueError(name)
        return name

    async with app:
        job = await work.schedule("first").push(job_id="w")
        await trio.sleep(1)  # the handler runs
        again = await work.schedule("second").push(job_id="w", replace=True, force=True)
        assert again is job
        assert job.status is JobStatus.RUNNING  # the handler's run is not over
        await trio.sleep(10)
        await app.wait_all()
    assert calls == ["first", "second"]  # never two runs of one id at once
    assert job.status is JobStatus.SUCCESS
    assert job.result() == "second"


async def test_retry_pending_when_the_job_is_re_armed_is_dropped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = new_app()
    starts: list[tuple[str, float]] = []

    @app.task(retry=SmartRetry(1, initial_delay=10, jitter=False))
    async def work(name: str) -> None:
        starts.append((name, trio.current_time()))
        if name == "first":
            raise ValueError

    async with app:
        t0 = trio.current_time()
        job = await work.schedule("first").push(job_id="w")
        await trio.sleep(1)  # the retry waits for t0 + 10
        assert job.status is JobStatus.SCHEDULED
        at = START + timedelta(seconds=3)
        await work.schedule("second").at(at, job_id="w", replace=True)
        await trio.sleep(30)
        await app.wait_all()
    assert [(name, when - t0) for name, when in starts] == [("first", 0), ("second", 3)]
    assert job.status is JobStatus.SUCCESS


async def test_supervisor_drops_a_failure_of_an_older_generation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = new_app()

    @app.task
    async def sleeper() -> None:
        await trio.sleep(100)

    async with app:
        job = await sleeper.push()
        await trio.sleep(1)
        runtime = app._runtime
        assert runtime is not None
        supervisor: Supervisor = runtime.supervisor
        started: list[Any] = []

        class Nursery:
            def start_soon(self, *args: Any) -> None:
                started.append(args)

        stale = AttemptFailed(
            job=job, generation=job._generation - 1, attempt=1, exception=ValueError()
        )
        supervisor._on_attempt_failed(stale, Nursery())  # type: ignore[arg-type]
        assert job.status is JobStatus.RUNNING
        assert job.exception is None
        assert started == []
        await job.cancel()
        current = AttemptFailed(
            job=job, generation=job._generation, attempt=1, exception=ValueError()
        )
        supervisor._on_attempt_failed(current, Nursery())  # type: ignore[arg-type]
        assert job.status is JobStatus.CANCELLED  # a cancelled job is never failed
        assert started == []
