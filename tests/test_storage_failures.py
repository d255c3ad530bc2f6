"""A failing backend: scheduling calls raise StorageError, nothing half-scheduled stays behind."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest
import trio
from _helpers import new_app

from jobify_trio import Jobify
from jobify_trio.exceptions import BaseJobifyError, DuplicateJobError
from jobify_trio.storage import (
    Delete,
    LoadResult,
    SharingNotSupportedError,
    Storage,
    StorageError,
    StoredJob,
    Write,
)


class MemoryStorage(Storage):
    """Rows in a dict; ``apply`` raises ``fail`` (if set) instead of writing."""

    def __init__(self) -> None:
        self.rows: dict[str, StoredJob] = {}
        self.fail: Exception | None = None

    async def startup(self) -> None:
        await trio.lowlevel.checkpoint()

    async def shutdown(self) -> None:
        await trio.lowlevel.checkpoint()

    async def load(self) -> LoadResult:
        await trio.lowlevel.checkpoint()
        return LoadResult(jobs=list(self.rows.values()))

    async def apply(self, writes: Sequence[Write], /) -> None:
        await trio.lowlevel.checkpoint()
        if self.fail is not None:
            raise self.fail
        for write in writes:
            if isinstance(write, Delete):
                self.rows.pop(write.job_id, None)
            else:
                self.rows[write.job.job_id] = write.job


def app_on(storage: MemoryStorage) -> tuple[Jobify, list[int]]:
    app = new_app(storage=storage)
    runs: list[int] = []

    @app.task(name="t")
    async def t(i: int = 0) -> None:
        runs.append(i)

    return app, runs


# -- 1. any exception from apply() fails the waiting calls, not the app ------------------


@pytest.mark.parametrize("error", [RuntimeError("disk on fire"), StorageError("disk full")])
async def test_a_failing_apply_fails_every_waiting_call_and_schedules_nothing(
    autojump_clock: trio.testing.MockClock, error: Exception
) -> None:
    storage = MemoryStorage()
    app, runs = app_on(storage)
    task = app._tasks["t"]
    raised: list[BaseException] = []

    async def call(i: int) -> None:
        try:
            if i % 2:
                await task.push(i)
            else:
                await task.schedule(i).delay(60)
        except StorageError as exc:
            raised.append(exc)

    async with app:
        storage.fail = error
        async with trio.open_nursery() as nursery:
            for i in range(6):
                nursery.start_soon(call, i)
        assert len(raised) == 6
        assert len({id(exc) for exc in raised}) == 6  # a fresh error per waiting call
        for exc in raised:
            assert isinstance(exc.__cause__, StorageError)
            assert exc.__cause__ is error or exc.__cause__.__cause__ is error
        assert app.get_active_jobs() == []
        await trio.sleep(120)
        assert runs == []
        storage.fail = None  # the writer is still alive: the next call is stored and runs
        job = await task.push(7)
        await job.wait()
    assert runs == [7]
    assert storage.rows == {}


# -- 2. a durable cron() commits before it arms ---------------------------------------------


async def test_a_failed_cron_commit_leaves_no_cron_and_can_be_retried(
    autojump_clock: trio.testing.MockClock,
) -> None:
    storage = MemoryStorage()
    app, runs = app_on(storage)
    task = app._tasks["t"]
    async with app:
        storage.fail = RuntimeError("disk on fire")
        with pytest.raises(StorageError):
            await task.schedule(1).cron("* * * * *", job_id="c")
        assert app.get_active_jobs() == []
        await trio.sleep(600)
        assert runs == []
        storage.fail = None
        job = await task.schedule(2).cron("* * * * *", job_id="c")  # no DuplicateJobError
        assert storage.rows["c"].next_run_at == job.exec_at
        await trio.sleep(150)
        assert runs == [2, 2]
        await job.cancel()


async def test_a_failed_cron_replace_keeps_the_previous_cron(
    autojump_clock: trio.testing.MockClock,
) -> None:
    storage = MemoryStorage()
    app, runs = app_on(storage)
    task = app._tasks["t"]
    async with app:
        job = await task.schedule(1).cron("*/10 * * * *", job_id="c")
        row = storage.rows["c"]
        storage.fail = RuntimeError("disk on fire")
        with pytest.raises(StorageError):
            await task.schedule(2).cron("* * * * *", job_id="c", replace=True)
        assert job.cron_expression == "*/10 * * * *"
        assert (job._args, storage.rows["c"]) == ((1,), row)
        storage.fail = None
        await trio.sleep(25 * 60)
        assert runs == [1, 1]  # still every ten minutes, with its arguments
        with pytest.raises(DuplicateJobError):
            await task.schedule(3).cron("* * * * *", job_id="c")
        await job.cancel()


async def test_a_failed_cron_replacing_a_one_off_job_keeps_the_one_off_job(
    autojump_clock: trio.testing.MockClock,
) -> None:
    storage = MemoryStorage()
    app, runs = app_on(storage)
    task = app._tasks["t"]
    async with app:
        one_off = await task.schedule(1).delay(300, job_id="c")
        storage.fail = RuntimeError("disk on fire")
        with pytest.raises(StorageError):
            await task.schedule(2).cron("* * * * *", job_id="c", replace=True)
        assert [job.id for job in app.get_active_jobs()] == ["c"]
        storage.fail = None
        await one_off.wait()
        assert runs == [1]
    assert storage.rows == {}  # the one-off's row went when it ended


async def test_a_cron_replacing_a_one_off_job_keeps_its_row(
    autojump_clock: trio.testing.MockClock,
) -> None:
    storage = MemoryStorage()
    app, _ = app_on(storage)
    task = app._tasks["t"]
    async with app:
        one_off = await task.schedule(1).delay(300, job_id="c")
        job = await task.schedule(2).cron("* * * * *", job_id="c", replace=True)
        await trio.sleep(0.5)  # the one-off's end is written after the cron's row
        assert one_off.is_done()
        assert job is not one_off
        assert storage.rows["c"].cron is not None
        await job.cancel()


# -- 5. leases are optional for a backend -----------------------------------------------------


async def test_a_backend_without_leases_says_so_naming_itself() -> None:
    storage = MemoryStorage()
    with pytest.raises(SharingNotSupportedError, match=r"MemoryStorage .*sharing") as caught:
        await storage.claim_due(
            owner="a", now=new_app().wall_clock.now(), lease=timedelta(seconds=1), limit=1
        )
    assert isinstance(caught.value, StorageError)
    assert isinstance(caught.value, BaseJobifyError)
    assert not storage.can_share
    with pytest.raises(SharingNotSupportedError, match=r"MemoryStorage .*heartbeat\(\)"):
        now = new_app().wall_clock.now()
        await storage.heartbeat(instance_id="a", now=now, lease_until=now)
