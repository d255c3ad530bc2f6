"""Cron jobs and misfire policies: what happens to the slots a slow run overlaps.

A ``* * * * *`` (every minute) sync job whose first run, for the 00:01 slot, takes 3.5
minutes: when it ends at 00:04:30, the slots 00:02, 00:03 and 00:04 have been missed.
The job's ``misfire_policy`` decides what to do about them (runs of one cron job never
overlap, and the schedule stays on its grid):

* ``ONCE`` (default): one catch-up run now, standing for 00:02; then 00:05, 00:06...
* ``SKIP``: no catch-up run; next run at 00:05.
* ``ALL``: the three missed slots back to back, now; then 00:05.
* ``GRACE(timedelta(minutes=2))``: the missed slots at most two minutes old (00:03,
  00:04), back to back; then 00:05.

The four demos run one after the other, ten minutes apart (SKIP's slow run is for
00:11, ALL's for 00:21...), each with ``max_runs=5`` so that it ends by itself.

Then: ``max_failures`` ending a cron job that keeps failing (PERMANENTLY_FAILED),
``replace=True`` re-scheduling a dynamic cron under the same ``job_id`` (the same
:class:`~jobify_trio.Job` gets the new schedule), and a declarative
``@app.task(cron=...)`` that the app starts by itself under the id ``"cron:<name>"``.

Each line shows the wall time a run started and the slot it stands for.

The demo covers two hours of schedules, so it always runs on **virtual time**: trio's
``MockClock(autojump_threshold=0)`` jumps to the next deadline whenever every task waits,
and a :class:`~jobify_trio.testing.VirtualWallClock` makes the wall clock follow it. It
prints the same lines on every run and exits in a fraction of a second. In your own app,
drop the ``clock=`` and ``wall_clock=`` arguments and the same code runs on real time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import trio
import trio.testing

from jobify_trio import INJECT, Cron, Job, Jobify, MisfirePolicy
from jobify_trio.testing import VirtualWallClock

START = datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday; the app starts at 00:00:00

POLICIES = {
    "ONCE": MisfirePolicy.ONCE,
    "SKIP": MisfirePolicy.SKIP,
    "ALL": MisfirePolicy.ALL,
    "GRACE(2 min)": MisfirePolicy.GRACE(timedelta(minutes=2)),
}


def hms(moment: datetime) -> str:
    return moment.strftime("%H:%M:%S")


def make_app(**options: Any) -> Jobify:
    """The app and its tasks (``options``: ``wall_clock``, ``storage``... for ``Jobify``)."""
    app = Jobify(**options)  # tz defaults to UTC
    first_runs: set[str] = set()

    def log(job: Job[Any], text: str) -> None:
        # job.exec_at is the slot this run stands for; the wall clock says when it runs.
        now = app.wall_clock.now()
        print(f"  {hms(now)}  slot {job.exec_at.strftime('%H:%M')}  {text}")

    @app.task(name="sync")
    async def sync(policy: str, job: Job[Any] = INJECT) -> None:
        if policy not in first_runs:  # the first run is slow: it overlaps 3.5 slots
            first_runs.add(policy)
            log(job, "starts, takes 3.5 minutes")
            await trio.sleep(3.5 * 60)
            return
        log(job, "runs")

    @app.task(name="flaky_export")
    async def flaky_export(job: Job[Any] = INJECT) -> None:
        log(job, "fails")
        raise ConnectionError("export target unreachable")

    @app.task(name="digest")
    async def digest(kind: str, job: Job[Any] = INJECT) -> None:
        log(job, f"{kind} digest")

    # Declarative: the app starts it by itself, as "cron:cleanup". A real nightly job
    # would have no max_runs; here one run lets the demo end.
    @app.task(name="cleanup", cron=Cron("0 2 * * *", max_runs=1))
    async def cleanup(job: Job[Any] = INJECT) -> None:
        log(job, "nightly cleanup (declarative cron)")

    return app


async def run_to_the_end(job: Job[Any]) -> None:
    """A cron job's ``wait()`` returns after each run; loop until the job has ended."""
    while not job.is_done():
        await job.wait()


async def next_ten_minutes(app: Jobify) -> None:
    """Sleep until the wall clock shows the next multiple of ten minutes."""
    now = app.wall_clock.now()
    await trio.sleep(600 - (now.minute % 10 * 60 + now.second + now.microsecond / 1e6))


async def misfire_demo(app: Jobify, name: str) -> None:
    policy = POLICIES[name]
    print(f"{name}:")
    cron = Cron("* * * * *", misfire_policy=policy, max_runs=5)
    job = await app.tasks["sync"].schedule(name).cron(cron, job_id=f"sync-{name}")
    await run_to_the_end(job)


async def main(app: Jobify) -> None:
    async with app:
        cleanup = app.find_job("cron:cleanup")
        assert cleanup is not None
        print(f"declarative cron {cleanup.id!r} first runs at {hms(cleanup.exec_at)}")

        for name in POLICIES:  # one after the other, so their lines do not interleave
            await misfire_demo(app, name)
            await next_ten_minutes(app)

        print("max_failures=3:")
        every_5_min = Cron("*/5 * * * *", max_failures=3)  # max_runs=None: no limit
        failing = await app.tasks["flaky_export"].schedule().cron(every_5_min, job_id="export")
        await run_to_the_end(failing)
        print(f"  -> {failing.status.value}")  # three failures in a row end the job
        await next_ten_minutes(app)

        print("replace=True:")
        digest = app.tasks["digest"]
        daily = await digest.schedule("daily").cron("0 9 * * *", job_id="digest")
        print(f"  'digest' next at {daily.exec_at:%a %H:%M}")
        frequent = await digest.schedule("frequent").cron(
            Cron("*/20 * * * *", max_runs=2), job_id="digest", replace=True
        )
        print(f"  replaced: same job: {frequent is daily}, next at {frequent.exec_at:%a %H:%M}")
        await run_to_the_end(frequent)

        await app.wait_all()  # until the declarative cleanup has had its run
    print("all cron jobs ended")


if __name__ == "__main__":
    virtual = make_app(storage=False, wall_clock=VirtualWallClock(START))
    trio.run(main, virtual, clock=trio.testing.MockClock(autojump_threshold=0))
