"""A paused durable cron stays paused across a restart (issue 12)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trio
from _helpers import START

from jobify_trio import Jobify
from jobify_trio.storage import SQLiteStorage, Storage
from jobify_trio.testing import MemoryStorage, VirtualWallClock

MINUTE = timedelta(minutes=1)


def _app(store: Storage, clock: VirtualWallClock, fires: list[datetime]) -> tuple[Jobify, Any]:
    app = Jobify(wall_clock=clock, storage=store)

    @app.task(name="tick")
    async def tick() -> None:
        fires.append(clock.now())

    return app, tick


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    def make() -> Storage:
        if request.param == "memory":
            return memory
        return SQLiteStorage(tmp_path / "jobs.db")  # not opened until an app starts

    memory = MemoryStorage()
    return make


async def test_a_paused_durable_cron_stays_paused_across_a_restart(
    autojump_clock: trio.testing.MockClock, store: Any
) -> None:
    if not isinstance(store(), MemoryStorage):  # SQLite commits run in a thread (see vclock)
        autojump_clock.autojump_threshold = 0.02
    clock, fires = VirtualWallClock(START), []
    app, tick = _app(store(), clock, fires)
    async with app:
        job = await tick.schedule().cron("* * * * *", job_id="tick")
        await trio.sleep(60.5)  # one run at 1 min
        await job.pause()
        await trio.sleep(0.5)  # the row is written
    await trio.sleep(5 * 60)  # stopped while paused: the slots at 2..6 min pass
    app, _ = _app(store(), clock, fires)
    async with app:
        job = app.find_job("tick")
        assert job is not None
        assert job.paused
        await trio.sleep(3 * 60)  # still paused: no catch-up, no run
        assert len(fires) == 1
        await app.wait_all(timeout=1)  # a paused job does not keep the app busy
        await job.resume()  # now 9:01 -> next slot 10:00
        assert job.exec_at == START + 10 * MINUTE
        await trio.sleep(60)
    app, _ = _app(store(), clock, fires)
    async with app:  # resumed is stored too
        job = app.find_job("tick")
        assert job is not None
        assert not job.paused
    assert [f - START for f in fires] == [MINUTE, 10 * MINUTE]
