"""Contract §6: bounded concurrency and backpressure instead of an unbounded pile of tasks."""

from __future__ import annotations

import trio
import trio.testing
from _helpers import new_app


def _count_tasks(task: trio.lowlevel.Task) -> int:
    return sum(1 + _count_tasks(child) for n in task.child_nurseries for child in n.child_tasks)


async def test_pushing_faster_than_jobs_run_blocks_the_pusher(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = new_app(max_concurrency=10)
    running = 0
    peak = 0

    @app.task
    async def slow() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await trio.sleep(1)
        running -= 1

    pushed = 0

    async def pusher() -> None:
        nonlocal pushed
        for _ in range(1000):
            await slow.push()
            pushed += 1

    root = trio.lowlevel.current_root_task()
    async with app:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pusher)
            await trio.sleep(0.5)
            # Ten jobs run; the pusher waits for a free slot instead of piling up tasks.
            assert running == 10
            assert pushed <= 11
            tasks_while_blocked = _count_tasks(root)
        assert trio.current_time() == 99.0  # the last ten were accepted when slots freed
        await app.wait_all()
        assert trio.current_time() == 100.0
    assert peak == 10
    assert tasks_while_blocked < 40


async def test_many_pushes_keep_task_count_bounded(autojump_clock: trio.testing.MockClock) -> None:
    app = new_app(max_concurrency=50)
    done = 0

    @app.task
    async def work() -> None:
        nonlocal done
        await trio.sleep(0.01)
        done += 1

    root = trio.lowlevel.current_root_task()
    peak_tasks = 0

    async def watch() -> None:
        nonlocal peak_tasks
        while True:
            peak_tasks = max(peak_tasks, _count_tasks(root))
            await trio.sleep(0.005)

    async with app, trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        for _ in range(20_000):
            await work.push()
        await app.wait_all()
        nursery.cancel_scope.cancel()
    assert done == 20_000
    assert peak_tasks < 50 + 20


async def test_idle_workers_are_retired(autojump_clock: trio.testing.MockClock) -> None:
    app = new_app()

    @app.task
    async def nap() -> None:
        await trio.sleep(1)

    async with app:
        for _ in range(1000):
            await nap.push()
        await app.wait_all()
        runtime = app._runtime
        assert runtime is not None
        assert runtime.executor.running <= 64


async def test_a_burst_of_quick_jobs_does_not_start_a_worker_per_job() -> None:
    app = new_app()
    runs = 0

    @app.task
    async def quick() -> None:
        nonlocal runs
        runs += 1

    async with app:
        async with trio.open_nursery() as nursery:
            for _ in range(500):
                nursery.start_soon(quick.push)
        await app.wait_all()
        runtime = app._runtime
        assert runtime is not None
        assert runtime.executor.running <= 4  # workers that ran the burst back to back
    assert runs == 500


async def test_a_burst_of_blocking_jobs_runs_them_all_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = new_app(max_concurrency=300)
    running = 0
    peak = 0

    @app.task
    async def slow() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await trio.sleep(1)
        running -= 1

    async with app:
        async with trio.open_nursery() as nursery:
            for _ in range(200):
                nursery.start_soon(slow.push)
        await trio.sleep(0.5)
        assert running == 200  # each got a worker: no job waited behind a blocked one
        await app.wait_all()
        assert trio.current_time() == 1.0
    assert peak == 200
