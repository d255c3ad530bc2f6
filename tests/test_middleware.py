"""Inner and outer middleware: order, short-circuit, context, timeouts, registration."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from _helpers import new_app

from jobify_trio import (
    INJECT,
    Cron,
    JobContext,
    JobRouter,
    JobStatus,
    OuterContext,
    RequestState,
    RunMode,
)
from jobify_trio._runtime._middleware_chain import OuterChain
from jobify_trio.exceptions import ApplicationStateError, JobNotCompletedError
from jobify_trio.middleware import CallNext, CallNextOuter


class Recorder:
    """Inner middleware that logs entry and exit under a label."""

    def __init__(self, label: str, log: list[str]) -> None:
        self.label = label
        self.log = log

    async def __call__(self, call_next: CallNext, context: JobContext) -> Any:
        self.log.append(f"{self.label}>")
        try:
            return await call_next(context)
        finally:
            self.log.append(f"<{self.label}")


async def test_order_app_then_routers_outer_to_inner(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    app = new_app(middleware=[Recorder("app1", log), Recorder("app2", log)])
    outer = JobRouter("p", middleware=[Recorder("outer", log)])
    inner = JobRouter("q", middleware=[Recorder("inner", log)])

    @inner.task
    async def job() -> int:
        log.append("run")
        return 5

    outer.include_router(inner)
    app.include_router(outer)
    async with app:
        assert await (await job.push()) == 5
    assert log == [
        "app1>",
        "app2>",
        "outer>",
        "inner>",
        "run",
        "<inner",
        "<outer",
        "<app2",
        "<app1",
    ]


async def test_middleware_wraps_each_attempt(autojump_clock: trio.testing.MockClock) -> None:
    attempts: list[int] = []

    async def mw(call_next: CallNext, context: JobContext) -> Any:
        attempts.append(context.attempt)
        return await call_next(context)

    app = new_app(middleware=[mw])
    calls = 0

    @app.task(retry=2)
    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ValueError(calls)
        return "ok"

    async with app:
        assert await (await flaky.push()) == "ok"
    assert attempts == [1, 2, 3]


async def test_not_calling_call_next_succeeds_with_its_value(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def skip(call_next: CallNext, context: JobContext) -> Any:
        return "skipped"

    ran = False
    app = new_app(middleware=[skip])

    @app.task
    async def job() -> str:
        nonlocal ran
        ran = True
        return "ran"

    async with app:
        pushed = await job.push()
        await pushed.wait()
    assert pushed.status is JobStatus.SUCCESS
    assert pushed.result() == "skipped"
    assert not ran


async def test_middleware_exception_fails_the_attempt(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def boom(call_next: CallNext, context: JobContext) -> Any:
        raise KeyError("mw")

    app = new_app(middleware=[boom])

    @app.task
    async def job() -> None:
        pass

    async with app:
        pushed = await job.push()
        await pushed.wait()
    assert pushed.status is JobStatus.FAILED
    assert isinstance(pushed.exception, KeyError)


async def test_request_state_is_shared_with_the_task_and_fresh_per_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[Any] = []

    async def mw(call_next: CallNext, context: JobContext) -> Any:
        assert "mark" not in context.request_state
        context.request_state.mark = context.attempt
        return await call_next(context)

    app = new_app(middleware=[mw])

    @app.task(retry=1)
    async def job(rs: RequestState = INJECT) -> None:
        seen.append(rs.mark)
        if len(seen) == 1:
            raise ValueError

    async with app:
        await (await job.push())
    assert seen == [1, 2]


async def test_middleware_time_does_not_count_toward_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def slow(call_next: CallNext, context: JobContext) -> Any:
        await trio.sleep(10)
        return await call_next(context)

    app = new_app(middleware=[slow])

    @app.task(timeout=1)
    async def fast() -> str:
        await trio.sleep(0.5)
        return "done"

    @app.task(timeout=1)
    async def too_slow() -> str:
        await trio.sleep(2)
        return "late"

    async with app:
        a = await fast.push()
        b = await too_slow.push()
        await a.wait()
        await b.wait()
    assert a.result() == "done"
    assert b.status is JobStatus.TIMEOUT
    with pytest.raises(TimeoutError):
        b.result()


async def test_cancel_during_middleware(autojump_clock: trio.testing.MockClock) -> None:
    entered = trio.Event()

    async def wait_forever(call_next: CallNext, context: JobContext) -> Any:
        entered.set()
        await trio.sleep_forever()

    app = new_app(middleware=[wait_forever])

    @app.task
    async def job() -> None:
        raise AssertionError("must not run")

    async with app:
        pushed = await job.push()
        await entered.wait()
        await pushed.cancel()
        assert pushed.status is JobStatus.CANCELLED


async def test_outer_middleware_sees_each_scheduling_call(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[tuple[str, tuple[Any, ...], str | None]] = []

    async def outer(call_next: CallNextOuter, context: OuterContext) -> Any:
        seen.append((context.trigger, context.args, context.job_id))
        job = await call_next(context)
        assert job.id == (context.job_id or job.id)
        return job

    app = new_app(outer_middleware=[outer])

    @app.task
    async def job(x: int) -> int:
        return x

    async with app:
        assert await (await job.push(1)) == 1
        assert await (await job.schedule(2).delay(5, job_id="d")) == 2
        assert await (await job.schedule(3).push(job_id="p")) == 3
    assert seen == [("push", (1,), None), ("at", (2,), "d"), ("push", (3,), "p")]


async def test_outer_middleware_can_change_the_call(autojump_clock: trio.testing.MockClock) -> None:
    import attrs

    async def double(call_next: CallNextOuter, context: OuterContext) -> Any:
        return await call_next(attrs.evolve(context, args=(context.args[0] * 2,)))

    app = new_app(outer_middleware=[double])

    @app.task
    async def job(x: int) -> int:
        return x

    async with app:
        assert await (await job.push(21)) == 42


async def test_outer_middleware_not_calling_next_leaves_job_unscheduled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def drop(call_next: CallNextOuter, context: OuterContext) -> Any:
        return None

    ran = False
    app = new_app(outer_middleware=[drop])

    @app.task
    async def job() -> None:
        nonlocal ran
        ran = True

    async with app:
        dropped = await job.schedule().push(job_id="x")
        assert dropped.id == "x"
        assert dropped.status is JobStatus.PENDING
        await dropped.wait()  # returns at once
        with pytest.raises(JobNotCompletedError):
            dropped.result()
        await dropped.cancel()
        assert dropped.status is JobStatus.PENDING
        assert app.find_job("x") is None
        assert app.get_active_jobs() == []
        await app.wait_all()
    assert not ran


async def test_outer_middleware_of_routers_after_the_apps(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []

    def tagged(tag: str) -> Any:
        async def mw(call_next: CallNextOuter, context: OuterContext) -> Any:
            log.append(tag)
            return await call_next(context)

        return mw

    app = new_app(outer_middleware=[tagged("app")])
    router = JobRouter("r", outer_middleware=[tagged("router")])

    @router.task
    async def job() -> None:
        pass

    app.include_router(router)
    async with app:
        await (await job.push())
    assert log == ["app", "router"]


def test_middleware_must_be_callable() -> None:
    with pytest.raises(TypeError, match="not callable"):
        new_app(middleware=[object()])
    with pytest.raises(TypeError, match="outer_middleware"):
        JobRouter(outer_middleware=[1])  # type: ignore[list-item]


async def test_registration_on_a_started_app_is_refused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = new_app()
    router = JobRouter("late")

    async def mw(call_next: CallNext, context: JobContext) -> Any:
        return await call_next(context)

    async with app:
        with pytest.raises(ApplicationStateError):
            app.add_middleware(mw)
        with pytest.raises(ApplicationStateError):
            app.add_outer_middleware(mw)  # type: ignore[arg-type]
        with pytest.raises(ApplicationStateError):
            app.add_exception_handler(ValueError, lambda e, c: None)
        with pytest.raises(ApplicationStateError):
            app.include_router(router)

        with pytest.raises(ApplicationStateError):

            @app.task
            async def late() -> None:
                pass

    app.add_middleware(mw)  # open again once stopped


async def test_outer_middleware_sees_and_changes_cron_arguments(
    autojump_clock: trio.testing.MockClock,
) -> None:
    import attrs

    seen: list[tuple[str | None, tuple[Any, ...], dict[str, Any]]] = []

    async def times_ten(call_next: CallNextOuter, context: OuterContext) -> Any:
        seen.append((context.job_id, context.args, context.kwargs))
        changed = attrs.evolve(context, args=(context.args[0] * 10,), kwargs={"tag": "mw"})
        return await call_next(changed)

    app = new_app(outer_middleware=[times_ten])
    runs: list[tuple[int, str]] = []

    @app.task
    async def tick(x: int = 0, tag: str = "") -> None:
        runs.append((x, tag))

    async with app:
        built = await tick.schedule(4, tag="b").cron("* * * * *", job_id="built")
        own = await tick.schedule().cron(Cron("* * * * *", args=(2,)), job_id="own")
        assert (built._args, built._kwargs) == ((40,), {"tag": "mw"})
        assert (own._args, own._kwargs) == ((20,), {"tag": "mw"})
        await trio.sleep(61)
        await built.cancel()
        await own.cancel()
    assert seen == [("built", (4,), {"tag": "b"}), ("own", (2,), {})]
    assert sorted(runs) == [(20, "mw"), (40, "mw")]


async def test_outer_middleware_passing_cron_arguments_through(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def passthrough(call_next: CallNextOuter, context: OuterContext) -> Any:
        return await call_next(context)

    app = new_app(outer_middleware=[passthrough])
    runs: list[int] = []

    @app.task
    async def tick(x: int = 0) -> None:
        runs.append(x)

    async with app:
        own = await tick.schedule().cron(Cron("* * * * *", args=(3,)), job_id="own")
        assert own._cron is not None
        assert own._cron.args == (3,)
        built = await tick.schedule(5).cron("* * * * *", job_id="built")
        with pytest.raises(TypeError, match="not to both"):
            await tick.schedule(1).cron(Cron("* * * * *", args=(1,)), job_id="both")
        await trio.sleep(61)
        await own.cancel()
        await built.cancel()
    assert sorted(runs) == [3, 5]


async def test_outer_middleware_is_not_involved_in_running_thread_jobs(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    binds = 0
    bind = OuterChain.bind

    def counting_bind(self: OuterChain, runtime: Any) -> Any:
        nonlocal binds
        binds += 1
        return bind(self, runtime)

    monkeypatch.setattr(OuterChain, "bind", counting_bind)

    async def outer(call_next: CallNextOuter, context: OuterContext) -> Any:
        calls.append(context.trigger)
        return await call_next(context)

    app = new_app(outer_middleware=[outer])

    @app.task(run_mode=RunMode.THREAD)
    def in_thread(x: int) -> int:
        return x + 1

    async with app:
        assert await (await in_thread.push(1)) == 2
        assert await (await in_thread.schedule(2).push()) == 3
    assert calls == ["push", "push"]
    assert binds == 2  # one per scheduling call; running the jobs does not use the proxy
