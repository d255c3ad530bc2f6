"""Cancel and completion are durable or say so; one bad row fails only its own call.

Issue 10, items 4 and 5, and the untested error paths of the storage writer (an unwatched
write that fails: the delete at a job's end, the row of a pending retry).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from _helpers import START, new_app
from test_storage_failures import MemoryStorage

from jobify_trio import Cron, Job, Jobify, JobStatus, SmartRetry
from jobify_trio.storage import Delete, SQLiteStorage, StorageError, Upsert, Write
from jobify_trio.testing import VirtualWallClock

LOCKED = StorageError("database is locked")


class ScriptedStorage(MemoryStorage):
    """``apply`` fails with ``fail`` while it is set, and raises ``ValueError`` for any
    batch holding a row whose id is ``poison``; every batch is recorded."""

    def __init__(self, poison: str | None = None) -> None:
        super().__init__()
        self.poison = poison
        self.batches: list[list[Write]] = []

    async def apply(self, writes: Sequence[Write], /) -> None:
        self.batches.append(list(writes))
        for write in writes:
            if isinstance(write, Upsert) and write.job.job_id == self.poison:
                await trio.lowlevel.checkpoint()
                raise ValueError(f"cannot store row {self.poison!r}")
        await super().apply(writes)


def write_id(write: Write) -> str:
    return write.job_id if isinstance(write, Delete) else write.job.job_id


async def wait_a_little(job: Job[Any]) -> None:
    await job.wait()
    await trio.sleep(0.05)


def recording_app(storage: MemoryStorage, **kwargs: Any) -> tuple[Jobify, list[Any]]:
    app = new_app(storage=storage, **kwargs)
    runs: list[Any] = []

    @app.task(name="t")
    async def t(value: Any = None) -> None:
        runs.append(value)

    return app, runs


# -- item 4: cancel ---------------------------------------------------------------------------


async def test_cancel_returns_after_the_row_deletion_is_committed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    storage = ScriptedStorage()
    app, runs = recording_app(storage)
    async with app:
        job = await app.tasks["t"].schedule(1).delay(60)
        assert job.id in storage.rows
        await job.cancel()
        assert job.id not in storage.rows  # committed before cancel() returned
        assert job.status is JobStatus.CANCELLED
    assert runs == []


async def test_cancel_that_cannot_delete_the_row_raises_and_the_job_goes_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    storage = ScriptedStorage()
    app, runs = recording_app(storage)
    async with app:
        job = await app.tasks["t"].schedule(1).delay(60)
        storage.fail = LOCKED
        with pytest.raises(StorageError, match=rf"job {job.id!r} was not saved.*locked"):
            await job.cancel()
        assert job.status is JobStatus.SCHEDULED  # as it was: still armed, still stored
        assert job.id in storage.rows
        assert app.find_job(job.id) is job
        storage.fail = None
        await job.wait()
    assert runs == [1]
    assert storage.rows == {}


async def test_cancel_of_a_running_job_that_cannot_delete_leaves_it_running(
    autojump_clock: trio.testing.MockClock,
) -> None:
    storage = ScriptedStorage()
    app = new_app(storage=storage)
    started, release = trio.Event(), trio.Event()

    @app.task(name="slow")
    async def slow() -> str:
        started.set()
        await release.wait()
        return "done"

    async with app:
        job = await slow.push()
        await started.wait()
        storage.fail = LOCKED
        with pytest.raises(StorageError):
            await job.cancel()
        assert job.status is JobStatus.RUNNING
        storage.fail = None
        release.set()
        await job.wait()
        assert job.result() == "done"


async def test_a_row_rewritten_while_cancel_deletes_it_is_deleted_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A retry armed while the delete commits re-writes the row: cancel deletes it again."""
    storage = ScriptedStorage()
    app = new_app(storage=storage)
    failing = trio.Event()

    @app.task(name="flaky", retry=SmartRetry(3, initial_delay=100, max_delay=100, jitter=False))
    async def flaky() -> None:
        await failing.wait()
        raise RuntimeError("boom")

    async with app:
        job = await flaky.push()
        await trio.sleep(1)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(job.cancel)
            await trio.lowlevel.checkpoint()
            failing.set()  # the attempt fails while the delete is being committed
        assert job.status is JobStatus.CANCELLED
        assert storage.rows == {}
        await trio.sleep(300)
        assert storage.rows == {}


