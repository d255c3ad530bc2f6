"""Jobify 0.14.0 (asyncio) side of the benchmarks.

Run by ``run.py`` with the interpreter of the ``.bench/jobify-0.14.0`` virtualenv:
``python benchmarks/_jobify_side.py --metric throughput --n 10000 --repeat 5``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from _common import (
    Params,
    Registry,
    Values,
    latency_summary,
    now,
    per_round,
    rss_bytes,
    settle_memory,
    side_main,
)

registry = Registry(side="jobify")
WARMUP_JOBS = 100

try:
    from jobify import Jobify
except Exception as exc:  # reported as "unavailable", never a crash
    registry.unavailable = f"cannot import jobify: {type(exc).__name__}: {exc}"


def _make_app() -> tuple[Any, Any]:
    app = Jobify(storage=False)

    async def noop() -> None:
        return None

    task = app.task(name="bench:noop")(noop)
    return app, task


async def _warm_up(app: Any, task: Any) -> None:
    for _ in range(WARMUP_JOBS):
        await task.push()
    await app.wait_all()


async def _throughput_loop(app: Any, task: Any, n: int) -> float:
    """Push ``n`` jobs one after another, then wait for all of them."""
    settle_memory()
    start = now()
    for _ in range(n):
        await task.push()
    await app.wait_all()
    return n / (now() - start)


async def _throughput_gather(app: Any, task: Any, n: int) -> float:
    """Jobify's own benchmark: ``asyncio.gather`` of ``n`` pushes, then ``wait_all``."""
    settle_memory()
    start = now()
    await asyncio.gather(*(task.push() for _ in range(n)))
    await app.wait_all()
    return n / (now() - start)


@registry.metric("throughput")
def throughput(p: Params) -> Values:
    async def main() -> Values:
        app, task = _make_app()
        loop_rates: list[float] = []
        gather_rates: list[float] = []
        async with app:
            await _warm_up(app, task)
            for _ in range(p.repeat):
                loop_rates.append(await _throughput_loop(app, task, p.n))
                gather_rates.append(await _throughput_gather(app, task, p.n))
        # Jobify's figure of a round is the faster of its two methods in that round.
        rounds: list[Values] = [
            {"jobs_per_s": max(lo, ga), "loop_jobs_per_s": lo, "gather_jobs_per_s": ga}
            for lo, ga in zip(loop_rates, gather_rates, strict=True)
        ]
        return per_round(rounds, n=p.n)

    return asyncio.run(main())


@registry.metric("latency")
def latency(p: Params) -> Values:
    async def one_round(task: Any, n: int) -> Values:
        settle_memory()
        samples: list[int] = []
        clock = time.perf_counter_ns
        for _ in range(n):
            start = clock()
            job = await task.push()
            await job.wait()
            samples.append(clock() - start)
        return latency_summary(samples)

    async def main() -> Values:
        app, task = _make_app()
        async with app:
            await _warm_up(app, task)
            rounds = [await one_round(task, p.n) for _ in range(p.repeat)]
        return per_round(rounds, n=p.n)

    return asyncio.run(main())


@registry.metric("memory_delayed")
def memory_delayed(p: Params) -> Values:
    async def main() -> Values:
        app, task = _make_app()
        async with app:
            await task.schedule().delay(3600)  # first-use allocations stay out of the delta
            settle_memory()
            before = rss_bytes()
            start = now()
            for _ in range(p.mem_n):
                await task.schedule().delay(3600)
            elapsed = now() - start
            settle_memory()
            after = rss_bytes()
            pending = len(app.get_active_jobs())
        return {
            "bytes_per_job": (after - before) / p.mem_n,
            "rss_growth_bytes": after - before,
            "jobs": p.mem_n,
            "pending_seen": pending,
            "schedule_per_s": p.mem_n / elapsed,
        }

    return asyncio.run(main())


from _durable_jobify import register_durable  # noqa: E402

register_durable(registry)


def _run_cron(measure: Any, log: Any) -> Values:
    from _cron_bench import FireLog

    fire_log = log if log is not None else FireLog()

    async def main() -> Values:
        app = Jobify(storage=False)

        async def tick() -> None:
            fire_log.fire()

        task = app.task(name="bench:tick")(tick)

        async def schedule(i: int, expression: str) -> Any:
            return await task.schedule().cron(expression, job_id=f"c{i}")

        async with app:
            values: Values = await measure(schedule, asyncio.sleep)
        return values

    return asyncio.run(main())


@registry.metric("cron_fire")
def cron_fire(p: Params) -> Values:
    from _cron_bench import FireLog, measure_fires

    log = FireLog()
    return _run_cron(lambda s, sl: measure_fires(s, sl, log), log)


@registry.metric("cron_idle")
def cron_idle(p: Params) -> Values:
    from _cron_bench import measure_idle

    return _run_cron(measure_idle, None)


from _pipeline_jobify import register_pipeline  # noqa: E402

register_pipeline(registry)


@registry.metric("overload")
def overload(p: Params) -> Values:
    from _overload import NAP, measure_overload

    app = Jobify(storage=False)

    async def nap() -> None:
        await asyncio.sleep(NAP)

    task = app.task(nap, name="bench:nap")
    return asyncio.run(measure_overload(app, task.push, p.mem_n * 5))


@registry.metric("timer_precision")
def timer_precision(p: Params) -> Values:
    from _timer_bench import StartLog, measure_timers

    log = StartLog()

    async def main() -> Values:
        app = Jobify(storage=False)

        async def started(i: int) -> None:
            log.start(i)

        task = app.task(started, name="bench:timer")

        async def schedule(i: int, when: Any) -> Any:
            return await task.schedule(i).at(when)

        async with app:
            values: Values = await measure_timers(schedule, asyncio.sleep, log)
        return values

    return asyncio.run(main())


if __name__ == "__main__":
    sys.exit(side_main(registry))
