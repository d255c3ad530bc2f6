"""A cancelled ``push()`` leaves nothing behind (issue 10, item 3).

A ``push()`` that raises (cancelled while it waits for a free worker, or while its row is
committed; or the app stopped meanwhile) never scheduled its job: it is not found, not
stored, never runs, and ``wait_all()`` returns. A ``push()`` that returned scheduled it.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import trio
import trio.testing
from _helpers import new_app

from jobify_trio import Jobify, JobStatus
from jobify_trio.exceptions import ApplicationStateError
from jobify_trio.storage import Delete, LoadResult, Storage, StoredJob, Write


class GatedStorage(Storage):
    """Rows in a dict; ``apply`` waits for ``gate`` when it is set."""

    def __init__(self) -> None:
        self.rows: dict[str, StoredJob] = {}
        self.gate: trio.Event | None = None
        self.applying = trio.Event()

    async def startup(self) -> None:
        await trio.lowlevel.checkpoint()

    async def shutdown(self) -> None:
        await trio.lowlevel.checkpoint()

    async def load(self) -> LoadResult:
        await trio.lowlevel.checkpoint()
        return LoadResult(jobs=list(self.rows.values()))

    async def apply(self, writes: Sequence[Write], /) -> None:
        self.applying.set()
        if self.gate is not None:
            await self.gate.wait()
        await trio.lowlevel.checkpoint()
        for write in writes:
            if isinstance(write, Delete):
                self.rows.pop(write.job_id, None)
            else:
                self.rows[write.job.job_id] = write.job


def _app(storage: Storage | None = None) -> tuple[Jobify, list[str], trio.Event]:
    kwargs = {} if storage is None else {"storage": storage}
    app = new_app(max_concurrency=1, **kwargs)
    ran: list[str] = []
    release = trio.Event()

    @app.task(name="blocker", durable=False)
    async def blocker() -> None:
        await release.wait()

    @app.task(name="work")
    async def work(name: str) -> None:
        ran.append(name)

    return app, ran, release


@pytest.mark.parametrize("durable", [False, True])
async def test_push_cancelled_while_waiting_for_a_worker_never_existed(
    autojump_clock: trio.testing.MockClock, durable: bool
) -> None:
    storage = GatedStorage() if durable else None
    app, ran, release = _app(storage)
    blocker, work = app._tasks["blocker"], app._tasks["work"]
    async with app:
        await blocker.push()  # takes the only worker
        with trio.move_on_after(1) as scope:
            await work.schedule("cancelled").push(job_id="w")
        assert scope.cancelled_caught
        assert app.find_job("w") is None
        assert [job.task_name for job in app.get_active_jobs()] == ["blocker"]
        release.set()
        with trio.fail_after(10):
            await app.wait_all()  # nothing stuck in SCHEDULED
        again = await work.schedule("again").push(job_id="w")  # the id is free
        await again.wait()
        assert again.status is JobStatus.SUCCESS
    assert ran == ["again"]
    if storage is not None:
        assert storage.rows == {}


async def test_durable_push_cancelled_while_its_row_commits_never_existed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    storage = GatedStorage()
    app, ran, _ = _app(storage)
    work = app._tasks["work"]
    async with app:
        storage.gate = gate = trio.Event()
        storage.applying = trio.Event()
        with trio.move_on_after(1):
            await work.schedule("cancelled").push(job_id="w")
        assert storage.applying.is_set()  # the commit was under way
        assert app.find_job("w") is None
        storage.gate = None
        gate.set()
        with trio.fail_after(10):
            await app.wait_all()
        await trio.sleep(1)  # the delete is committed with the next batch
        assert "w" not in storage.rows
    assert ran == []
    assert storage.rows == {}
    async with app:  # a restart does not run it either
        await trio.sleep(1)
        await app.wait_all()
    assert ran == []


async def test_push_cancelled_after_a_replace_took_the_job_over_still_runs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app, ran, release = _app()
    blocker, work = app._tasks["blocker"], app._tasks["work"]
    async with app:
        await blocker.push()
        async with trio.open_nursery() as nursery:
            cancel = trio.CancelScope()

            async def first() -> None:
                with cancel:
                    await work.schedule("first").push(job_id="w")

            nursery.start_soon(first)
            await trio.sleep(1)  # first waits for the worker
            job = app.find_job("w")
            assert job is not None
            replaced = await work.schedule("second").push(job_id="w", replace=True, force=True)
            assert replaced is job
            cancel.cancel()
        assert app.find_job("w") is job  # the replace owns it now: it stays scheduled
        release.set()
        with trio.fail_after(10):
            await job.wait()
            await app.wait_all()
    assert job.status is JobStatus.SUCCESS
    assert ran == ["second"]


async def test_push_waiting_for_a_worker_when_the_app_stops_fails_cleanly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app, ran, _ = _app()
    blocker, work = app._tasks["blocker"], app._tasks["work"]
    errors: list[BaseException] = []

    async def producer() -> None:
        try:
            await work.schedule("late").push()
        except ApplicationStateError as exc:
            errors.append(exc)

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery, app:
            await blocker.push()
            nursery.start_soon(producer)
            await trio.sleep(1)  # the producer waits for the only worker
            # leaving the app: the waiting producer is told instead of waiting forever
    assert len(errors) == 1
    assert "stopped" in str(errors[0])
    assert ran == []
