"""A time zone per cron: ``Cron(expr, tz=...)`` (issue 12)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import trio

from jobify_trio import Cron, Jobify, MisfirePolicy
from jobify_trio._cron._state import CronState, cron_from_json, cron_to_json, same_schedule
from jobify_trio.testing import MemoryStorage, VirtualWallClock

BERLIN = ZoneInfo("Europe/Berlin")


def test_tz_accepts_a_name_or_a_zoneinfo() -> None:
    assert Cron("0 7 * * *", tz="Europe/Berlin").tz is BERLIN
    assert Cron("0 7 * * *", tz=BERLIN).tz is BERLIN
    assert Cron("0 7 * * *").tz is None


@pytest.mark.parametrize("bad", ["Europe/Atlantis", "", "../etc/passwd"])
def test_a_bad_zone_name_is_refused_at_construction_naming_it(bad: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone") as info:
        Cron("0 7 * * *", tz=bad)
    assert repr(bad) in str(info.value)


def test_a_zone_of_another_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="Cron tz"):
        Cron("0 7 * * *", tz=UTC)  # type: ignore[arg-type]


def test_tz_round_trips_through_the_stored_json_and_takes_part_in_same_schedule() -> None:
    cron = Cron("0 7 * * *", tz="Europe/Berlin")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    text = cron_to_json(cron, CronState(next_run_at=now, offset=now))
    back, _ = cron_from_json(text)
    assert back.tz is BERLIN
    assert same_schedule(back, cron)
    assert not same_schedule(cron, Cron("0 7 * * *"))
    assert not same_schedule(cron, Cron("0 7 * * *", tz="America/New_York"))
    old = text.replace(',"tz":"Europe/Berlin"', "")  # a row from before per-cron zones
    assert cron_from_json(old)[0].tz is None


async def test_cron_tz_overrides_the_app_tz_across_a_dst_change(autojump_clock: Any) -> None:
    # 2026-03-29: Berlin goes from UTC+1 to UTC+2 at 02:00 local. The app runs in UTC.
    start = datetime(2026, 3, 27, 12, tzinfo=UTC)
    app = Jobify(wall_clock=VirtualWallClock(start), tz=UTC, storage=False)
    fires: list[datetime] = []

    @app.task
    async def wake() -> None:
        fires.append(app.wall_clock.now())

    async with app:
        job = await wake.schedule().cron(Cron("0 7 * * *", tz="Europe/Berlin"), job_id="w")
        assert job.exec_at.tzinfo is BERLIN  # next run shown in the cron's zone
        await trio.sleep(3 * 86400)
    assert [f.astimezone(UTC).hour for f in fires] == [6, 5, 5]  # 07:00 Berlin, CET then CEST
    assert [f.astimezone(BERLIN).hour for f in fires] == [7, 7, 7]


async def test_cron_tz_in_a_dst_gap_moves_the_slot_like_the_app_tz(autojump_clock: Any) -> None:
    start = datetime(2026, 3, 28, 12, tzinfo=UTC)
    app = Jobify(wall_clock=VirtualWallClock(start), tz=UTC, storage=False)
    fires: list[datetime] = []

    @app.task
    async def gap() -> None:
        fires.append(app.wall_clock.now())

    async with app:
        await gap.schedule().cron(Cron("30 2 * * *", tz=BERLIN), job_id="g")
        await trio.sleep(2 * 86400)
    # 02:30 does not exist on 29 March in Berlin: it runs at the gap's end (03:00 CEST)
    assert fires[0] == datetime(2026, 3, 29, 1, tzinfo=UTC)
    assert fires[1] == datetime(2026, 3, 30, 0, 30, tzinfo=UTC)
    assert fires[0] - start < timedelta(days=1)


async def test_cron_tz_is_restored_after_a_restart(autojump_clock: Any) -> None:
    store = MemoryStorage()
    clock = VirtualWallClock(datetime(2026, 3, 28, 5, 59, 30, tzinfo=UTC))  # 06:59:30 CET
    fires: list[datetime] = []

    def make() -> tuple[Jobify, Any]:
        app = Jobify(wall_clock=clock, tz=UTC, storage=store)

        @app.task(name="wake")
        async def wake() -> None:
            fires.append(clock.now())

        return app, wake

    app, wake = make()
    cron = Cron("0 7 * * *", tz="Europe/Berlin", misfire_policy=MisfirePolicy.SKIP)
    async with app:
        await wake.schedule().cron(cron, job_id="w")
        await trio.sleep(60)  # one run: 07:00 CET
    await trio.sleep(86400)  # stopped over the DST change and the next slot
    app, _ = make()
    async with app:
        job = app.find_job("w")
        assert job is not None
        assert job._cron.tz is BERLIN
        # skipped to the next slot after now, computed in Berlin: 07:00 CEST = 05:00 UTC
        assert job.exec_at == datetime(2026, 3, 30, 5, tzinfo=UTC)
        assert job.exec_at.tzinfo is BERLIN
    assert fires == [datetime(2026, 3, 28, 6, tzinfo=UTC)]
