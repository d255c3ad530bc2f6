"""Contract §12 restore rules: two successive app instances on one real SQLite file.

SQLite calls run in a thread, which trio's autojump clock does not see: while a commit is
in flight virtual time may jump to the next deadline. These tests only assert *when*
(in virtual wall time) jobs ran and what is stored, never that nothing happened during a
window that contains a commit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import trio
from _helpers import START

from jobify_trio import Jobify, JobStatus, SmartRetry
from jobify_trio.storage import RestoreWarning, SQLiteStorage
from jobify_trio.testing import VirtualWallClock

Runs = list[tuple[Any, ...]]


def stored(db: Path) -> dict[str, tuple[Any, ...]]:
    """job_id -> (task, trigger, next_run_at, attempt, state) read with a fresh connection."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT job_id, task, trigger, next_run_at, attempt, state FROM jobify_jobs"
        ).fetchall()
    conn.close()
    return {row[0]: row[1:] for row in rows}


class World:
    """One database file and one virtual wall clock shared by successive app instances."""

    def __init__(self, tmp_path: Path, *, shared: bool = False) -> None:
        self.db = tmp_path / "jobs.db"
        self.shared = shared
        self.clock = VirtualWallClock(START)
        self.runs: Runs = []

    def app(self, **kwargs: Any) -> Jobify:
        storage = SQLiteStorage(self.db, shared=self.shared)
        return Jobify(storage=storage, wall_clock=self.clock, **kwargs)

    def recorder(self, app: Jobify, name: str = "rec", **options: Any) -> Callable[..., Any]:
        clock, runs = self.clock, self.runs

        async def rec(value: Any = None) -> Any:
            runs.append((clock.now(), value))
            return value

        return app.task(name=name, **options)(rec)

    def blocker(self, app: Jobify, name: str = "rec") -> Callable[..., Any]:
        async def block(value: Any = None) -> None:
            await trio.sleep_forever()

        return app.task(name=name)(block)


@pytest.fixture
def vclock(autojump_clock: trio.testing.MockClock) -> trio.testing.MockClock:
    """Virtual time that jumps only after 20 ms of real idleness, never during a commit.

    SQLite work happens in a thread that trio's autojump does not see: with a threshold
    of 0, time would jump (and crons fire) while a commit is in flight.
    """
    autojump_clock.autojump_threshold = 0.02
    return autojump_clock


