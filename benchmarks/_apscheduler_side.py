"""APScheduler 4 (pre-release) side of the benchmarks, run on trio through anyio.

Run by ``run.py`` with the interpreter of the ``.bench/apscheduler-4`` virtualenv (latest
``apscheduler>=4.0.0a1`` pre-release plus trio):
``python benchmarks/_apscheduler_side.py --metric throughput --n 10000 --repeat 5``.

The scheduler is ``AsyncScheduler`` with its defaults: ``MemoryDataStore``,
``LocalEventBroker``, ``max_concurrent_jobs=100``, the ``async`` job executor, all inside
``trio.run``. Each task is configured with ``max_running_jobs=None``: APScheduler 4's
default is 1 running job per task (``configure_task`` docs), which would run the no-op
jobs one at a time; ``None`` (the parameter is ``int | None``) lifts that limit. Measured:

* ``throughput``: ``add_job(task)`` ``n`` times (jobs run as soon as a worker slot is
  free), then wait until ``n`` ``JobReleased`` events arrived (a job is done when the
  data store has released it; results are not kept: ``result_expiration_time=0``).
* ``timer_precision``: ``add_schedule(task, DateTrigger(run_time))`` per job
  (``add_job`` has no trigger in APScheduler 4; a one-off timed job is a schedule with a
  ``DateTrigger``), see ``_timer_bench.py``.
"""

from __future__ import annotations

import sys
from typing import Any

from _common import Params, Registry, Values, now, per_round, settle_memory, side_main

registry = Registry(side="apscheduler")
WARMUP_JOBS = 100
NOOP_TASK = "bench:noop"
MAX_RUNNING_JOBS = None  # no per-task limit (APScheduler 4's default is 1)

try:
    import trio
    from apscheduler import AsyncScheduler, JobReleased
    from apscheduler.triggers.date import DateTrigger
except Exception as exc:  # reported as "unavailable", never a crash
    registry.unavailable = f"cannot import apscheduler/trio: {type(exc).__name__}: {exc}"


async def _noop() -> None:
    return None


class Completions:
    """Counts ``JobReleased`` events; ``expect(n)`` then ``wait()`` for ``n`` more."""

    def __init__(self) -> None:
        self.count = 0
        self.target = 0
        self.reached = trio.Event()

    def __call__(self, event: Any) -> None:
        self.count += 1
        if self.count >= self.target:
            self.reached.set()

    def expect(self, n: int) -> None:
        self.target = self.count + n
        self.reached = trio.Event()

    async def wait(self) -> None:
        await self.reached.wait()


async def _throughput_round(scheduler: Any, done: Completions, n: int) -> float:
    settle_memory()
    done.expect(n)
    start = now()
    for _ in range(n):
        await scheduler.add_job(NOOP_TASK)
    await done.wait()
    return n / (now() - start)


@registry.metric("throughput")
def throughput(p: Params) -> Values:
    async def main() -> Values:
        async with AsyncScheduler() as scheduler:
            await scheduler.configure_task(NOOP_TASK, func=_noop, max_running_jobs=MAX_RUNNING_JOBS)
            done = Completions()
            with scheduler.subscribe(done, {JobReleased}):
                await scheduler.start_in_background()
                await _throughput_round(scheduler, done, WARMUP_JOBS)
                rates = [await _throughput_round(scheduler, done, p.n) for _ in range(p.repeat)]
            await scheduler.stop()
        return per_round(
            [{"jobs_per_s": r} for r in rates],
            n=p.n,
            max_concurrent_jobs=scheduler.max_concurrent_jobs,
        )

    result: Values = trio.run(main)
    return result


@registry.metric("timer_precision")
def timer_precision(p: Params) -> Values:
    from _timer_bench import StartLog, measure_timers

    log = StartLog()

    async def started(i: int) -> None:
        log.start(i)

    async def main() -> Values:
        async with AsyncScheduler() as scheduler:
            await scheduler.configure_task(
                "bench:timer", func=started, max_running_jobs=MAX_RUNNING_JOBS
            )
            await scheduler.start_in_background()

            async def schedule(i: int, when: Any) -> Any:
                return await scheduler.add_schedule(
                    "bench:timer", DateTrigger(when), args=(i,), id=f"t{i}"
                )

            values: Values = await measure_timers(schedule, trio.sleep, log)
            await scheduler.stop()
        return values

    result: Values = trio.run(main)
    return result


if __name__ == "__main__":
    sys.exit(side_main(registry))
