"""A Jobify app on PostgresStorage: durable jobs are committed, restored by the next app
instance and run; a cron's state survives a restart (one instance at a time)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import trio
from _helpers import START
from _stores import PostgresBackend, require_postgres

from jobify_trio import Jobify
from jobify_trio.testing import VirtualWallClock


@pytest.fixture
async def pg() -> AsyncIterator[PostgresBackend]:
    require_postgres()
    backend = PostgresBackend()
    try:
        yield backend
    finally:
        await backend.close()


async def test_jobs_survive_a_restart_on_postgres(pg: PostgresBackend) -> None:
    runs: list[Any] = []

    def app(clock: VirtualWallClock) -> Jobify:
        instance = Jobify(storage=pg.new(), wall_clock=clock)

        @instance.task(name="rec")
        async def rec(value: Any = None) -> None:
            runs.append(value)

        return instance

    first = app(VirtualWallClock(START))
    async with first:
        await first.tasks["rec"].schedule("later").delay(3600, job_id="later")
        done = await first.tasks["rec"].schedule("now").push()
        with trio.fail_after(10):
            await done.wait()
    assert runs == ["now"]
    store = pg.new()
    await store.startup()
    try:
        rows = {job.job_id: job for job in (await store.load()).jobs}
    finally:
        await store.shutdown()
    assert list(rows) == ["later"]
    delay = rows["later"].next_run_at - START  # the virtual clock follows trio's clock
    assert timedelta(hours=1) <= delay < timedelta(hours=1, seconds=10)
    second = app(VirtualWallClock(START + timedelta(hours=2)))  # "later" is overdue
    with trio.fail_after(10):
        async with second:
            while runs == ["now"]:
                await trio.sleep(0.01)
    assert runs == ["now", "later"]
