"""A cron that can never fire is refused when it is scheduled (issue 10, item 8)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import trio
from _helpers import new_app

from jobify_trio import Cron
from jobify_trio.exceptions import InvalidCronExpression


def test_a_start_date_after_the_last_fire_time_is_refused_at_construction() -> None:
    with pytest.raises(InvalidCronExpression, match=r"'\* \* \* \* \* 2027'.*start_date 2030"):
        Cron("* * * * * 2027", start_date=datetime(2030, 1, 1))
    with pytest.raises(InvalidCronExpression, match="never fires on or after its start_date"):
        Cron("0 0 1 1 * 2027", start_date=datetime(2027, 1, 4, tzinfo=UTC))
    # within a day of the last fire: decided by the runtime, which knows the app's tz
    assert Cron("* * * * * 2027", start_date=datetime(2028, 1, 1)).start_date is not None
    assert Cron("* * * * *", start_date=datetime(1, 1, 1)).start_date == datetime(1, 1, 1)


@pytest.mark.parametrize(
    ("cron", "reason"),
    [
        ("* * * * * 1970", r"its last fire time is before now \(2026-01-01"),
        ("0 0 1 1 * 2025", "its last fire time is before now"),
        (Cron("* * * * * 2027", start_date=datetime(2028, 1, 1)), "start_date 2028-01-01"),
        (Cron("* * * * * 2027", start_date=datetime(2027, 12, 31, 23, 59, 1)), "start_date"),
    ],
)
async def test_scheduling_a_cron_that_never_fires_raises_naming_it(
    autojump_clock: trio.testing.MockClock, cron: str | Cron, reason: str
) -> None:
    app = new_app()
    runs: list[int] = []

    @app.task
    async def t() -> None:
        runs.append(1)

    async with app:
        with pytest.raises(InvalidCronExpression, match=rf"invalid cron expression .*{reason}"):
            await t.schedule().cron(cron, job_id="c")
        assert app.get_active_jobs() == []
        job = await t.schedule().cron("0 0 1 1 * 2027", job_id="c")  # the id is free
        assert job.exec_at == datetime(2027, 1, 1, tzinfo=UTC)
        await job.cancel()
    assert runs == []


async def test_a_declared_cron_that_never_fires_warns_and_the_app_starts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = new_app()
    runs: list[int] = []

    @app.task(cron="* * * * * 1970")
    async def old() -> None:
        runs.append(1)

    @app.task
    async def fine() -> None:
        runs.append(2)

    async def run() -> None:
        async with app:
            await (await fine.push()).wait()
            assert app.get_active_jobs() == []

    with pytest.warns(RuntimeWarning, match=r"task '.*old': its declared cron is not started"):
        await run()
    assert runs == [2]