async def test_cancel_while_sqlite_is_locked_raises_and_the_job_survives_a_restart(
    tmp_path: Path,
) -> None:
    """The issue's scenario on a real SQLite file (real time: SQLite runs in a thread)."""
    db = tmp_path / "jobs.db"
    clock = VirtualWallClock(START)
    app = Jobify(storage=SQLiteStorage(db, busy_timeout=0.05), wall_clock=clock)
    runs: list[Any] = []
    app.task(name="t")(runs.append)
    with trio.fail_after(10):
        async with app:
            job = await app.tasks["t"].schedule("later").delay(3600)
            locker = sqlite3.connect(db, isolation_level=None)
            locker.execute("BEGIN EXCLUSIVE")
            try:
                with pytest.raises(StorageError, match="locked"):
                    await job.cancel()
            finally:
                locker.execute("ROLLBACK")
                locker.close()
            assert job.status is JobStatus.SCHEDULED
        later = VirtualWallClock(START + timedelta(hours=2))
        app2 = Jobify(storage=SQLiteStorage(db), wall_clock=later)
        app2.task(name="t")(runs.append)
        async with app2:
            await app2.wait_all()
    assert runs == ["later"]


# -- item 4: completion, and the unwatched writes -------------------------------------------


async def test_a_failed_delete_at_job_end_is_warned_about_and_retried(
    autojump_clock: trio.testing.MockClock,
) -> None:
    storage = ScriptedStorage()
    app, runs = recording_app(storage)
    async with app:
        job = await app.tasks["t"].schedule(1).delay(10)
        storage.fail = LOCKED
        retried = r"1 job storage write\(s\) were not saved \(they are retried\).*locked"
        with pytest.warns(RuntimeWarning, match=retried):
            await wait_a_little(job)
        assert job.id in storage.rows  # not deleted yet...
        await trio.sleep(5)
        assert job.id in storage.rows  # ... still failing: retried, not warned about again
        storage.fail = None
        await trio.sleep(60)
        assert storage.rows == {}  # ... deleted once storage works again
    assert runs == [1]


async def test_the_row_of_a_pending_retry_is_retried_when_its_write_fails(
    autojump_clock: trio.testing.MockClock,
) -> None:
    storage = ScriptedStorage()
    app = new_app(storage=storage)

    @app.task(name="flaky", retry=SmartRetry(1, initial_delay=1000, max_delay=1000, jitter=False))
    async def flaky() -> None:
        raise RuntimeError("boom")

    async with app:
        job = await flaky.push()
        storage.fail = LOCKED
        with pytest.warns(RuntimeWarning, match=r"not saved \(they are retried\)"):
            await trio.sleep(1)
        storage.fail = None
        await trio.sleep(100)
        row = storage.rows[job.id]
        assert (row.attempt, row.state.value) == (2, "retrying")
        await job.cancel()


async def test_writes_still_failing_at_shutdown_are_given_up_with_a_warning(
    autojump_clock: trio.testing.MockClock,
) -> None:
    storage = ScriptedStorage()
    app, _ = recording_app(storage)

    async def run() -> Job[Any]:
        async with app:
            job = await app.tasks["t"].push(1)
            storage.fail = LOCKED
            await wait_a_little(job)
            return job

    with pytest.warns(RuntimeWarning) as caught:
        job = await run()
    messages = [str(w.message) for w in caught]
    assert any("they are retried" in m for m in messages)
    assert any("given up at shutdown" in m and "may run again" in m for m in messages)
    assert job.id in storage.rows


