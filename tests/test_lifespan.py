"""Lifespans and plugins: order of startup and shutdown, state merging, errors."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing
from _helpers import new_app

from jobify_trio import INJECT, Jobify, JobRouter, Plugin, State


def lifespan_logging(label: str, log: list[str], value: dict[str, Any] | None = None) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: Jobify) -> AsyncIterator[dict[str, Any] | None]:
        assert isinstance(app, Jobify)
        log.append(f"enter {label}")
        try:
            yield value
        finally:
            log.append(f"exit {label}")

    return lifespan


class LoggingPlugin:
    def __init__(self, label: str, log: list[str]) -> None:
        self.label = label
        self.log = log

    async def startup(self, app: Jobify) -> None:
        self.log.append(f"start {self.label}")

    async def shutdown(self) -> None:
        self.log.append(f"stop {self.label}")


async def test_order_of_startup_and_shutdown(autojump_clock: trio.testing.MockClock) -> None:
    log: list[str] = []
    app = new_app(
        lifespan=lifespan_logging("app", log),
        plugins=[LoggingPlugin("p1", log), LoggingPlugin("p2", log)],
    )
    outer = JobRouter("o", lifespan=lifespan_logging("outer", log))
    inner = JobRouter("i", lifespan=lifespan_logging("inner", log))
    other = JobRouter(lifespan=lifespan_logging("other", log))
    outer.include_router(inner)
    app.include_routers(outer, other)
    app.add_plugin(LoggingPlugin("p3", log))
    assert isinstance(app.plugins[0], Plugin)

    @inner.task
    async def job() -> None:
        log.append("job")

    async with app:
        await (await job.push())
        log.append("body")
    assert log == [
        "start p1",
        "start p2",
        "start p3",
        "enter app",
        "enter outer",
        "enter inner",
        "enter other",
        "job",
        "body",
        "exit other",
        "exit inner",
        "exit outer",
        "exit app",
        "stop p1",
        "stop p2",
        "stop p3",
    ]


async def test_yielded_state_is_merged(autojump_clock: trio.testing.MockClock) -> None:
    log: list[str] = []
    app = new_app(state={"a": 0, "b": 0}, lifespan=lifespan_logging("app", log, {"a": 1}))
    router = JobRouter(
        "r", state={"r": "init"}, lifespan=lifespan_logging("r", log, {"b": 2, "c": 3})
    )
    app.include_router(router)

    @router.task
    async def read(state: State = INJECT) -> tuple[Any, ...]:
        return state.a, state.b, state["c"], state.r

    async with app:
        assert await (await read.push()) == (1, 2, 3, "init")
    assert router.state["c"] == 3


async def test_running_jobs_end_before_lifespans_exit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    app = new_app(lifespan=lifespan_logging("app", log))
    started = trio.Event()

    @app.task
    async def forever() -> None:
        started.set()
        try:
            await trio.sleep_forever()
        finally:
            log.append("job cancelled")

    async with app:
        await forever.push()
        await started.wait()
    assert log == ["enter app", "job cancelled", "exit app"]


async def test_failing_startup_unwinds_what_started(autojump_clock: trio.testing.MockClock) -> None:
    log: list[str] = []

    @contextlib.asynccontextmanager
    async def broken(app: Jobify) -> AsyncIterator[None]:
        raise OSError("no database")
        yield  # pragma: no cover

    app = new_app(
        plugins=[LoggingPlugin("p", log)],
        lifespan=lifespan_logging("app", log),
    )
    router = JobRouter(lifespan=broken)
    app.include_router(router)
    with pytest.raises(OSError, match="no database"):
        async with app:
            raise AssertionError("not reached")  # pragma: no cover
    assert log == ["start p", "enter app", "exit app", "stop p"]
    assert not app.is_running


async def test_bad_lifespan_values(autojump_clock: trio.testing.MockClock) -> None:
    with pytest.raises(TypeError, match="lifespan"):
        new_app(lifespan=42)
    with pytest.raises(TypeError, match="startup"):
        new_app(plugins=[object()])

    @contextlib.asynccontextmanager
    async def yields_a_list(app: Jobify) -> AsyncIterator[Any]:
        yield [1]

    app = new_app(lifespan=yields_a_list)
    with pytest.raises(TypeError, match="expected a mapping"):
        async with app:
            pass  # pragma: no cover


def test_lifespans_run_again_in_a_new_trio_run() -> None:
    log: list[str] = []
    app = new_app(lifespan=lifespan_logging("app", log))

    async def main() -> None:
        async with app:
            pass

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert log == ["enter app", "exit app"] * 2
