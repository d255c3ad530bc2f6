"""jobify_trio side of the benchmarks (same measurements as ``_jobify_side.py``).

Run by ``run.py`` with the current interpreter and the repository on ``PYTHONPATH``:
``python benchmarks/_trio_side.py --metric throughput --n 10000 --repeat 5``.
While jobify_trio cannot be imported (or lacks a name used here) every metric reports
"unavailable" or "error" instead of failing the run.
"""

from __future__ import annotations

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

registry = Registry(side="jobify_trio")
WARMUP_JOBS = 100

try:
    import trio

    from jobify_trio import Jobify
except Exception as exc:  # reported as "unavailable", never a crash
    registry.unavailable = f"cannot import jobify_trio: {type(exc).__name__}: {exc}"


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


async def _throughput_round(app: Any, task: Any, n: int) -> float:
    """Push ``n`` jobs one after another, then wait for all of them."""
    settle_memory()
    start = now()
    for _ in range(n):
        await task.push()
    await app.wait_all()
    return n / (now() - start)


@registry.metric("throughput")
def throughput(p: Params) -> Values:
    async def main() -> Values:
        app, task = _make_app()
        async with app:
            await _warm_up(app, task)
            rates = [await _throughput_round(app, task, p.n) for _ in range(p.repeat)]
        return per_round([{"jobs_per_s": r} for r in rates], n=p.n)

    result: Values = trio.run(main)
    return result


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

    result: Values = trio.run(main)
    return result


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

    result: Values = trio.run(main)
    return result


from _durable_trio import register_durable  # noqa: E402

register_durable(registry)


def _cron_app(log: Any) -> tuple[Any, Any]:
    try:
        app = Jobify(storage=False)
    except TypeError:  # a build without storage
        app = Jobify()

    async def tick() -> None:
        log.fire()

    return app, app.task(name="bench:tick")(tick)


def _run_cron(measure: Any, log: Any) -> Values:
    from _cron_bench import FireLog

    fire_log = log if log is not None else FireLog()
    app, task = _cron_app(fire_log)

    async def main() -> Values:
        async def schedule(i: int, expression: str) -> Any:
            return await task.schedule().cron(expression, job_id=f"c{i}")

        async with app:
            values: Values = await measure(schedule, trio.sleep)
        return values

    result: Values = trio.run(main)
    return result


@registry.metric("cron_fire")
def cron_fire(p: Params) -> Values:
    from _cron_bench import FireLog, measure_fires

    log = FireLog()
    return _run_cron(lambda s, sl: measure_fires(s, sl, log), log)


@registry.metric("cron_idle")
def cron_idle(p: Params) -> Values:
    from _cron_bench import measure_idle

    return _run_cron(measure_idle, None)


from _pipeline_trio import register_pipeline  # noqa: E402

register_pipeline(registry)

from _pg_trio import register_pg  # noqa: E402

register_pg(registry)

from _pg_multi import register_multi  # noqa: E402

register_multi(registry)


@registry.metric("overload")
def overload(p: Params) -> Values:
    from _overload import NAP, measure_overload

    app = Jobify(storage=False)

    async def nap() -> None:
        await trio.sleep(NAP)

    task = app.task(name="bench:nap")(nap)
    result: Values = trio.run(measure_overload, app, task.push, p.mem_n * 5)
    return result


@registry.metric("timer_precision")
def timer_precision(p: Params) -> Values:
    from _timer_bench import StartLog, measure_timers

    log = StartLog()
    app = Jobify(storage=False)

    async def started(i: int) -> None:
        log.start(i)

    task = app.task(name="bench:timer")(started)

    async def main() -> Values:
        async def schedule(i: int, when: Any) -> Any:
            return await task.schedule(i).at(when)

        async with app:
            values: Values = await measure_timers(schedule, trio.sleep, log)
        return values

    result: Values = trio.run(main)
    return result


if __name__ == "__main__":
    sys.exit(side_main(registry))
