"""JobRouter: prefixes, nesting, misuse errors, handler levels."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from _helpers import new_app

from jobify_trio import JobContext, JobRouter, JobStatus
from jobify_trio.exceptions import RouteAlreadyRegisteredError


def test_prefix_naming() -> None:
    app = new_app()
    plain = JobRouter()
    p = JobRouter("P")
    q = JobRouter("Q")

    @plain.task(name="a")
    def a() -> None: ...

    @p.task(name="b")
    def b() -> None: ...

    @q.task(name="c")
    def c() -> None: ...

    assert b.name == "P:b"
    p.include_router(q)
    assert c.name == "P.Q:c"
    app.include_routers(plain, p)
    assert a.name == "a"
    assert set(app.tasks) == {"a", "P:b", "P.Q:c"}

    @q.task(name="d")  # registered after inclusion: named and known to the app at once
    def d() -> None: ...

    assert d.name == "P.Q:d"
    assert app.tasks["P.Q:d"] is d


def test_nested_without_prefix_in_the_middle() -> None:
    app = new_app()
    outer, middle, inner = JobRouter("o"), JobRouter(), JobRouter("i")

    @inner.task(name="t")
    def t() -> None: ...

    middle.include_router(inner)
    outer.include_router(middle)
    app.include_router(outer)
    assert t.name == "o.i:t"
    assert t.options.name == "o.i:t"


def test_default_name_is_prefixed() -> None:
    router = JobRouter("jobs")

    @router.task
    def hello() -> None: ...

    assert hello.name == "jobs:test_router:test_default_name_is_prefixed.<locals>.hello"


def test_include_routers_needs_arguments() -> None:
    with pytest.raises(ValueError, match="at least one"):
        new_app().include_routers()
    with pytest.raises(ValueError, match="at least one"):
        JobRouter().include_routers()


def test_including_twice_into_itself_or_in_a_cycle() -> None:
    app = new_app()
    a, b, c = JobRouter("a"), JobRouter("b"), JobRouter("c")
    app.include_router(a)
    with pytest.raises(RuntimeError, match="already included"):
        app.include_router(a)
    with pytest.raises(RuntimeError, match="already included"):
        b.include_router(a)
    with pytest.raises(RuntimeError, match="itself"):
        b.include_router(b)
    b.include_router(c)
    with pytest.raises(RuntimeError, match="cycle"):
        c.include_router(b)
    d = JobRouter("d")
    c.include_router(d)
    with pytest.raises(RuntimeError, match="cycle"):
        d.include_router(b)
    with pytest.raises(TypeError):
        app.include_router(new_app())  # type: ignore[arg-type]


def test_duplicate_names_across_routers() -> None:
    app = new_app()

    @app.task(name="x:t")
    def t1() -> None: ...

    router = JobRouter("x")

    @router.task(name="t")
    def t2() -> None: ...

    with pytest.raises(RouteAlreadyRegisteredError):
        app.include_router(router)
    assert router.parent is None  # nothing changed
    assert t2.name == "x:t"
    other = JobRouter("y")
    app.include_router(other)

    @other.task(name="u")
    def u() -> None: ...

    with pytest.raises(RouteAlreadyRegisteredError):

        @app.task(name="y:u")
        def u2() -> None: ...

    with pytest.raises(RouteAlreadyRegisteredError):

        @other.task(name="u")
        def u3() -> None: ...


def test_bad_prefix() -> None:
    with pytest.raises(ValueError, match="prefix"):
        JobRouter("a:b")


async def test_route_of_a_router_never_included(autojump_clock: trio.testing.MockClock) -> None:
    app = new_app()
    router = JobRouter("lost")

    @router.task
    async def lost() -> None: ...

    async with app:
        with pytest.raises(RuntimeError, match="not included"):
            await lost.push()
        with pytest.raises(RuntimeError, match="not included"):
            await lost.schedule().delay(1)


async def test_router_tasks_run(autojump_clock: trio.testing.MockClock) -> None:
    app = new_app()
    router = JobRouter("r")

    @router.task
    def sync_add(a: int, b: int) -> int:
        return a + b

    app.include_router(router)
    async with app:
        assert await (await sync_add.push(1, 2)) == 3
        assert app.find_job("nope") is None


async def test_handler_levels_task_router_chain_app(autojump_clock: trio.testing.MockClock) -> None:
    class Base(Exception): ...

    class Mid(Base): ...

    class Leaf(Mid): ...

    def tag(label: str) -> Any:
        def handler(exc: BaseException, context: JobContext) -> str:
            return label

        return handler

    app = new_app(exception_handlers={Leaf: tag("app"), Exception: tag("app-any")})
    outer = JobRouter("o", exception_handlers={Mid: tag("outer")})
    inner = JobRouter("i", exception_handlers={Base: tag("inner")})
    outer.include_router(inner)
    app.include_router(outer)

    @inner.task(exception_handlers={KeyError: tag("task")})
    async def raise_(kind: str) -> None:
        raise {"leaf": Leaf(), "key": KeyError(), "value": ValueError()}[kind]

    @outer.task
    async def raise_outer(kind: str) -> None:
        raise {"leaf": Leaf(), "value": ValueError()}[kind]

    async with app:
        results = {}
        for kind in ("leaf", "key", "value"):
            results[kind] = await (await raise_.push(kind))
        results["outer-leaf"] = await (await raise_outer.push("leaf"))
        results["outer-value"] = await (await raise_outer.push("value"))
    # the inner router's Base beats the app's more specific Leaf; level first, MRO second
    assert results == {
        "leaf": "inner",
        "key": "task",
        "value": "app-any",
        "outer-leaf": "outer",
        "outer-value": "app-any",
    }


async def test_router_add_handler_and_middleware(autojump_clock: trio.testing.MockClock) -> None:
    app = new_app()
    router = JobRouter("r")
    router.add_exception_handler(ZeroDivisionError, lambda exc, ctx: "handled")
    log: list[str] = []

    async def mw(call_next: Any, context: JobContext) -> Any:
        log.append(context.task.name)
        return await call_next(context)

    router.add_middleware(mw)

    @router.task(name="div")
    async def div() -> float:
        return 1 / 0

    app.include_router(router)
    async with app:
        job = await div.push()
        assert await job == "handled"
        assert job.status is JobStatus.SUCCESS
    assert log == ["r:div"]
