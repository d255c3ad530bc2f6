"""The retry supervisor end to end under virtual time: attempts, backoff timing,
include/exclude, timeouts, the executor staying free during a backoff, handler levels."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import trio
import trio.testing
from _helpers import new_app

from jobify_trio import JobContext, JobStatus, SmartRetry
from jobify_trio.exceptions import JobFailedError, JobTimeoutError


async def test_retry_3_makes_exactly_4_attempts(autojump_clock: trio.testing.MockClock) -> None:
    app = new_app()
    attempts = 0

    @app.task(retry=3)
    async def always_fails() -> None:
        nonlocal attempts
        attempts += 1
        raise ValueError(attempts)

    async with app:
        job = await always_fails.push()
        await job.wait()
        await app.wait_all()
    assert attempts == 4
    assert job.status is JobStatus.FAILED
    assert job._attempt == 4
    with pytest.raises(JobFailedError) as info:
        job.result()
    assert isinstance(info.value.__cause__, ValueError)
    assert info.value.__cause__.args == (4,)


async def test_attempts_start_at_exact_backoff_times(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = new_app()
    starts: list[float] = []
    policy = SmartRetry(4, initial_delay=1.0, backoff_factor=2.0, max_delay=5.0, jitter=False)

    @app.task(retry=policy)
    async def failing() -> None:
        starts.append(trio.current_time())
        raise RuntimeError

    async with app:
        t0 = trio.current_time()
        await (await failing.push()).wait()
    assert [s - t0 for s in starts] == [0.0, 1.0, 3.0, 7.0, 12.0]  # delays 1, 2, 4, min(8, 5)


async def test_include_and_exclude(autojump_clock: trio.testing.MockClock) -> None:
    app = new_app()
    counts: dict[str, int] = {}
    only_key = SmartRetry(3, initial_delay=0, include_exceptions=(KeyError,), jitter=False)
    not_lookup = SmartRetry(3, initial_delay=0, exclude_exceptions=(LookupError,), jitter=False)

    @app.task(retry=only_key)
    async def inc(kind: str) -> None:
        counts[f"inc-{kind}"] = counts.get(f"inc-{kind}", 0) + 1
        raise KeyError() if kind == "key" else ValueError()

    @app.task(retry=not_lookup)
    async def exc(kind: str) -> None:
        counts[f"exc-{kind}"] = counts.get(f"exc-{kind}", 0) + 1
        raise IndexError() if kind == "index" else ValueError()

    async with app:
        for job in [await inc.push("key"), await inc.push("value")]:
            await job.wait()
        for job in [await exc.push("index"), await exc.push("value")]:
            await job.wait()
    assert counts == {"inc-key": 4, "inc-value": 1, "exc-index": 1, "exc-value": 4}


async def test_a_timeout_is_retried(autojump_clock: trio.testing.MockClock) -> None:
    app = new_app()
    durations = [5.0, 5.0, 0.5]

    @app.task(timeout=1, retry=SmartRetry(3, initial_delay=0, jitter=False))
    async def slow_then_fast() -> str:
        await trio.sleep(durations.pop(0))
        return "done"

    @app.task(timeout=1, retry=SmartRetry(1, initial_delay=0, jitter=False))
    async def always_slow() -> None:
        await trio.sleep(5)

    async with app:
        t0 = trio.current_time()
        assert await (await slow_then_fast.push()) == "done"
        assert trio.current_time() - t0 == pytest.approx(2.5)
        job = await always_slow.push()
        await job.wait()
    assert job.status is JobStatus.TIMEOUT
    assert isinstance(job.exception, JobTimeoutError)
    assert job._attempt == 2


async def test_executor_runs_other_jobs_during_a_backoff(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = new_app(max_concurrency=1)  # a single worker: a sleeping retry would block it
    log: list[tuple[str, float]] = []

    @app.task(retry=SmartRetry(1, initial_delay=100, max_delay=100, jitter=False))
    async def flaky() -> None:
        log.append(("flaky", trio.current_time()))
        if len(log) == 1:
            raise ValueError

    @app.task
    async def other(i: int) -> None:
        log.append((f"other{i}", trio.current_time()))

    async with app:
        t0 = trio.current_time()
        first = await flaky.push()
        await trio.sleep(1)
        for i in range(3):
            await (await other.push(i))
        await first.wait()
    assert [(name, at - t0) for name, at in log] == [
        ("flaky", 0.0),
        ("other0", 1.0),
        ("other1", 1.0),
        ("other2", 1.0),
        ("flaky", 100.0),
    ]
    assert first.status is JobStatus.SUCCESS


async def test_handlers_level_first_task_beats_more_specific_app_handler(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def app_value_error(exc: BaseException, context: JobContext) -> str:
        return "app"

    async def task_exception(exc: BaseException, context: JobContext) -> str:
        return f"task:{type(exc).__name__}:{context.attempt}"

    app = new_app(exception_handlers={ValueError: app_value_error})

    @app.task(retry=SmartRetry(1, initial_delay=0), exception_handlers={Exception: task_exception})
    async def with_map() -> None:
        raise ValueError

    @app.task
    async def without_map() -> None:
        raise ValueError

    async with app:
        job = await with_map.push()
        assert await job == "task:ValueError:2"  # handlers run after retries are exhausted
        assert job.status is JobStatus.SUCCESS
        assert await (await without_map.push()) == "app"


async def test_a_raising_handler_fails_the_job_chained(
    autojump_clock: trio.testing.MockClock,
) -> None:
    original = KeyError("original")

    async def bad_handler(exc: BaseException, context: JobContext) -> None:
        raise RuntimeError("handler broke")

    app = new_app()

    @app.task(exception_handlers={KeyError: bad_handler})
    async def fails() -> None:
        raise original

    async with app:
        job = await fails.push()
        await job.wait()
    assert job.status is JobStatus.FAILED
    assert isinstance(job.exception, RuntimeError)
    assert job.exception.__cause__ is original


async def test_sync_handler_runs_in_a_thread_async_on_the_loop(
    autojump_clock: trio.testing.MockClock,
) -> None:
    where: dict[str, Any] = {}

    def sync_handler(exc: BaseException, context: JobContext) -> str:
        where["sync"] = threading.current_thread()
        return "sync"

    async def async_handler(exc: BaseException, context: JobContext) -> str:
        where["async"] = threading.current_thread()
        return "async"

    app = new_app()

    @app.task(exception_handlers={KeyError: sync_handler, ValueError: async_handler})
    async def fails(kind: str) -> None:
        raise KeyError() if kind == "key" else ValueError()

    async with app:
        assert await (await fails.push("key")) == "sync"
        assert await (await fails.push("value")) == "async"
    assert where["sync"] is not threading.main_thread()
    assert where["async"] is threading.main_thread()


async def test_timeout_handler_via_builtin_timeouterror(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = new_app(exception_handlers={TimeoutError: lambda exc, ctx: "too slow"})

    @app.task(timeout=1)
    async def slow() -> None:
        await trio.sleep(10)

    async with app:
        assert await (await slow.push()) == "too slow"


async def test_cancel_during_backoff_never_runs_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = new_app()
    runs = 0

    @app.task(retry=SmartRetry(5, initial_delay=10, jitter=False))
    async def failing() -> None:
        nonlocal runs
        runs += 1
        raise ValueError

    async with app:
        job = await failing.push()
        await trio.sleep(5)
        assert job.status is JobStatus.SCHEDULED
        await job.cancel()
        await trio.sleep(100)
        assert job.status is JobStatus.CANCELLED
    assert runs == 1


async def test_cancel_stops_a_running_async_handler(autojump_clock: trio.testing.MockClock) -> None:
    ended_at: list[float] = []

    async def slow_handler(exc: BaseException, context: JobContext) -> str:
        try:
            await trio.sleep(100)
            return "handled"
        finally:
            ended_at.append(trio.current_time())

    app = new_app()

    @app.task(exception_handlers={ValueError: slow_handler})
    async def fails() -> None:
        raise ValueError

    async with app:
        t0 = trio.current_time()
        job = await fails.push()
        await trio.sleep(5)
        assert job.status is JobStatus.RUNNING  # its handler runs
        assert job._scope is not None
        await job.cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert ended_at == [pytest.approx(t0 + 5)]
        await trio.sleep(200)
    assert job.status is JobStatus.CANCELLED
    assert job._scope is None
    assert ended_at == [pytest.approx(t0 + 5)]


async def test_shutdown_grace_waits_for_a_running_handler(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def slow_handler(exc: BaseException, context: JobContext) -> str:
        await trio.sleep(3)
        return "handled"

    app = new_app()

    @app.task(exception_handlers={ValueError: slow_handler})
    async def fails() -> None:
        raise ValueError

    async with app:
        t0 = trio.current_time()
        job = await fails.push()
        await trio.sleep(1)
        await app.shutdown(grace=10)
        assert trio.current_time() - t0 == pytest.approx(3, abs=0.02)
    assert job.status is JobStatus.SUCCESS
    assert job.result() == "handled"


async def test_shutdown_grace_does_not_wait_past_the_grace_for_a_handler(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def endless_handler(exc: BaseException, context: JobContext) -> None:
        await trio.sleep_forever()

    app = new_app()

    @app.task(exception_handlers={ValueError: endless_handler})
    async def fails() -> None:
        raise ValueError

    async with app:
        t0 = trio.current_time()
        job = await fails.push()
        await trio.sleep(1)
        await app.shutdown(grace=2)
        assert trio.current_time() - t0 == pytest.approx(3, abs=0.02)
    assert job.status is JobStatus.CANCELLED
