"""Job event listeners and the graceful ``app.shutdown(grace)`` the CLI worker relies on."""

from __future__ import annotations

import inspect
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio

from jobify_trio import Jobify, JobStatus, SmartRetry
from jobify_trio._runtime._events import JobEvent, JobEventKind
from jobify_trio.exceptions import ApplicationStateError
from jobify_trio.testing import VirtualWallClock

START = datetime(2026, 1, 1, tzinfo=UTC)


def new_app() -> Jobify:
    options: dict[str, Any] = {"wall_clock": VirtualWallClock(START)}
    if "storage" in inspect.signature(Jobify).parameters:
        options["storage"] = False
    return Jobify(**options)


def summary(events: list[JobEvent]) -> list[tuple[str, str, int, str]]:
    return [(e.task_name, str(e.kind), e.attempt, str(e.status)) for e in events]


async def test_listener_sees_start_retry_and_end(autojump_clock: object) -> None:
    app = new_app()
    events: list[JobEvent] = []
    app.add_listener(events.append)
    calls = [0]

    @app.task(name="ok")
    async def ok() -> int:
        await trio.sleep(1)
        return 1

    @app.task(name="flaky", retry=SmartRetry(1, initial_delay=2, jitter=False))
    async def flaky() -> None:
        calls[0] += 1
        raise ValueError(f"boom {calls[0]}")

    async with app:
        await ok.push()
        job = await flaky.push()
        await app.wait_all()
    assert sorted(summary(events)) == sorted(
        [
            ("ok", "started", 1, "running"),
            ("flaky", "started", 1, "running"),
            ("flaky", "retrying", 1, "failed"),
            ("flaky", "started", 2, "running"),
            ("flaky", "ended", 2, "failed"),
            ("ok", "ended", 1, "success"),
        ]
    )
    retry = next(e for e in events if e.kind is JobEventKind.RETRYING)
    assert retry.next_run == START + timedelta(seconds=2)
    assert str(retry.exception) == "boom 1"
    final = events[-1] if events[-1].task_name == "flaky" else events[-2]
    assert final.exception is job.exception
    assert final.next_run is None


async def test_listener_sees_timeout_and_cancel(autojump_clock: object) -> None:
    app = new_app()
    events: list[JobEvent] = []
    app.add_listener(events.append)

    @app.task(name="slow", timeout=1)
    async def slow() -> None:
        await trio.sleep(10)

    async with app:
        timed_out = await slow.push()
        await timed_out.wait()
        cancelled = await slow.push()
        await trio.sleep(0.5)
        await cancelled.cancel()
    assert summary(events) == [
        ("slow", "started", 1, "running"),
        ("slow", "ended", 1, "timeout"),
        ("slow", "started", 1, "running"),
        ("slow", "ended", 1, "cancelled"),
    ]


async def test_failing_listener_is_logged_and_ignored(
    autojump_clock: object, caplog: pytest.LogCaptureFixture
) -> None:
    app = new_app()

    def broken(event: JobEvent) -> None:
        raise RuntimeError("listener bug")

    app.add_listener(broken)

    @app.task(name="ok")
    async def ok() -> int:
        return 7

    with caplog.at_level(logging.ERROR, logger="jobify_trio"):
        async with app:
            assert await (await ok.push()) == 7
    assert "listener bug" in caplog.text


async def test_add_listener_checks() -> None:
    app = new_app()
    with pytest.raises(TypeError, match="callable"):
        app.add_listener(42)  # type: ignore[arg-type]
    async with app:
        with pytest.raises(ApplicationStateError):
            app.add_listener(print)


async def test_shutdown_lets_running_jobs_finish_within_grace(autojump_clock: object) -> None:
    app = new_app()
    ran: list[str] = []

    @app.task(name="work")
    async def work(name: str, seconds: float) -> str:
        await trio.sleep(seconds)
        ran.append(name)
        return name

    async with app:
        quick = await work.push("quick", 2)
        stuck = await work.push("stuck", 100)
        later = await work.schedule("later", 0).delay(1)
        await trio.sleep(0.5)
        began = trio.current_time()
        await app.shutdown(grace=5)
        assert trio.current_time() - began == pytest.approx(5, abs=0.02)
        assert later.status is JobStatus.SCHEDULED  # due during the grace, never started
        with pytest.raises(ApplicationStateError):
            await work.push("refused", 0)
    assert ran == ["quick"]
    assert quick.status is JobStatus.SUCCESS
    assert stuck.status is JobStatus.CANCELLED
    assert later.status is JobStatus.CANCELLED


async def test_shutdown_returns_as_soon_as_running_jobs_end(autojump_clock: object) -> None:
    app = new_app()

    @app.task(name="work")
    async def work() -> None:
        await trio.sleep(2)

    async with app:
        job = await work.push()
        await trio.sleep(0.5)
        began = trio.current_time()
        await app.shutdown(grace=60)
        assert trio.current_time() - began < 1.6
    assert job.status is JobStatus.SUCCESS


async def test_shutdown_checks() -> None:
    app = new_app()
    with pytest.raises(ApplicationStateError):
        await app.shutdown()
    async with app:
        with pytest.raises(ValueError, match="grace"):
            await app.shutdown(grace=-1)
