"""QueueMiddleware: bounded concurrency, priorities, FIFO, cancel, shutdown."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import trio
import trio.testing
from _helpers import new_app
from hypothesis import given, settings
from hypothesis import strategies as st

from jobify_trio import INJECT, Job, Jobify, JobStatus
from jobify_trio.middleware import QueueMiddleware


def _app_with_queue(queue: QueueMiddleware) -> Jobify:
    return new_app(middleware=[queue])


async def test_never_more_than_workers_at_once(autojump_clock: trio.testing.MockClock) -> None:
    queue = QueueMiddleware(workers=2)
    app = _app_with_queue(queue)
    running = peak = 0

    @app.task
    async def work(seconds: float) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await trio.sleep(seconds)
        running -= 1

    async with app:
        t0 = trio.current_time()
        jobs = [await work.push(1.0) for _ in range(10)]
        await app.wait_all()
        assert trio.current_time() - t0 == pytest.approx(5.0)
    assert peak == 2
    assert all(j.status is JobStatus.SUCCESS for j in jobs)
    assert queue.running == 0
    assert queue.queued == 0


def _priority_tasks(app: Jobify, order: list[str], gate: trio.Event) -> dict[int, Any]:
    @app.task(name="blocker")
    async def blocker() -> None:
        await gate.wait()

    tasks: dict[int, Any] = {"blocker": blocker}  # type: ignore[dict-item]
    for prio in (-1, 0, 5, 10):

        async def run(tag: str, job: Job[None] = INJECT) -> None:
            order.append(tag)

        tasks[prio] = app.task(run, name=f"p{prio}", metadata={"priority": prio})
    return tasks


async def test_priorities_then_fifo(autojump_clock: trio.testing.MockClock) -> None:
    queue = QueueMiddleware(workers=1)
    app = _app_with_queue(queue)
    order: list[str] = []
    gate = trio.Event()
    tasks = _priority_tasks(app, order, gate)
    plan = [(0, "a"), (5, "b"), (-1, "c"), (10, "d"), (5, "e"), (0, "f"), (10, "g"), (5, "h")]
    async with app:
        await tasks["blocker"].push()  # holds the only slot
        await trio.testing.wait_all_tasks_blocked()
        for prio, tag in plan:
            await tasks[prio].push(tag)
        await trio.testing.wait_all_tasks_blocked()
        assert queue.queued == len(plan)
        gate.set()
        await app.wait_all()
    assert order == ["d", "g", "b", "e", "h", "a", "f", "c"]


async def test_equal_priorities_run_in_fifo_order(autojump_clock: trio.testing.MockClock) -> None:
    queue = QueueMiddleware(workers=1, maxsize=1024)
    app = _app_with_queue(queue)
    order: list[int] = []

    @app.task
    async def record(i: int) -> None:
        order.append(i)
        await trio.sleep(0.1)

    async with app:
        for i in range(200):
            await record.push(i)
        await app.wait_all()
    assert order == list(range(200))


async def test_a_cancelled_queued_job_never_starts(autojump_clock: trio.testing.MockClock) -> None:
    queue = QueueMiddleware(workers=1)
    app = _app_with_queue(queue)
    started: list[int] = []

    @app.task
    async def work(i: int) -> None:
        started.append(i)
        await trio.sleep(1)

    async with app:
        jobs = [await work.push(i) for i in range(4)]
        await trio.testing.wait_all_tasks_blocked()
        assert queue.queued == 3
        await jobs[1].cancel()
        await jobs[2].cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert queue.queued == 1
        await app.wait_all()
    assert started == [0, 3]
    assert [j.status for j in jobs] == [
        JobStatus.SUCCESS,
        JobStatus.CANCELLED,
        JobStatus.CANCELLED,
        JobStatus.SUCCESS,
    ]
    assert queue.running == 0


async def test_shutdown_does_not_run_the_backlog(autojump_clock: trio.testing.MockClock) -> None:
    queue = QueueMiddleware(workers=1)
    app = _app_with_queue(queue)
    started: list[int] = []

    @app.task
    async def work(i: int) -> None:
        started.append(i)
        await trio.sleep(10)

    async with app:
        jobs = [await work.push(i) for i in range(5)]
        await trio.sleep(1)
    assert started == [0]
    assert all(j.status is JobStatus.CANCELLED for j in jobs)
    assert queue.running == 0
    assert queue.queued == 0


async def test_maxsize_bounds_the_queue(autojump_clock: trio.testing.MockClock) -> None:
    queue = QueueMiddleware(workers=1, maxsize=2)
    app = _app_with_queue(queue)
    order: list[int] = []

    @app.task
    async def work(i: int) -> None:
        order.append(i)
        await trio.sleep(1)

    async with app:
        for i in range(6):
            await work.push(i)
        await trio.testing.wait_all_tasks_blocked()
        assert queue.running == 1
        assert queue.queued == 2
        await app.wait_all()
    assert sorted(order) == list(range(6))
    assert order[0] == 0


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="workers"):
        QueueMiddleware(workers=0)
    with pytest.raises(ValueError, match="maxsize"):
        QueueMiddleware(maxsize=True)


async def test_non_int_priority_is_refused_at_start(autojump_clock: trio.testing.MockClock) -> None:
    app = _app_with_queue(QueueMiddleware(workers=1))

    @app.task(metadata={"priority": "high"})
    async def odd() -> None: ...

    with pytest.raises(TypeError, match=r"metadata\['priority'\] must be an int"):
        async with app:
            pass  # pragma: no cover


class _LateWakeLot:
    """A parking lot whose woken tasks resume a scheduling batch late (trio may run the
    other woken tasks first: it shuffles each batch)."""

    def __init__(self) -> None:
        self._lot = trio.lowlevel.ParkingLot()

    async def park(self) -> None:
        await self._lot.park()
        await trio.lowlevel.checkpoint()

    def unpark(self) -> None:
        self._lot.unpark()


def _fake_context(priority: int = 0) -> Any:
    options = SimpleNamespace(metadata={"priority": priority})
    return SimpleNamespace(task=SimpleNamespace(options=options))


async def test_parked_job_takes_a_slot_freed_while_it_was_parked(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # J1 runs, J2 is queued, J3 waits to enter the queue. J1's release hands its slot to J2
    # and wakes J3; J2 finishes before J3 resumes, so the slot is free and the queue empty.
    queue = QueueMiddleware(workers=1, maxsize=1)
    queue._space = _LateWakeLot()  # type: ignore[assignment]
    gate = trio.Event()
    finished: list[str] = []

    async def job(name: str, wait: bool) -> None:
        async def call_next(context: Any) -> None:
            if wait:
                await gate.wait()
            finished.append(name)  # no checkpoint: J2 ends in the batch it wakes in

        await queue(call_next, _fake_context())

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for name in ("J1", "J2", "J3"):
                nursery.start_soon(job, name, name == "J1")
                await trio.testing.wait_all_tasks_blocked()
            assert (queue.running, queue.queued) == (1, 1)
            gate.set()
    assert finished == ["J1", "J2", "J3"]
    assert (queue.running, queue.queued) == (0, 0)


@settings(max_examples=150, deadline=None)
@given(
    workers=st.integers(1, 3),
    maxsize=st.integers(1, 3),
    jobs=st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(-1, 1)),
        min_size=1,
        max_size=10,
    ),
)
def test_every_job_through_the_queue_finishes(
    workers: int, maxsize: int, jobs: list[tuple[int, int, int]]
) -> None:
    """(arrival, duration, priority) per job; a duration of 0 ends without a checkpoint."""
    queue = QueueMiddleware(workers=workers, maxsize=maxsize)
    finished = 0
    peak = 0

    async def job(arrival: int, duration: int, priority: int) -> None:
        async def call_next(context: Any) -> None:
            nonlocal finished, peak
            peak = max(peak, queue.running)
            if duration:
                await trio.sleep(duration)
            finished += 1

        await trio.sleep(arrival)
        await queue(call_next, _fake_context(priority))

    async def main() -> None:
        with trio.fail_after(1000):
            async with trio.open_nursery() as nursery:
                for spec in jobs:
                    nursery.start_soon(job, *spec)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert finished == len(jobs)
    assert peak <= workers
    assert (queue.running, queue.queued) == (0, 0)
