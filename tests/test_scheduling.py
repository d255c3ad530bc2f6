"""Contract §4: push / at / delay, job ids, replace and force, binding, app state."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import trio
from _helpers import START, new_app

from jobify_trio import Jobify, JobStatus, SmartRetry
from jobify_trio.exceptions import ApplicationStateError, DuplicateJobError


def recording_app(**kwargs: object) -> tuple[Jobify, list[tuple[float, object]]]:
    app = new_app(**kwargs)
    runs: list[tuple[float, object]] = []

    @app.task(name="record")
    async def record(value: object) -> object:
        runs.append((trio.current_time(), value))
        return value

    return app, runs


async def test_push_runs_at_once(autojump_clock: trio.testing.MockClock) -> None:
    app, runs = recording_app()
    async with app:
        job = await app.tasks["record"].push("a")
        assert job.exec_at == START
        assert await job == "a"
    assert runs == [(0.0, "a")]


async def test_delay_runs_at_exact_virtual_time(autojump_clock: trio.testing.MockClock) -> None:
    app, runs = recording_app()
    async with app:
        job = await app.tasks["record"].schedule("d").delay(5)
        assert job.exec_at == START + timedelta(seconds=5)
        await job.wait()
        assert job.status is JobStatus.SUCCESS
    assert runs == [(5.0, "d")]


async def test_delay_accepts_timedelta(autojump_clock: trio.testing.MockClock) -> None:
    app, runs = recording_app()
    async with app:
        await app.tasks["record"].schedule(1).delay(timedelta(minutes=2))
        await app.wait_all()
    assert runs == [(120.0, 1)]


async def test_at_runs_at_exact_wall_time(autojump_clock: trio.testing.MockClock) -> None:
    app, runs = recording_app()
    async with app:
        job = await app.tasks["record"].schedule("x").at(START + timedelta(hours=1))
        await app.wait_all()
        assert job.status is JobStatus.SUCCESS
    assert runs == [(3600.0, "x")]


async def test_at_in_the_past_runs_at_once(autojump_clock: trio.testing.MockClock) -> None:
    app, runs = recording_app()
    async with app:
        await app.tasks["record"].schedule("late").at(START - timedelta(days=3))
        await app.wait_all()
    assert runs == [(0.0, "late")]


async def test_naive_at_is_in_the_app_tz(autojump_clock: trio.testing.MockClock) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    app, runs = recording_app(tz=berlin)
    async with app:
        # START is 2026-01-01 00:00 UTC = 01:00 in Berlin (UTC+1 in winter).
        job = await app.tasks["record"].schedule("n").at(datetime(2026, 1, 1, 2, 0))
        assert job.exec_at == datetime(2026, 1, 1, 2, 0, tzinfo=berlin)
        assert job.exec_at.tzinfo is berlin
        await app.wait_all()
    assert runs == [(3600.0, "n")]


async def test_returned_datetimes_are_in_the_app_tz(autojump_clock: trio.testing.MockClock) -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    app, _ = recording_app(tz=tokyo)
    async with app:
        job = await app.tasks["record"].push(1)
        assert job.exec_at.tzinfo is tokyo
        assert job.exec_at == START


async def test_duplicate_active_id_is_refused(autojump_clock: trio.testing.MockClock) -> None:
    app, runs = recording_app()
    record = app.tasks["record"]
    async with app:
        await record.schedule(1).delay(10, job_id="k")
        with pytest.raises(DuplicateJobError, match="'k'"):
            await record.schedule(2).delay(20, job_id="k")
        with pytest.raises(DuplicateJobError):
            await record.schedule(3).push(job_id="k")
        await app.wait_all()
    assert runs == [(10.0, 1)]


async def test_id_is_free_again_after_the_job_ended(autojump_clock: trio.testing.MockClock) -> None:
    app, runs = recording_app()
    record = app.tasks["record"]
    async with app:
        first = await record.schedule(1).push(job_id="k")
        await first.wait()
        second = await record.schedule(2).push(job_id="k")
        await second.wait()
        assert second is not first
    assert [value for _, value in runs] == [1, 2]


async def test_at_replace_same_time_returns_existing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app, runs = recording_app()
    record = app.tasks["record"]
    when = START + timedelta(seconds=30)
    async with app:
        job = await record.schedule("old").at(when, job_id="k")
        again = await record.schedule("new").at(when, job_id="k", replace=True)
        assert again is job
        await app.wait_all()
    assert runs == [(30.0, "old")]


async def test_at_replace_new_time_rearms_same_job(autojump_clock: trio.testing.MockClock) -> None:
    app, runs = recording_app()
    record = app.tasks["record"]
    async with app:
        job = await record.schedule("old").at(START + timedelta(seconds=30), job_id="k")
        moved = await record.schedule("new").at(
            START + timedelta(seconds=50), job_id="k", replace=True
        )
        assert moved is job
        assert job.exec_at == START + timedelta(seconds=50)
        await app.wait_all()
    assert runs == [(50.0, "new")]


async def test_at_replace_earlier_time(autojump_clock: trio.testing.MockClock) -> None:
    app, runs = recording_app()
    record = app.tasks["record"]
    async with app:
        await record.schedule("old").delay(50, job_id="k")
        await record.schedule("new").delay(20, job_id="k", replace=True)
        await app.wait_all()
    assert runs == [(20.0, "new")]


async def test_at_replace_force_same_time_rearms(autojump_clock: trio.testing.MockClock) -> None:
    app, runs = recording_app()
    record = app.tasks["record"]
    when = START + timedelta(seconds=30)
    async with app:
        job = await record.schedule("old").at(when, job_id="k")
        again = await record.schedule("new").at(when, job_id="k", replace=True, force=True)
        assert again is job
        await app.wait_all()
    assert runs == [(30.0, "new")]


async def test_push_replace_without_force_returns_existing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app, runs = recording_app()
    record = app.tasks["record"]
    async with app:
        job = await record.schedule("old").delay(10, job_id="k")
        again = await record.schedule("new").push(job_id="k", replace=True)
        assert again is job
        await app.wait_all()
    assert runs == [(10.0, "old")]


async def test_push_replace_force_runs_scheduled_job_now(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app, runs = recording_app()
    record = app.tasks["record"]
    async with app:
        job = await record.schedule("old").delay(10, job_id="k")
        again = await record.schedule("new").push(job_id="k", replace=True, force=True)
        assert again is job
        await app.wait_all()
    assert runs == [(0.0, "new")]


async def test_force_push_of_running_job_never_overlaps(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = new_app()
    active = 0
    spans: list[tuple[float, float, int]] = []

    @app.task
    async def slow(n: int) -> int:
        nonlocal active
        active += 1
        assert active == 1, "two runs of one job id overlapped"
        start = trio.current_time()
        await trio.sleep(10)
        spans.append((start, trio.current_time(), n))
        active -= 1
        return n

    async with app:
        job = await slow.schedule(1).push(job_id="k")
        await trio.sleep(3)
        assert job.status is JobStatus.RUNNING
        again = await slow.schedule(2).push(job_id="k", replace=True, force=True)
        assert again is job
        await job.wait()  # the current run ends; the forced run follows
        assert job.status is JobStatus.SCHEDULED
        assert job.result() == 1
        await app.wait_all()
        assert job.result() == 2
    assert spans == [(0.0, 10.0, 1), (10.0, 20.0, 2)]


async def test_arguments_that_do_not_bind_raise_at_call_site(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = new_app()

    @app.task(name="two")
    async def two(a: int, b: int = 0, *, c: int = 0) -> int:
        return a + b + c

    async with app:
        with pytest.raises(TypeError, match="task 'two'"):
            await two.push()
        with pytest.raises(TypeError, match="task 'two'"):
            await two.push(1, 2, 3)
        with pytest.raises(TypeError, match="task 'two'"):
            two.schedule(1, d=4)
        with pytest.raises(TypeError, match="task 'two'"):
            two.schedule(1, a=1)
        assert app.get_active_jobs() == []
        assert await (await two.push(1, b=2, c=3)) == 6
        assert await (await two.push(a=1)) == 1


async def test_scheduling_outside_a_running_app_raises() -> None:
    app, _ = recording_app()
    record = app.tasks["record"]
    with pytest.raises(ApplicationStateError, match="not running"):
        await record.push(1)
    with pytest.raises(ApplicationStateError):
        await record.schedule(1).delay(1)
    async with app:
        pass
    with pytest.raises(ApplicationStateError):
        await record.push(1)


async def test_registering_on_a_running_app_raises(autojump_clock: trio.testing.MockClock) -> None:
    app = new_app()
    async with app:
        with pytest.raises(ApplicationStateError):

            @app.task
            async def late() -> None:
                pass


async def test_negative_delay_runs_at_once_as_in_jobify(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # delay(s) is at(now + s), and a time in the past runs at once (Jobify does the same)
    app, runs = recording_app()
    async with app:
        job = await app.tasks["record"].schedule("late").delay(-5)
        assert job.exec_at == START - timedelta(seconds=5)
        assert await job == "late"
        late = await app.tasks["record"].schedule("later").delay(timedelta(minutes=-1))
        assert await late == "later"
    assert runs == [(0.0, "late"), (0.0, "later")]


async def test_bad_delay_values(autojump_clock: trio.testing.MockClock) -> None:
    app, _ = recording_app()
    record = app.tasks["record"]
    async with app:
        with pytest.raises(TypeError, match="task 'record'"):
            await record.schedule(1).delay("soon")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="task 'record'"):
            await record.schedule(1).at("tomorrow")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="job_id"):
            await record.schedule(1).push(job_id=5)  # type: ignore[arg-type]
        assert app.get_active_jobs() == []


async def test_a_delay_whose_date_overflows_is_rejected_naming_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app, _ = recording_app()
    record = app.tasks["record"]
    async with app:
        with pytest.raises(ValueError, match=r"task 'record': delay 1e\+20 s is too large"):
            await record.schedule(1).delay(1e20)
        with pytest.raises(ValueError, match=r"task 'record': delay 1000000000000\.0 is too large"):
            await record.schedule(1).delay(1e12)  # past year 9999
        with pytest.raises(ValueError, match=r"task 'record': delay .*days.* is too large"):
            await record.schedule(1).delay(timedelta(days=3_000_000))
        assert app.get_active_jobs() == []
        await record.schedule(2).delay(1e9)  # 31 years: fine
        assert len(app.get_active_jobs()) == 1


async def test_many_due_jobs_run_concurrently(autojump_clock: trio.testing.MockClock) -> None:
    app = new_app()
    ended: list[float] = []

    @app.task
    async def nap() -> None:
        await trio.sleep(5)
        ended.append(trio.current_time())

    async with app:
        for _ in range(500):
            await nap.push()
        await app.wait_all()
    assert ended == [5.0] * 500


async def test_one_off_cannot_replace_a_cron_job(autojump_clock: trio.testing.MockClock) -> None:
    app, runs = recording_app()
    record = app.tasks["record"]
    async with app:
        cron_job = await record.schedule("c").cron("* * * * *", job_id="k")
        with pytest.raises(DuplicateJobError, match="cron job"):
            await record.schedule("x").push(job_id="k", replace=True, force=True)
        with pytest.raises(DuplicateJobError, match="cron job"):
            await record.schedule("x").delay(5, job_id="k", replace=True)
        await trio.sleep(61)
        assert cron_job.is_cron()
        await cron_job.cancel()
        job = await record.schedule("x").delay(5, job_id="k")
        await job.wait()
    assert [value for _, value in runs] == ["c", "x"]


async def test_forced_rerun_keeps_the_running_arguments_for_its_retries(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = new_app()
    calls: list[tuple[float, str]] = []

    @app.task(retry=SmartRetry(1, initial_delay=5, jitter=False))
    async def flaky(tag: str) -> str:
        calls.append((trio.current_time(), tag))
        await trio.sleep(1)
        if len(calls) == 1:
            raise ConnectionError("first attempt fails")
        return tag

    async with app:
        job = await flaky.schedule("old").push(job_id="k")
        await trio.sleep(0.5)
        await flaky.schedule("new").push(job_id="k", replace=True, force=True)
        await app.wait_all()
        assert job.result() == "new"
    # the retry of the current run used its own arguments; the re-run the new ones
    assert calls == [(0.0, "old"), (6.0, "old"), (7.0, "new")]
