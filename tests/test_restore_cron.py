"""Contract §11/§12 restore rules for cron jobs, across two app instances on one file."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trio
from _helpers import START

from jobify_trio import Cron, Jobify, MisfirePolicy
from jobify_trio.storage import SQLiteStorage
from jobify_trio.testing import VirtualWallClock

MINUTE = timedelta(minutes=1)


def cron_rows(db: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """job_id -> (state, cron JSON) of the stored cron rows."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT job_id, state, cron FROM jobify_jobs WHERE trigger = 'cron'"
        ).fetchall()
    conn.close()
    return {job_id: (state, json.loads(cron)) for job_id, state, cron in rows}


class World:
    def __init__(self, tmp_path: Path, *, shared: bool = False) -> None:
        self.db = tmp_path / "jobs.db"
        self.shared = shared
        self.clock = VirtualWallClock(START)
        self.runs: list[datetime] = []
        self._target = 0
        self._reached = trio.Event()

    def app(self, cron: Cron | None, *, fail: bool = False) -> Jobify:
        app = Jobify(storage=SQLiteStorage(self.db, shared=self.shared), wall_clock=self.clock)
        clock, runs = self.clock, self.runs

        async def tick() -> None:
            runs.append(clock.now())
            if len(runs) >= self._target:
                self._reached.set()
            if fail:
                raise RuntimeError("boom")

        app.task(name="tick", cron=cron)(tick)
        return app

    async def run_until(self, count: int) -> None:
        """Wait (without polling) until ``count`` runs were recorded."""
        self._target, self._reached = count, trio.Event()
        if len(self.runs) < count:
            await self._reached.wait()


@pytest.fixture
def vclock(autojump_clock: trio.testing.MockClock) -> trio.testing.MockClock:
    """Virtual time that jumps only after 50 ms of real idleness, never during a commit.

    SQLite work happens in a thread that trio's autojump does not see: with a threshold
    of 0, time would jump (and crons fire) while a commit is in flight.
    """
    autojump_clock.autojump_threshold = 0.05
    return autojump_clock


@pytest.fixture(params=[False, True], ids=["unshared", "shared"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> World:
    """Each test on a plain file and on one opened with ``shared=True`` (one instance
    alone on a sharing store must behave the same)."""
    return World(tmp_path, shared=request.param)


async def test_unchanged_declarative_cron_resumes_keeping_run_count(
    world: World, vclock: trio.testing.MockClock
) -> None:
    cron = Cron("* * * * *", max_runs=5)
    async with world.app(cron):
        await world.run_until(2)
    ((state, stored),) = cron_rows(world.db).values()
    assert (state, stored["run_count"]) == ("scheduled", 2)
    app2 = world.app(cron)
    async with app2:
        await app2.wait_all()
    assert world.runs == [START + MINUTE * i for i in range(1, 6)]
    assert cron_rows(world.db) == {}


async def test_declarative_cron_changed_in_code_replaces_the_stored_one(
    world: World, vclock: trio.testing.MockClock
) -> None:
    async with world.app(Cron("* * * * *", max_runs=5)):
        await world.run_until(2)
    app2 = world.app(Cron("*/10 * * * *", max_runs=2))
    async with app2:
        await app2.wait_all()
    assert world.runs[2:] == [START + MINUTE * 10, START + MINUTE * 20]
    assert cron_rows(world.db) == {}


async def test_declarative_cron_removed_from_code_is_deleted(
    world: World, vclock: trio.testing.MockClock
) -> None:
    async with world.app(Cron("* * * * *")):
        await world.run_until(1)
    assert len(cron_rows(world.db)) == 1
    app2 = world.app(None)
    async with app2:
        assert app2.get_active_jobs() == []
        await trio.sleep(300)
    assert world.runs == [START + MINUTE]
    assert cron_rows(world.db) == {}


async def test_permanently_failed_cron_stays_failed_after_restart(
    world: World, vclock: trio.testing.MockClock
) -> None:
    cron = Cron("* * * * *", max_failures=2)
    app1 = world.app(cron, fail=True)
    async with app1:
        await app1.wait_all()
    assert len(world.runs) == 2
    ((state, _),) = cron_rows(world.db).values()
    assert state == "permanently_failed"
    app2 = world.app(cron, fail=True)
    async with app2:
        assert app2.get_active_jobs() == []
        await trio.sleep(600)
    assert len(world.runs) == 2
    ((state, _),) = cron_rows(world.db).values()
    assert state == "permanently_failed"


@pytest.mark.parametrize(
    ("policy", "expected_first_runs"),
    [
        (MisfirePolicy.SKIP, [timedelta(hours=6)]),
        (MisfirePolicy.ONCE, [timedelta(hours=5, minutes=30), timedelta(hours=6)]),
    ],
)
async def test_scheduled_cron_row_is_restored_with_its_misfire_policy(
    world: World,
    vclock: trio.testing.MockClock,
    policy: MisfirePolicy,
    expected_first_runs: list[timedelta],
) -> None:
    app1 = world.app(None)
    async with app1:
        await (
            app1.tasks["tick"]
            .schedule()
            .cron(Cron("0 * * * *", misfire_policy=policy), job_id="hourly")
        )
    assert set(cron_rows(world.db)) == {"hourly"}
    world.clock = VirtualWallClock(START + timedelta(hours=5, minutes=30))
    app2 = world.app(None)
    async with app2:
        job = app2.find_job("hourly")
        assert job is not None
        assert job.is_cron()
        await world.run_until(len(expected_first_runs))
        await job.cancel()
    assert world.runs == [START + delta for delta in expected_first_runs]
    assert cron_rows(world.db) == {}
