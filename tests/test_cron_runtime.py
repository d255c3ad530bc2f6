"""Live cron triggers under virtual time (autojump clock + VirtualWallClock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import trio
from _helpers import START

from jobify_trio import Cron, Job, JobStatus, MisfirePolicy
from jobify_trio.exceptions import DuplicateJobError, JobFailedError
from jobify_trio.testing import VirtualWallClock

MINUTE = timedelta(minutes=1)


def _close(a: datetime, b: datetime) -> bool:
    return abs(a.timestamp() - b.timestamp()) < 1e-3


async def test_week_of_every_five_minutes_fires_2016_times_at_exact_times(
    autojump_clock: Any, make_app: Any
) -> None:
    app = make_app()
    fires: list[datetime] = []

    @app.task
    async def tick() -> None:
        fires.append(app.wall_clock.now())

    async with app:
        job = await tick.schedule().cron("*/5 * * * *", job_id="five")
        assert job.exec_at == START + 5 * MINUTE
        await trio.sleep(7 * 86400 + 1)
        assert job.status is JobStatus.SCHEDULED
        assert job.exec_at == START + timedelta(days=7, minutes=5)
    assert len(fires) == 2016
    expected = [START + 5 * MINUTE * (i + 1) for i in range(2016)]
    assert all(_close(a, b) for a, b in zip(fires, expected, strict=True))


async def test_seven_field_expression_fires_every_second(
    autojump_clock: Any, make_app: Any
) -> None:
    app = make_app()
    fires: list[datetime] = []

    @app.task
    async def tick() -> None:
        fires.append(app.wall_clock.now())

    async with app:
        await tick.schedule().cron("* * * * * * *", job_id="sec")
        await trio.sleep(60.5)
    assert len(fires) == 60
    assert all(_close(f, START + timedelta(seconds=i + 1)) for i, f in enumerate(fires))


async def test_max_runs_runs_exactly_that_many_times(autojump_clock: Any, make_app: Any) -> None:
    app = make_app()
    runs: list[datetime] = []

    @app.task
    async def tick() -> int:
        runs.append(app.wall_clock.now())
        return len(runs)

    async with app:
        job = await tick.schedule().cron(Cron("* * * * *", max_runs=3), job_id="three")
        await job.wait()
        assert job.status is JobStatus.SCHEDULED  # back to scheduled after a run
        assert job.result() == 1
        await trio.sleep(3600)
        assert job.status is JobStatus.SUCCESS
        assert job.result() == 3
        assert app.find_job("three") is None
        assert len(app._runtime.cron_triggers) == 0
    assert len(runs) == 3


async def test_max_failures_ends_permanently_failed(autojump_clock: Any, make_app: Any) -> None:
    app = make_app()
    runs = 0

    @app.task
    async def broken() -> None:
        nonlocal runs
        runs += 1
        raise ValueError(f"run {runs}")

    async with app:
        job = await broken.schedule().cron(Cron("* * * * *", max_failures=3), job_id="b")
        await trio.sleep(3600)
        assert job.status is JobStatus.PERMANENTLY_FAILED
        assert app.find_job("b") is None
        with pytest.raises(JobFailedError):
            job.result()
    assert runs == 3


async def test_success_resets_consecutive_failures(autojump_clock: Any, make_app: Any) -> None:
    app = make_app()
    outcomes = iter([False, False, True, False, False, False, True])
    runs = 0

    @app.task
    async def flaky() -> str:
        nonlocal runs
        runs += 1
        if not next(outcomes):
            raise ValueError("no")
        return "ok"

    async with app:
        job = await flaky.schedule().cron(Cron("* * * * *", max_failures=3), job_id="f")
        await trio.sleep(3600)
        assert job.status is JobStatus.PERMANENTLY_FAILED
    assert runs == 6  # fail, fail, ok (reset), fail, fail, fail -> ends


async def test_task_retries_run_inside_one_cron_run(autojump_clock: Any, make_app: Any) -> None:
    app = make_app()
    attempts = 0

    @app.task(retry=2)
    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts % 2:
            raise ValueError("first attempt fails")
        return "ok"

    async with app:
        job = await flaky.schedule().cron(Cron("* * * * *", max_runs=2), job_id="r")
        await trio.sleep(600)
        assert job.status is JobStatus.SUCCESS
        assert job.result() == "ok"
    assert attempts == 4  # two runs of two attempts each


def _overrun_app(make_app: Any, policy: Any) -> tuple[Any, Any, list[tuple[datetime, datetime]]]:
    app = make_app()
    runs: list[tuple[datetime, datetime]] = []
    holder: dict[str, Job[Any]] = {}

    @app.task
    async def slow() -> None:
        runs.append((holder["job"].exec_at, app.wall_clock.now()))
        if len(runs) == 1:
            await trio.sleep(10 * 60 + 30)  # 00:01 -> 00:11:30: slots 00:02..00:11 missed

    async def start() -> None:
        holder["job"] = await slow.schedule().cron(
            Cron("* * * * *", misfire_policy=policy), job_id="slow"
        )

    return app, start, runs


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (MisfirePolicy.ONCE, [(1, 60), (2, 11.5 * 60), (12, 12 * 60), (13, 13 * 60)]),
        (MisfirePolicy.SKIP, [(1, 60), (12, 12 * 60), (13, 13 * 60)]),
        (
            MisfirePolicy.ALL,
            [(1, 60), *((m, 11.5 * 60) for m in range(2, 12)), (12, 12 * 60), (13, 13 * 60)],
        ),
        (
            MisfirePolicy.GRACE(timedelta(minutes=3)),
            [(1, 60), (9, 11.5 * 60), (10, 11.5 * 60), (11, 11.5 * 60), (12, 720), (13, 780)],
        ),
    ],
)
async def test_run_overrunning_ten_slots_follows_the_misfire_policy(
    autojump_clock: Any, make_app: Any, policy: Any, expected: list[tuple[int, float]]
) -> None:
    app, start, runs = _overrun_app(make_app, policy)
    async with app:
        await start()
        await trio.sleep(13 * 60 + 30)
    slots = [(round((s - START) / MINUTE), round((w - START).total_seconds(), 3)) for s, w in runs]
    assert slots == [(m, float(t)) for m, t in expected]


async def test_cancel_stops_the_trigger(autojump_clock: Any, make_app: Any) -> None:
    app = make_app()
    fires = 0

    @app.task
    async def tick() -> None:
        nonlocal fires
        fires += 1

    async with app:
        job = await tick.schedule().cron("* * * * *", job_id="c")
        triggers = app._runtime.cron_triggers
        await trio.sleep(150)
        assert fires == 2
        assert len(triggers) == 1
        await job.cancel()
        await trio.lowlevel.checkpoint()
        assert len(triggers) == 0
        assert job.status is JobStatus.CANCELLED
        await trio.sleep(600)
        await app.wait_all(timeout=1)
    assert fires == 2


async def test_cancel_while_running_ends_the_run_and_the_trigger(
    autojump_clock: Any, make_app: Any
) -> None:
    app = make_app()
    started = trio.Event()

    @app.task
    async def slow() -> None:
        started.set()
        await trio.sleep(3600)

    async with app:
        job = await slow.schedule().cron("* * * * *", job_id="c")
        await started.wait()
        await job.cancel()
        await trio.lowlevel.checkpoint()
        assert len(app._runtime.cron_triggers) == 0
        assert job.status is JobStatus.CANCELLED
        assert app.find_job("c") is None


async def test_declarative_cron_starts_with_a_stable_id(autojump_clock: Any, make_app: Any) -> None:
    app = make_app()
    fires: list[datetime] = []

    @app.task(name="poll", cron="*/5 * * * *")
    async def poll() -> None:
        fires.append(app.wall_clock.now())

    async with app:
        job = app.find_job("cron:poll")
        assert job is not None
        assert job.is_cron()
        assert job.cron_expression == "*/5 * * * *"
        assert job.exec_at == START + 5 * MINUTE
        await trio.sleep(11 * 60)
    assert len(fires) == 2


async def test_declarative_cron_args_are_passed(autojump_clock: Any, make_app: Any) -> None:
    app = make_app()
    seen: list[tuple[int, str]] = []

    @app.task(name="greet", cron=Cron("* * * * *", args=(7,), kwargs={"who": "x"}, max_runs=1))
    async def greet(n: int, who: str) -> None:
        seen.append((n, who))

    async with app:
        await app.wait_all()
    assert seen == [(7, "x")]


async def test_cron_arguments_are_checked_when_scheduling(make_app: Any) -> None:
    app = make_app()

    @app.task(name="needs_one")
    async def needs_one(n: int) -> None:
        pass

    async with app:
        with pytest.raises(TypeError, match="needs_one"):
            await needs_one.schedule().cron(Cron("* * * * *", args=(1, 2)), job_id="x")
        with pytest.raises(TypeError, match="needs_one"):
            await needs_one.schedule(1).cron(Cron("* * * * *", args=(1,)), job_id="x")
        assert app.find_job("x") is None


async def test_replace_semantics(autojump_clock: Any, make_app: Any) -> None:
    app = make_app()
    runs: list[datetime] = []

    @app.task
    async def tick() -> None:
        runs.append(app.wall_clock.now())

    async with app:
        job = await tick.schedule().cron("0 * * * *", job_id="r")
        with pytest.raises(DuplicateJobError):
            await tick.schedule().cron("0 * * * *", job_id="r")
        same = await tick.schedule().cron("0 * * * *", job_id="r", replace=True)
        assert same is job
        assert job.exec_at == START + timedelta(hours=1)
        await trio.sleep(80 * 60)  # one run at 01:00; now 01:20
        assert len(runs) == 1
        assert app._runtime.cron_triggers.state(job).run_count == 1
        # New schedule, offset kept (01:00): 01:10 already passed -> ONCE runs at once.
        new = await tick.schedule().cron("10,50 * * * *", job_id="r", replace=True)
        assert new is job
        assert job.cron_expression == "10,50 * * * *"
        await trio.sleep(1)
        assert len(runs) == 2
        assert _close(runs[1], START + timedelta(hours=1, minutes=20))
        assert job.exec_at == START + timedelta(hours=1, minutes=50)
        assert app._runtime.cron_triggers.state(job).run_count == 1  # reset, then one run
        # A changed start_date: the first run is exactly then.
        begin = START + timedelta(hours=3, minutes=7, seconds=13)
        await tick.schedule().cron(
            Cron("10,50 * * * *", start_date=begin), job_id="r", replace=True
        )
        assert job.exec_at == begin
        await trio.sleep(2 * 3600)
        assert _close(runs[2], begin)
        assert _close(runs[3], START + timedelta(hours=3, minutes=10))
        assert len(app._runtime.cron_triggers) == 1


async def test_naive_future_start_date_is_in_app_tz(autojump_clock: Any, make_app: Any) -> None:
    clock = VirtualWallClock(START)
    app = make_app(tz="Europe/Berlin", wall_clock=clock)  # UTC+1 in January
    fires: list[datetime] = []

    @app.task
    async def tick() -> None:
        fires.append(clock.now())

    async with app:
        start = datetime(2026, 1, 1, 3, 7)  # naive: 03:07 Berlin = 02:07 UTC
        await tick.schedule().cron(Cron("0 * * * *", start_date=start), job_id="s")
        await trio.sleep(3 * 3600 + 60)
    assert [f.astimezone(UTC).strftime("%H:%M") for f in fires] == ["02:07", "03:00"]


async def test_fixed_time_cron_fires_once_on_the_fall_back_day(
    autojump_clock: Any, make_app: Any
) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    clock = VirtualWallClock(datetime(2026, 10, 24, tzinfo=UTC))
    app = make_app(tz=berlin, wall_clock=clock)
    fires: list[datetime] = []

    @app.task
    async def nightly() -> None:
        fires.append(clock.now())

    async with app:
        await nightly.schedule().cron("30 2 * * *", job_id="n")
        await trio.sleep(3 * 86400)
    assert [f.astimezone(UTC).isoformat() for f in fires] == [
        "2026-10-24T00:30:00+00:00",  # 02:30+02:00
        "2026-10-25T00:30:00+00:00",  # 02:30+02:00, once on the fall-back day
        "2026-10-26T01:30:00+00:00",  # 02:30+01:00
    ]


async def test_wait_and_result_between_runs(autojump_clock: Any, make_app: Any) -> None:
    app = make_app()
    count = 0

    @app.task
    async def tick() -> int:
        nonlocal count
        count += 1
        return count

    async with app:
        job = await tick.schedule().cron("* * * * *", job_id="w")
        assert await job == 1
        assert job.status is JobStatus.SCHEDULED
        assert job.exec_at == START + 2 * MINUTE
        assert await job == 2