@pytest.fixture(params=[False, True], ids=["unshared", "shared"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> World:
    """Each test on a plain file and on one opened with ``shared=True`` (the sharing
    protocol engaged, one instance alone: it must behave the same)."""
    return World(tmp_path, shared=request.param)


async def test_push_row_of_a_job_running_at_shutdown_runs_at_once_after_restart(
    world: World, vclock: trio.testing.MockClock
) -> None:
    app1 = world.app()
    world.blocker(app1)
    async with app1:
        job = await app1.tasks["rec"].push("p")
        await trio.sleep(1)
        assert job.status is JobStatus.RUNNING
    assert stored(world.db)[job.id][1] == "push"
    app2 = world.app()
    world.recorder(app2)
    async with app2:
        await app2.wait_all()
    assert world.runs == [(START + timedelta(seconds=1), "p")]
    assert stored(world.db) == {}


async def test_at_row_runs_at_its_time_with_its_id_and_arguments(
    world: World, vclock: trio.testing.MockClock
) -> None:
    value = {"when": START, "amount": Decimal("1.50"), "key": (1, 2), 3: frozenset({"x"})}
    app1 = world.app()
    world.recorder(app1)
    async with app1:
        job = await app1.tasks["rec"].schedule(value).at(START + timedelta(hours=1))
    assert stored(world.db)[job.id][:2] == ("rec", "at")
    app2 = world.app()
    world.recorder(app2)
    async with app2:
        restored = app2.find_job(job.id)
        assert restored is not None
        assert restored.exec_at == START + timedelta(hours=1)
        await app2.wait_all()
    assert world.runs == [(START + timedelta(hours=1), value)]
    assert stored(world.db) == {}


async def test_overdue_at_row_runs_at_once(world: World, vclock: trio.testing.MockClock) -> None:
    app1 = world.app()
    world.recorder(app1)
    async with app1:
        job = await app1.tasks["rec"].schedule("late").delay(60)
    world.clock = VirtualWallClock(START + timedelta(hours=5))
    app2 = world.app()
    world.recorder(app2)
    async with app2:
        await app2.wait_all()
    assert world.runs == [(START + timedelta(hours=5), "late")]
    assert job.id not in stored(world.db)


async def test_rows_stay_at_shutdown_and_go_when_jobs_end_or_are_cancelled(
    world: World, vclock: trio.testing.MockClock
) -> None:
    app = world.app()
    world.recorder(app)
    async with app:
        done = await app.tasks["rec"].push(1)
        await done.wait()
        cancelled = await app.tasks["rec"].schedule(2).delay(100)
        kept = await app.tasks["rec"].schedule(3).delay(100)
        await cancelled.cancel()
    rows = stored(world.db)
    assert set(rows) == {kept.id}


async def test_retry_pending_across_restart_resumes_at_stored_time_and_attempt(
    world: World, vclock: trio.testing.MockClock
) -> None:
    attempts: list[tuple[Any, int]] = []
    retry = SmartRetry(3, initial_delay=100, max_delay=100, jitter=False)

    def flaky_on(app: Jobify) -> None:
        async def flaky() -> str:
            job = app.get_active_jobs()[0]
            attempts.append((world.clock.now(), job._attempt))
            if len(attempts) < 2:
                raise RuntimeError("first attempt fails")
            return "ok"

        app.task(name="flaky", retry=retry)(flaky)

    app1 = world.app()
    flaky_on(app1)
    async with app1:
        job = await app1.tasks["flaky"].push()
        while not attempts:
            await trio.sleep(0.5)
        await trio.sleep(1)
        assert job.status is JobStatus.SCHEDULED
    row = stored(world.db)[job.id]
    assert row[3:] == (2, "retrying")
    app2 = world.app()
    flaky_on(app2)
    async with app2:
        restored = app2.find_job(job.id)
        assert restored is not None
        await restored.wait()
        assert restored.result() == "ok"
    assert attempts == [(START, 1), (START + timedelta(seconds=100), 2)]
    assert stored(world.db) == {}


async def test_rows_of_a_renamed_task_are_kept_reported_and_restored_later(
    world: World, vclock: trio.testing.MockClock
) -> None:
    app1 = world.app()
    world.recorder(app1, name="old:name")
    async with app1:
        job = await app1.tasks["old:name"].schedule("v").delay(30)
    app2 = world.app()
    world.recorder(app2, name="new:name")
    with pytest.warns(RestoreWarning, match=r"'old:name'.*no task of that name"):
        async with app2:
            assert app2.find_job(job.id) is None
    assert job.id in stored(world.db)
    app3 = world.app()
    world.recorder(app3, name="old:name")
    async with app3:
        await app3.wait_all()
    assert world.runs == [(START + timedelta(seconds=30), "v")]
    assert stored(world.db) == {}


async def test_rows_whose_arguments_no_longer_bind_or_decode_are_kept(
    world: World, vclock: trio.testing.MockClock
) -> None:
    app1 = world.app()
    world.recorder(app1)
    async with app1:
        unbindable = await app1.tasks["rec"].schedule("v").delay(30)
        undecodable = await app1.tasks["rec"].schedule("w").delay(30)
    with sqlite3.connect(world.db) as conn:
        conn.execute(
            "UPDATE jobify_jobs SET arguments = ? WHERE job_id = ?", (b"\xff{", undecodable.id)
        )
    conn.close()
    app2 = world.app()

    async def other(a: int, b: int) -> None:
        raise AssertionError("must not run")

    app2.task(name="rec")(other)
    with pytest.warns(RestoreWarning) as caught:
        async with app2:
            assert app2.get_active_jobs() == []
    text = str(caught[0].message)
    assert repr(unbindable.id) in text
    assert "do not match" in text
    assert repr(undecodable.id) in text
    assert "cannot be decoded" in text
    assert set(stored(world.db)) == {unbindable.id, undecodable.id}


async def test_corrupt_row_is_kept_and_reported(
    world: World, vclock: trio.testing.MockClock
) -> None:
    app1 = world.app()
    world.recorder(app1)
    async with app1:
        await app1.tasks["rec"].schedule("good").delay(30)
        bad = await app1.tasks["rec"].schedule("bad").delay(30)
    with sqlite3.connect(world.db) as conn:
        conn.execute("UPDATE jobify_jobs SET next_run_at = 'soon' WHERE job_id = ?", (bad.id,))
    conn.close()
    app2 = world.app()
    world.recorder(app2)
    with pytest.warns(RestoreWarning, match=rf"{bad.id!r}.*unreadable row"):
        async with app2:
            await app2.wait_all()
    assert [value for _, value in world.runs] == ["good"]
    assert set(stored(world.db)) == {bad.id}


async def test_task_now_declared_not_durable_keeps_its_rows(
    world: World, vclock: trio.testing.MockClock
) -> None:
    app1 = world.app()
    world.recorder(app1)
    async with app1:
        job = await app1.tasks["rec"].schedule().delay(30)
    app2 = world.app()
    world.recorder(app2, durable=False)
    with pytest.warns(RestoreWarning, match="durable=False"):
        async with app2:
            pass
    assert job.id in stored(world.db)


async def test_non_durable_task_is_not_stored(world: World, vclock: trio.testing.MockClock) -> None:
    app = world.app()
    world.recorder(app, durable=False)
    async with app:
        await app.tasks["rec"].schedule().delay(30)
    assert stored(world.db) == {}
