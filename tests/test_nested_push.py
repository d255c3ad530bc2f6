"""Jobs that push jobs never deadlock (issue 10, item 2).

A worker never waits for a worker: ``push()`` from inside a running job (at any depth,
through middleware, from its thread) does not block on executor capacity; the pool runs
those jobs from an overflow queue. Producers outside the pool still wait (backpressure).
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from _helpers import new_app
from hypothesis import given, settings
from hypothesis import strategies as st

from jobify_trio import Job, JobContext, OuterContext, RunMode
from jobify_trio._core._messages import RunJob
from jobify_trio._runtime._actors import _executor
from jobify_trio.middleware import CallNext, CallNextOuter


def _tree_size(fan_out: int, depth: int) -> int:
    return sum(fan_out**level for level in range(depth + 1))


async def test_binary_tree_of_63_jobs_runs_with_4_workers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = new_app(max_concurrency=4)
    ran: list[int] = []

    @app.task
    async def node(depth: int) -> None:
        ran.append(depth)
        await trio.sleep(1)
        if depth < 5:
            await node.push(depth + 1)
            await node.push(depth + 1)

    with trio.fail_after(3600):  # virtual time: a deadlock would jump straight to it
        async with app:
            await node.push(0)
            await app.wait_all()
    assert len(ran) == 63


async def test_nested_pushes_through_middleware_do_not_deadlock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class PushingMiddleware:
        """Inner middleware that pushes a job before each attempt."""

        async def __call__(self, call_next: CallNext, context: JobContext) -> Any:
            if context.job.task_name.endswith("node"):
                await side.push()
            return await call_next(context)

    class PassOuter:
        async def __call__(self, call_next: CallNextOuter, context: OuterContext) -> Any:
            return await call_next(context)

    app = new_app(
        max_concurrency=2, middleware=[PushingMiddleware()], outer_middleware=[PassOuter()]
    )
    ran = {"node": 0, "side": 0}

    @app.task
    async def side() -> None:
        ran["side"] += 1
        await trio.sleep(1)

    @app.task
    async def node(depth: int) -> None:
        ran["node"] += 1
        await trio.sleep(1)
        if depth < 3:
            for _ in range(3):
                await node.schedule(depth + 1).push()

    with trio.fail_after(3600):
        async with app:
            await node.push(0)
            await app.wait_all()
    assert ran == {"node": 40, "side": 40}


async def test_thread_job_pushing_from_its_thread_does_not_deadlock() -> None:
    app = new_app(max_concurrency=2)
    ran: list[int] = []

    @app.task
    async def leaf(n: int) -> None:
        ran.append(n)

    @app.task(run_mode=RunMode.THREAD)
    def parent(n: int) -> None:
        for i in range(3):
            trio.from_thread.run(leaf.push, n * 10 + i)

    with trio.fail_after(10):
        async with app:
            for n in range(4):
                await parent.push(n)
            await app.wait_all()
    assert sorted(ran) == sorted(n * 10 + i for n in range(4) for i in range(3))


async def test_producers_outside_the_pool_still_wait_while_jobs_overflow(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = new_app(max_concurrency=2)
    pushed_outside = 0

    @app.task
    async def child() -> None:
        await trio.sleep(10)

    go = trio.Event()

    @app.task
    async def parent() -> None:
        await go.wait()  # both parents hold a worker before any child is pushed
        for _ in range(5):
            await child.push()  # never waits: the pool is full, these overflow
        await trio.sleep(10)

    async def outside_producer() -> None:
        nonlocal pushed_outside
        for _ in range(100):
            await child.push()
            pushed_outside += 1

    async with app:
        await parent.push()
        await parent.push()
        runtime = app._runtime
        assert runtime is not None
        await trio.sleep(1)
        go.set()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(outside_producer)
            await trio.sleep(1)
            assert runtime.executor.overflowing == 10  # both parents pushed all children
            assert pushed_outside == 0  # the outside producer waits for a free worker
            await app.wait_all()
        assert pushed_outside == 100


async def test_a_job_pushing_into_another_app_waits_like_any_outside_producer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    other = new_app(max_concurrency=1)
    release = trio.Event()

    @other.task
    async def blocker() -> None:
        await release.wait()

    @other.task
    async def target() -> str:
        return "ran"

    app = new_app()
    pushed = trio.Event()

    @app.task
    async def producer() -> None:
        await target.push()  # a worker of app, not of other: other's backpressure applies
        pushed.set()

    async with other, app:
        await blocker.push()
        job = await producer.push()
        await trio.sleep(1)
        runtime = other._runtime
        assert runtime is not None
        assert runtime.executor.overflowing == 0
        assert not pushed.is_set()  # it waits for other's only worker
        release.set()
        with trio.fail_after(60):
            await job.wait()
            await other.wait_all()
        assert pushed.is_set()


async def test_a_worker_waiting_for_capacity_is_an_error() -> None:
    """The guard that keeps this class of bug from coming back: only producers outside the
    pool may wait for a free worker."""
    executor = _executor.Executor(
        outcomes=None,  # type: ignore[arg-type]
        attempt_failed_send=None,  # type: ignore[arg-type]
        max_concurrency=1,
    )
    assert not _executor.in_worker(executor)
    token = _executor._WORKER_OF.set(executor)
    try:
        assert _executor.in_worker(executor)
        with pytest.raises(AssertionError, match="never wait for executor capacity"):
            await executor.wait_to_send(RunJob(job=None, generation=1))  # type: ignore[arg-type]
    finally:
        _executor._WORKER_OF.reset(token)


# -- property: random trees of pushes ------------------------------------------------------


async def _run_tree(fan_out: int, depth: int, max_concurrency: int, naps: list[int]) -> int:
    app = new_app(max_concurrency=max_concurrency)
    ran = 0

    @app.task
    async def node(level: int, index: int) -> None:
        nonlocal ran
        ran += 1
        await trio.sleep(naps[index % len(naps)])
        if level < depth:
            for i in range(fan_out):
                await node.push(level + 1, index * fan_out + i)
        await trio.sleep(naps[(index + 1) % len(naps)])

    with trio.fail_after(10**6):  # virtual: only a deadlock gets there
        async with app:
            roots: list[Job[None]] = [await node.push(0, i) for i in range(2)]
            await app.wait_all()
            assert all(job.is_done() for job in roots)
    return ran


@settings(max_examples=60, deadline=None)
@given(
    fan_out=st.integers(0, 3),
    depth=st.integers(0, 4),
    max_concurrency=st.integers(1, 5),
    naps=st.lists(st.integers(0, 3), min_size=1, max_size=5),
)
def test_every_job_of_a_random_push_tree_runs(
    fan_out: int, depth: int, max_concurrency: int, naps: list[int]
) -> None:
    clock = trio.testing.MockClock(autojump_threshold=0)
    ran = trio.run(_run_tree, fan_out, depth, max_concurrency, naps, clock=clock)
    assert ran == 2 * _tree_size(fan_out, depth)
