"""Cron triggers when the wall clock jumps (NTP step, suspended host), under virtual time.

The wall clock is a :class:`VirtualWallClock` plus an offset the test steps. Triggers
sleep on trio's clock, so they notice a jump when they next wake: at their own deadline
or, at the latest, at the group's jump check (``JUMP_CHECK`` seconds), which wakes them
all to re-read the wall clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import trio
from _helpers import START

from jobify_trio import Cron, JobStatus, MisfirePolicy
from jobify_trio._runtime._actors._cron_trigger import JUMP_CHECK
from jobify_trio.testing import VirtualWallClock

MINUTE = timedelta(minutes=1)


class SteppedClock:
    """Virtual wall time that the test can step forward or backward."""

    def __init__(self) -> None:
        self._base = VirtualWallClock(START)
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return self._base.now() + self.offset


async def test_forward_jump_fires_the_missed_slot_once_then_follows_the_new_time(
    autojump_clock: Any, make_app: Any
) -> None:
    clock = SteppedClock()
    app = make_app(wall_clock=clock)
    fires: list[datetime] = []

    @app.task
    async def tick() -> None:
        fires.append(clock.now())

    async with app:
        job = await tick.schedule().cron(Cron("*/10 * * * *"), job_id="ten")
        await trio.sleep(60)  # wall 00:01; next slot 00:10
        clock.offset = timedelta(minutes=25)  # wall jumps to 00:26: 00:10 and 00:20 missed
        await trio.sleep(JUMP_CHECK + 1)
        # MisfirePolicy.ONCE: the first missed slot runs once, late; 00:20 is skipped
        assert len(fires) == 1
        assert START + 26 * MINUTE <= fires[0] <= START + 28 * MINUTE
        assert job.exec_at == START + 30 * MINUTE
        await trio.sleep(10 * 60)  # wall ~00:37 -> 00:30 fired on time
        assert len(fires) == 2
        assert abs(fires[1] - (START + 30 * MINUTE)) < timedelta(seconds=1)
        assert job.status is JobStatus.SCHEDULED


async def test_forward_jump_with_skip_policy_runs_nothing_missed(
    autojump_clock: Any, make_app: Any
) -> None:
    clock = SteppedClock()
    app = make_app(wall_clock=clock)
    fires: list[datetime] = []

    @app.task
    async def tick() -> None:
        fires.append(clock.now())

    async with app:
        cron = Cron("*/10 * * * *", misfire_policy=MisfirePolicy.SKIP)
        job = await tick.schedule().cron(cron, job_id="ten")
        await trio.sleep(60)
        clock.offset = timedelta(minutes=25)
        await trio.sleep(JUMP_CHECK + 1)
        assert fires == []
        assert job.exec_at == START + 30 * MINUTE


async def test_backward_jump_neither_repeats_nor_fires_early(
    autojump_clock: Any, make_app: Any
) -> None:
    clock = SteppedClock()
    app = make_app(wall_clock=clock)
    fires: list[datetime] = []

    @app.task
    async def tick() -> None:
        fires.append(clock.now())

    async with app:
        job = await tick.schedule().cron(Cron("*/10 * * * *"), job_id="ten")
        await trio.sleep(10 * 60 + 30)  # 00:10 fired; wall 00:10:30, next 00:20
        assert len(fires) == 1
        clock.offset = -timedelta(hours=1)  # wall steps back to 23:10:30 the day before
        # the trigger was due 9.5 min of trio time from now; by the wall clock it is now
        # 69.5 min away: it must not fire at its old trio deadline, nor re-run 00:10
        await trio.sleep(30 * 60)
        assert len(fires) == 1
        assert job.exec_at == START + 20 * MINUTE
        await trio.sleep(40 * 60)  # wall reaches 00:20:30
        assert len(fires) == 2
        assert abs(fires[1] - (START + 20 * MINUTE)) < timedelta(seconds=1)


async def test_clock_set_back_two_days_replans_hourly_cron_from_the_new_time(
    autojump_clock: Any, make_app: Any
) -> None:
    clock = SteppedClock()
    app = make_app(wall_clock=clock)
    fires: list[datetime] = []

    @app.task
    async def hourly() -> None:
        fires.append(clock.now())

    async with app:
        job = await hourly.schedule().cron(Cron("0 * * * *"), job_id="hourly")
        await trio.sleep(3600 + 60)  # 01:00 fired; wall 01:01, next 02:00
        assert len(fires) == 1
        clock.offset = -timedelta(days=2)  # wall is now 2025-12-30 01:01
        await trio.sleep(JUMP_CHECK + 1)  # the jump watcher notices
        assert job.exec_at == START - timedelta(days=2) + timedelta(hours=2)
        # it fires every hour of the new wall time, not silent until 2026-01-01 02:00
        await trio.sleep(3 * 3600)
        assert len(fires) == 4
        for fire, hour in zip(fires[1:], (2, 3, 4), strict=True):
            due = START - timedelta(days=2) + timedelta(hours=hour)
            assert abs(fire - due) < timedelta(seconds=1)
        assert job.status is JobStatus.SCHEDULED


async def test_clock_set_back_keeps_one_off_at_jobs_and_start_date(
    autojump_clock: Any, make_app: Any
) -> None:
    clock = SteppedClock()
    app = make_app(wall_clock=clock)
    fires: list[tuple[str, datetime]] = []

    @app.task
    async def mark(name: str) -> None:
        fires.append((name, clock.now()))

    async with app:
        later = START + timedelta(hours=5)
        one_off = await mark.schedule("at").at(later)
        cron = Cron("0 * * * *", start_date=START + timedelta(hours=3))
        starting = await mark.schedule("cron").cron(cron, job_id="starting")
        await trio.sleep(60)
        clock.offset = -timedelta(days=2)
        await trio.sleep(JUMP_CHECK + 1)
        # the first run of a cron with a start_date stays at its start_date
        assert starting.exec_at == START + timedelta(hours=3)
        assert one_off.exec_at == later  # absolute time: the at job still waits for it
        await trio.sleep(3 * 3600)
        assert fires == []
        await one_off.cancel()
        await starting.cancel()


async def test_clock_set_back_while_the_cron_runs_replans_after_the_run(
    autojump_clock: Any, make_app: Any
) -> None:
    clock = SteppedClock()
    app = make_app(wall_clock=clock)
    fires: list[datetime] = []

    @app.task
    async def slow() -> None:
        fires.append(clock.now())
        await trio.sleep(120)

    async with app:
        job = await slow.schedule().cron(Cron("0 * * * *"), job_id="slow")
        await trio.sleep(3600 + 30)  # the 01:00 run is running
        assert job.status is JobStatus.RUNNING
        clock.offset = -timedelta(days=2)
        await trio.sleep(JUMP_CHECK + 1)
        assert job.status is JobStatus.RUNNING
        assert job.exec_at == START + timedelta(hours=1)  # a running job keeps its slot
        await trio.sleep(120)
        assert job.status is JobStatus.SCHEDULED
        assert job.exec_at == START - timedelta(days=2) + timedelta(hours=2)
