"""Contract §5 and §2.3: the Job handle, introspection and wait_all."""

from __future__ import annotations

import pytest
import trio
from _helpers import START, new_app

from jobify_trio import Job, JobStatus
from jobify_trio.exceptions import (
    BaseJobifyError,
    JobCancelledError,
    JobFailedError,
    JobNotCompletedError,
    JobTimeoutError,
)


def test_job_has_no_public_constructor() -> None:
    with pytest.raises(TypeError, match="no public constructor"):
        Job()


async def test_result_of_each_status(autojump_clock: trio.testing.MockClock) -> None:
    app = new_app()

    @app.task(name="ok")
    async def ok() -> int:
        return 42

    @app.task(name="boom")
    async def boom() -> None:
        raise KeyError("nope")

    @app.task(name="slow", timeout=2)
    async def slow() -> None:
        await trio.sleep(10)

    async with app:
        pending = await ok.schedule().delay(5)
        with pytest.raises(JobNotCompletedError):
            pending.result()
        assert await pending == 42

        failed = await boom.push()
        await failed.wait()
        assert failed.status is JobStatus.FAILED
        with pytest.raises(JobFailedError) as info:
            failed.result()
        assert isinstance(info.value.__cause__, KeyError)
        assert isinstance(failed.exception, KeyError)

        timed = await slow.push()
        await timed.wait()
        assert timed.status is JobStatus.TIMEOUT
        with pytest.raises(JobTimeoutError):
            timed.result()

        cancelled = await ok.schedule().delay(100)
        await cancelled.cancel()
        with pytest.raises(JobCancelledError):
            cancelled.result()


async def test_await_job_raises_for_failure(autojump_clock: trio.testing.MockClock) -> None:
    app = new_app()

    @app.task
    async def boom() -> None:
        raise ValueError("bad")

    async with app:
        job = await boom.push()
        with pytest.raises(JobFailedError):
            await job


async def test_wait_never_raises_and_returns_at_once_when_done(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = new_app()

    @app.task
    async def boom() -> None:
        await trio.sleep(1)
        raise ValueError("bad")

    async with app:
        job = await boom.push()
        await job.wait()
        assert trio.current_time() == 1.0
        await job.wait()
        assert trio.current_time() == 1.0
        assert job.is_done()


async def test_cancel_scheduled_job(autojump_clock: trio.testing.MockClock) -> None:
    app = new_app()
    runs: list[float] = []

    @app.task
    async def later() -> None:
        runs.append(trio.current_time())

    async with app:
        job = await later.schedule().delay(10, job_id="c")
        woken: list[float] = []

        async def waiter() -> None:
            await job.wait()
            woken.append(trio.current_time())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await trio.sleep(3)
            await job.cancel()
        assert woken == [3.0]
        assert job.status is JobStatus.CANCELLED
        assert app.find_job("c") is None
        await trio.sleep(20)
    assert runs == []


async def test_cancel_running_job_cancels_the_attempt(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = new_app()
    events: list[str] = []

    @app.task
    async def long() -> None:
        try:
            await trio.sleep(100)
            events.append("finished")
        finally:
            events.append(f"cleanup at {trio.current_time()}")

    async with app:
        job = await long.push()
        await trio.sleep(4)
        assert job.status is JobStatus.RUNNING
        await job.cancel()
        assert job.status is JobStatus.CANCELLED
        await trio.sleep(1)
        assert events == ["cleanup at 4.0"]
        assert app.get_active_jobs() == []


async def test_cancel_finished_job_changes_nothing(autojump_clock: trio.testing.MockClock) -> None:
    app = new_app()

    @app.task
    async def ok() -> str:
        return "v"

    async with app:
        job = await ok.push()
        await job.wait()
        await job.cancel()
        assert job.status is JobStatus.SUCCESS
        assert job.result() == "v"


async def test_find_job_and_active_jobs(autojump_clock: trio.testing.MockClock) -> None:
    app = new_app()

    @app.task
    async def nap(t: float) -> None:
        await trio.sleep(t)

    async with app:
        a = await nap.schedule(1).delay(10, job_id="a")
        b = await nap.schedule(5).push(job_id="b")
        assert app.find_job("a") is a
        assert app.find_job("b") is b
        assert app.find_job("zzz") is None
        assert {j.id for j in app.get_active_jobs()} == {"a", "b"}
        await app.wait_all()
        assert trio.current_time() == 11.0
        assert app.get_active_jobs() == []
        assert app.find_job("a") is None
    assert app.find_job("a") is None
    assert app.get_active_jobs() == []


async def test_wait_all_timeout(autojump_clock: trio.testing.MockClock) -> None:
    app = new_app()

    @app.task
    async def nap() -> None:
        await trio.sleep(50)

    async with app:
        await nap.push()
        with pytest.raises(TimeoutError):
            await app.wait_all(timeout=10)
        assert trio.current_time() == 10.0
        await app.wait_all(timeout=100)
        assert trio.current_time() == 50.0


async def test_wait_all_on_idle_app_returns_at_once(autojump_clock: trio.testing.MockClock) -> None:
    app = new_app()
    async with app:
        await app.wait_all()
        assert trio.current_time() == 0.0


async def test_repr_and_predicates(autojump_clock: trio.testing.MockClock) -> None:
    app = new_app()

    @app.task(name="r")
    async def r() -> None:
        pass

    async with app:
        job = await r.schedule().delay(60, job_id="rid")
        text = repr(job)
        assert "rid" in text
        assert "scheduled" in text
        assert "task='r'" in text
        assert "2026-01-01T00:01:00+00:00" in text
        assert not job.is_done()
        assert not job.is_cron()
        assert job.cron_expression is None
        assert job.task_name == "r"
        assert job.exec_at == START.replace(minute=1)


def test_timeout_error_is_both_kinds() -> None:
    err = JobTimeoutError("j1", 2.5)
    assert isinstance(err, BaseJobifyError)
    assert isinstance(err, TimeoutError)
    assert "j1" in str(err)
    assert "2.5" in str(err)


async def test_timeout_status_message_and_time(autojump_clock: trio.testing.MockClock) -> None:
    app = new_app()

    @app.task(timeout=1.5)
    async def stuck() -> None:
        await trio.sleep_forever()

    async with app:
        job = await stuck.schedule().push(job_id="stuck-1")
        await job.wait()
        assert trio.current_time() == 1.5
        assert job.status is JobStatus.TIMEOUT
        assert isinstance(job.exception, JobTimeoutError)
        assert "stuck-1" in str(job.exception)
        assert "1.5" in str(job.exception)


async def test_timeout_scope_does_not_leak_to_next_job(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = new_app(max_concurrency=1)

    @app.task(timeout=5)
    async def quick() -> str:
        await trio.sleep(1)
        return "q"

    @app.task
    async def longer() -> str:
        await trio.sleep(30)
        return "l"

    async with app:
        first = await quick.push()
        second = await longer.push()
        assert await first == "q"
        assert await second == "l"
        assert trio.current_time() == 31.0


async def test_job_state_is_read_only(autojump_clock: trio.testing.MockClock) -> None:
    app = new_app()

    @app.task
    async def ok() -> None:
        pass

    async with app:
        job = await ok.schedule().delay(5)
        for name, value in [
            ("status", JobStatus.SUCCESS),
            ("exec_at", START),
            ("exception", None),
            ("id", "other"),
        ]:
            with pytest.raises(AttributeError):
                setattr(job, name, value)
        await job.wait()
        assert job.status is JobStatus.SUCCESS
