"""INJECT: every injectable type, decoration-time errors, binding without injected names."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from _helpers import new_app

from jobify_trio import (
    INJECT,
    Job,
    JobContext,
    Jobify,
    RequestState,
    RunMode,
    State,
    Task,
)
from jobify_trio._api._task import TaskOptions


async def test_each_injectable_type(autojump_clock: trio.testing.MockClock) -> None:
    app = new_app(state={"k": 1})
    seen: dict[str, Any] = {}

    @app.task(name="inj", metadata={"m": 2})
    async def inj(
        x: int,
        ctx: JobContext = INJECT,
        job: Job[int] = INJECT,
        state: State = INJECT,
        rs: RequestState = INJECT,
        the_app: Jobify = INJECT,
        task: Task[..., Any] = INJECT,
        options: TaskOptions = INJECT,
    ) -> int:
        seen.update(ctx=ctx, job=job, state=state, rs=rs, app=the_app, task=task, options=options)
        return x

    async with app:
        pushed = await inj.push(7)
        assert await pushed == 7
    ctx = seen["ctx"]
    assert isinstance(ctx, JobContext)
    assert seen["job"] is pushed is ctx.job
    assert seen["state"] is app.state
    assert seen["state"]["k"] == 1
    assert seen["rs"] is ctx.request_state
    assert seen["app"] is app is ctx.app
    assert seen["task"] is inj is ctx.runnable
    assert seen["options"] is inj.options
    assert ctx.metadata["m"] == 2
    assert ctx.attempt == 1


async def test_sync_function_in_a_thread_gets_injection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = new_app()

    @app.task
    def sync(job: Job[str] = INJECT) -> str:
        return job.id

    async with app:
        pushed = await sync.schedule().push(job_id="abc")
        assert await pushed == "abc"


def test_injected_parameters_are_not_arguments() -> None:
    app = new_app()

    @app.task
    async def f(a: int, ctx: JobContext = INJECT) -> None: ...

    f._binder.check((1,), {})
    with pytest.raises(TypeError, match="do not match"):
        f._binder.check((1,), {"ctx": None})
    with pytest.raises(TypeError, match="do not match"):
        f._binder.check((1, 2), {})
    assert list(f._binder.signature.parameters) == ["a"]


def test_missing_annotation_is_an_error_at_decoration() -> None:
    app = new_app()
    with pytest.raises(TypeError, match=r"task 'bad'.*parameter 'ctx'.*no annotation"):

        @app.task(name="bad")
        async def bad(ctx=INJECT) -> None:  # type: ignore[no-untyped-def]
            ...


def test_uninjectable_type_is_an_error_at_decoration() -> None:
    app = new_app()
    with pytest.raises(TypeError, match=r"task 'bad'.*parameter 'n'.*cannot be injected"):

        @app.task(name="bad")
        async def bad(n: int = INJECT) -> None: ...


async def test_string_annotations_match_by_name_when_unresolvable(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = new_app()

    # ``Undefined`` makes typing.get_type_hints fail; ``JobContext`` is still matched by name
    @app.task(name="fwd")
    async def fwd(x: Undefined = 1, ctx: JobContext = INJECT) -> str:  # type: ignore[name-defined]  # noqa: F821
        return ctx.task.name

    with pytest.raises(TypeError, match="'Nope' cannot be injected"):

        @app.task(name="fwd2")
        async def fwd2(x: Undefined = 1, y: Nope = INJECT) -> None:  # type: ignore[name-defined]  # noqa: F821
            ...

    async with app:
        assert await (await fwd.push()) == "fwd"


def test_positional_only_and_process_mode_are_refused() -> None:
    app = new_app()
    with pytest.raises(TypeError, match="positional-only"):

        @app.task(name="po")
        async def po(ctx: JobContext = INJECT, /) -> None: ...

    with pytest.raises(TypeError, match="PROCESS"):

        @app.task(name="proc", run_mode=RunMode.PROCESS)
        def proc(ctx: JobContext = INJECT) -> None: ...


def test_only_the_real_jobify_matches_its_subclasses() -> None:
    from jobify_trio._api._inject import _match

    class MyJobify(Jobify):
        pass

    def app_getter(c: Any) -> Any:
        return c.app

    assert _match(MyJobify, {Jobify: app_getter}) is app_getter

    class Jobify_:  # a foreign class that happens to be called Jobify
        pass

    Jobify_.__name__ = "Jobify"

    class Sub(Jobify_):
        pass

    assert _match(Sub, {Jobify_: app_getter}) is None
    assert _match(Jobify_, {Jobify_: app_getter}) is app_getter
