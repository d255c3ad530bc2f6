"""Pause and resume (issue 12) under virtual time: one-off and cron rules, events, wait_all."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import trio
from _helpers import START

from jobify_trio import INJECT, JobContext, JobEvent, JobEventKind, JobStatus, SmartRetry

MINUTE = timedelta(minutes=1)


def _close(a: datetime, b: datetime) -> bool:
    return abs(a.timestamp() - b.timestamp()) < 1e-3


async def test_paused_cron_skips_its_slots_and_resumes_at_the_next_slot_after_now(
    autojump_clock: Any, make_app: Any
) -> None:
    app = make_app()
    fires: list[datetime] = []

    @app.task
    async def tick() -> None:
        fires.append(app.wall_clock.now())

    async with app:
        job = await tick.schedule().cron("* * * * *", job_id="tick")
        await trio.sleep(2 * 60 + 1)  # fires at 1 and 2 min
        await job.pause()
        assert job.paused
        await trio.sleep(5 * 60)  # slots 3..7 min pass while paused
        assert len(fires) == 2
        await trio.sleep(20)  # now 7:21
        await job.resume()
        assert not job.paused
        assert _close(job.exec_at, START + 8 * MINUTE)  # next slot after now, no catch-up
        await trio.sleep(60)
        assert job.status is JobStatus.SCHEDULED
    assert [f - START for f in fires] == [MINUTE, 2 * MINUTE, 8 * MINUTE]


async def test_paused_one_off_due_during_the_pause_runs_at_resume(
    autojump_clock: Any, make_app: Any
) -> None:
    app = make_app()
    ran: list[datetime] = []

    @app.task
    async def once() -> str:
        ran.append(app.wall_clock.now())
        return "done"

    async with app:
        job = await once.schedule().delay(60)
        await job.pause()
        await trio.sleep(300)
        assert ran == []
        assert job.status is JobStatus.SCHEDULED
        assert job.paused
        await job.resume()
        assert await job == "done"
    assert _close(ran[0], START + 300 * timedelta(seconds=1))


async def test_paused_one_off_not_yet_due_at_resume_runs_at_its_time(
    autojump_clock: Any, make_app: Any
) -> None:
    app = make_app()
    ran: list[datetime] = []

    @app.task
    async def once() -> None:
        ran.append(app.wall_clock.now())

    async with app:
        job = await once.schedule().delay(600)
        await job.pause()
        await trio.sleep(60)
        await job.resume()
        await job
    assert _close(ran[0], START + 10 * MINUTE)


async def test_wait_all_does_not_wait_for_a_paused_job(autojump_clock: Any, make_app: Any) -> None:
    app = make_app()

    @app.task
    async def once() -> None:
        pass

    async with app:
        paused = await once.schedule().delay(60)
        await paused.pause()
        other = await once.schedule().delay(30)
        await app.wait_all(timeout=120)  # returns once only the paused job is left
        assert other.status is JobStatus.SUCCESS
        assert paused.status is JobStatus.SCHEDULED
        assert app.wall_clock.now() - START < timedelta(seconds=31)  # did not wait for it
        await paused.resume()
        await app.wait_all(timeout=60)
        assert paused.status is JobStatus.SUCCESS


async def test_pause_and_resume_emit_events_and_are_idempotent(
    autojump_clock: Any, make_app: Any
) -> None:
    app = make_app()
    events: list[JobEvent] = []
    app.add_listener(events.append)

    @app.task
    async def once() -> None:
        pass

    async with app:
        job = await once.schedule().delay(60)
        await job.pause()
        await job.pause()  # no second event
        await job.resume()
        await job.resume()
        await job
        await job.pause()  # ended: nothing
    kinds = [e.kind for e in events]
    assert kinds == [
        JobEventKind.PAUSED,
        JobEventKind.RESUMED,
        JobEventKind.STARTED,
        JobEventKind.ENDED,
    ]
    assert events[1].next_run is not None
    assert _close(events[1].next_run, START + MINUTE)
    assert job.is_done()


async def test_cancel_a_paused_job(autojump_clock: Any, make_app: Any) -> None:
    app = make_app()

    @app.task
    async def once() -> None:
        pass

    async with app:
        job = await once.schedule().delay(1)
        await job.pause()
        await trio.sleep(5)  # it fell due: held
        await job.cancel()
        assert job.status is JobStatus.CANCELLED
        await app.wait_all(timeout=1)


async def test_a_retry_of_a_job_paused_while_it_runs_waits_for_resume(
    autojump_clock: Any, make_app: Any
) -> None:
    app = make_app()
    attempts: list[int] = []
    gate = trio.Event()

    @app.task(retry=SmartRetry(3, initial_delay=0))  # retried at once in the worker
    async def flaky(context: JobContext = INJECT) -> str:
        attempts.append(context.attempt)
        if context.attempt == 1:
            await gate.wait()
            raise ValueError("first attempt fails")
        return "ok"

    async with app:
        job = await flaky.push()
        await trio.sleep(1)
        await job.pause()  # the running attempt goes on
        gate.set()
        await trio.sleep(60)
        assert attempts == [1]  # its retry waits for resume
        assert job.status is JobStatus.SCHEDULED
        await job.resume()
        assert await job == "ok"
    assert attempts == [1, 2]


async def test_a_cron_paused_while_its_run_fails_retries_at_resume_then_goes_on(
    autojump_clock: Any, make_app: Any
) -> None:
    app = make_app()
    runs: list[tuple[datetime, int]] = []
    gate = trio.Event()

    @app.task(retry=SmartRetry(2, initial_delay=5, jitter=False))
    async def flaky(context: JobContext = INJECT) -> None:
        runs.append((app.wall_clock.now(), context.attempt))
        if context.attempt == 1:
            await gate.wait()
            raise ValueError("first attempt fails")

    async with app:
        job = await flaky.schedule().cron("* * * * *", job_id="flaky")
        await trio.sleep(61)  # the 1 min run is under way
        await job.pause()
        gate.set()
        await trio.sleep(120)  # its retry (due at ~1:06) is held
        assert [attempt for _, attempt in runs] == [1]
        await job.resume()  # now 3:01: the retry runs at once, then the 4:00 slot
        await trio.sleep(60)
        assert job.status is JobStatus.SCHEDULED
    assert [attempt for _, attempt in runs] == [1, 2, 1]
    assert _close(runs[1][0], START + 3 * MINUTE + timedelta(seconds=1))
    assert _close(runs[2][0], START + 4 * MINUTE)