async def test_a_retried_write_keeps_its_place_before_later_writes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The failed delete of a finished job, retried, must not delete a new job's row that
    took the same id meanwhile."""
    storage = ScriptedStorage()
    app, _ = recording_app(storage)
    async with app:
        first = await app.tasks["t"].schedule(1).push(job_id="same")
        storage.fail = LOCKED
        with pytest.warns(RuntimeWarning, match="they are retried"):
            await wait_a_little(first)
        storage.fail = None
        second = await app.tasks["t"].schedule(2).delay(600, job_id="same")
        assert storage.rows["same"].next_run_at == second.exec_at
        await trio.sleep(60)
        assert storage.rows["same"].next_run_at == second.exec_at
        kinds = [type(w) for batch in storage.batches for w in batch if write_id(w) == "same"]
        assert kinds[-2:] == [Delete, Upsert]
        await second.cancel()


# -- item 5: one bad row fails only its own call ------------------------------------------------


async def test_a_row_sqlite_cannot_store_fails_only_its_own_call(tmp_path: Path) -> None:
    east = timezone(timedelta(hours=5))  # naive year 1 here is before year 1 in UTC
    app = Jobify(
        storage=SQLiteStorage(tmp_path / "jobs.db"), wall_clock=VirtualWallClock(START), tz=east
    )
    runs: list[Any] = []
    task = app.task(name="t")(runs.append)
    errors: dict[str, BaseException] = {}

    async def call(name: str, kind: str) -> None:
        try:
            if kind == "year1":
                await task.schedule(name).at(datetime(1, 1, 1))
            elif kind == "surrogate":
                await task.schedule(name).push(job_id="\ud800")
            else:
                await task.schedule(name).push()
        except Exception as exc:
            errors[name] = exc

    with trio.fail_after(10):
        async with app:
            async with trio.open_nursery() as nursery:
                for i in range(5):
                    nursery.start_soon(call, f"good-{i}", "good")
                nursery.start_soon(call, "year1", "year1")
                nursery.start_soon(call, "surrogate", "surrogate")
            await app.wait_all()
    assert sorted(runs) == [f"good-{i}" for i in range(5)]
    assert set(errors) == {"year1", "surrogate"}
    assert isinstance(errors["year1"], ValueError)
    assert str(errors["year1"]) == (
        "task 't': run time 0001-01-01T00:00:00+05:00 cannot be stored: it is out of the "
        "range of dates in UTC"
    )
    assert isinstance(errors["surrogate"], ValueError)
    assert "task 't': job_id '\\ud800' cannot be stored" in str(errors["surrogate"])


async def test_a_cron_row_that_cannot_be_stored_fails_its_call_naming_the_value(
    tmp_path: Path,
) -> None:
    east = timezone(timedelta(hours=5))
    app = Jobify(
        storage=SQLiteStorage(tmp_path / "jobs.db"), wall_clock=VirtualWallClock(START), tz=east
    )
    task = app.task(name="t")(print)
    with trio.fail_after(10):
        async with app:
            with pytest.raises(ValueError, match="task 't': job_id '\\\\udc00' cannot be"):
                await task.schedule().cron("* * * * *", job_id="\udc00")
            with pytest.raises(ValueError, match=r"run time 0001-01-01T00:00:00\+05:00 cannot"):
                await task.schedule().cron(Cron("* * * * *", start_date=datetime(1, 1, 1)),
                                           job_id="c")  # fmt: skip
            assert app.get_active_jobs() == []


async def test_a_row_the_backend_refuses_fails_only_its_own_call_in_a_shared_batch(
    autojump_clock: trio.testing.MockClock,
) -> None:
    storage = ScriptedStorage(poison="poison")
    app, runs = recording_app(storage)
    task = app.tasks["t"]
    errors: dict[str, BaseException] = {}

    async def call(job_id: str) -> None:
        try:
            await task.schedule(job_id).push(job_id=job_id)
        except StorageError as exc:
            errors[job_id] = exc

    async with app:
        async with trio.open_nursery() as nursery:
            for job_id in ("a", "b", "poison", "c", "d", "e"):
                nursery.start_soon(call, job_id)
        await app.wait_all()
    shared = [b for b in storage.batches if len(b) > 1 and "poison" in map(write_id, b)]
    assert shared, "the poisoned row must share a batch with others for this test"
    assert set(errors) == {"poison"}
    assert "cannot store row 'poison'" in str(errors["poison"])
    assert sorted(runs) == ["a", "b", "c", "d", "e"]
    assert app.find_job("poison") is None
    assert "poison" not in storage.rows


async def test_a_failed_write_without_a_job_names_no_job() -> None:
    """The heartbeat's barrier (``Release(job_id="")``) is no job: its error says so."""
    from jobify_trio._storage._writer import StorageWriter
    from jobify_trio.storage import Release

    class Failing(MemoryStorage):
        async def apply(self, writes: Sequence[Write], /) -> None:
            await trio.lowlevel.checkpoint()
            raise LOCKED

    writer = StorageWriter(Failing())
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        with pytest.raises(StorageError, match=r"^the storage write failed: ") as caught:
            await writer.write(Release(job_id="", owner="A"))
        assert "job ''" not in str(caught.value)
        with pytest.raises(StorageError, match=r"^job 'x' was not saved: "):
            await writer.write(Delete(job_id="x"))
        nursery.cancel_scope.cancel()
