"""Contract §2.2: starting, stopping, re-entering; exceptions are never wrapped."""

from __future__ import annotations

import pytest
import trio
from _helpers import new_app

from jobify_trio import JobStatus
from jobify_trio.exceptions import ApplicationStateError


async def test_body_exception_propagates_unwrapped(autojump_clock: trio.testing.MockClock) -> None:
    app = new_app()

    @app.task
    async def nap() -> None:
        await trio.sleep(10)

    with pytest.raises(KeyError) as info:
        async with app:
            await nap.push()
            raise KeyError("from the body")
    assert type(info.value) is KeyError
    assert not app.is_running


async def test_job_exception_never_reaches_the_app(autojump_clock: trio.testing.MockClock) -> None:
    app = new_app()

    @app.task
    async def boom() -> None:
        raise RuntimeError("inside the job")

    async with app:
        job = await boom.push()
        await trio.sleep(1)
        assert job.status is JobStatus.FAILED


async def test_shutdown_cancels_and_awaits_running_jobs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = new_app()
    cleanup: list[float] = []

    @app.task
    async def long() -> None:
        try:
            await trio.sleep(1000)
        finally:
            with trio.CancelScope(shield=True):
                await trio.sleep(2)  # slow cleanup must finish before the block exits
            cleanup.append(trio.current_time())

    async with app:
        job = await long.push()
        pending = await long.schedule().delay(500)
        await trio.sleep(1)
    assert cleanup == [3.0]
    assert job.status is JobStatus.CANCELLED
    assert pending.status is JobStatus.CANCELLED
    assert trio.current_time() == 3.0


async def test_no_task_outlives_the_block(autojump_clock: trio.testing.MockClock) -> None:
    app = new_app()

    @app.task
    async def nap() -> None:
        await trio.sleep(100)

    before = len(trio.lowlevel.current_root_task().child_nurseries)
    me = trio.lowlevel.current_task()
    tasks_before = _count_tasks(me)
    async with app:
        for _ in range(20):
            await nap.push()
        await nap.schedule().delay(50)
        assert _count_tasks(me) > tasks_before
    assert _count_tasks(me) == tasks_before
    assert len(trio.lowlevel.current_root_task().child_nurseries) == before


def _count_tasks(task: trio.lowlevel.Task) -> int:
    return sum(1 + _count_tasks(child) for n in task.child_nurseries for child in n.child_tasks)


async def test_app_can_be_entered_again(autojump_clock: trio.testing.MockClock) -> None:
    app = new_app()
    seen: list[int] = []

    @app.task
    async def note(n: int) -> None:
        seen.append(n)

    async with app:
        await (await note.push(1)).wait()
    async with app:
        await (await note.push(2)).wait()
    assert seen == [1, 2]


def test_app_can_be_entered_in_a_new_trio_run() -> None:
    app = new_app()
    seen: list[int] = []

    @app.task
    async def note(n: int) -> None:
        seen.append(n)

    async def main(n: int) -> None:
        async with app:
            await (await note.push(n)).wait()

    trio.run(main, 1, clock=trio.testing.MockClock(autojump_threshold=0))
    trio.run(main, 2, clock=trio.testing.MockClock(autojump_threshold=0))
    assert seen == [1, 2]


async def test_entering_twice_at_once_is_refused(autojump_clock: trio.testing.MockClock) -> None:
    app = new_app()
    async with app:
        with pytest.raises(ApplicationStateError, match="already running"):
            async with app:
                pass  # pragma: no cover
        assert app.is_running


async def test_outer_cancellation_passes_through(autojump_clock: trio.testing.MockClock) -> None:
    app = new_app()
    with trio.move_on_after(5) as scope:
        async with app:
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert trio.current_time() == 5.0
    assert not app.is_running


async def test_body_exception_keeps_its_cause(autojump_clock: trio.testing.MockClock) -> None:
    app = new_app()

    @app.task
    async def nap() -> None:
        await trio.sleep(10)

    with pytest.raises(ValueError, match="outer") as info:
        async with app:
            await nap.push()
            try:
                raise KeyError("inner")
            except KeyError as inner:
                raise ValueError("outer") from inner
    assert isinstance(info.value.__cause__, KeyError)
