"""Cron benchmarks shared by both sides (standard library only; importable by Jobify's venv).

``cron_fire``: ``CRON_JOBS`` cron jobs of ``* * * * * * *`` (every second) in one app,
measured for ``BENCH_CRON_SECONDS`` real seconds (default 10): fires/s, p50/p99 lateness
of each fire against its slot (real clock: a fire at wall time ``t`` belongs to the slot
``floor(t)``), and process CPU time per fire.

``cron_idle``: ``CRON_JOBS`` cron jobs due next year, then ``BENCH_IDLE_SECONDS`` real
seconds (default 60) of doing nothing: the process CPU time spent (no polling => ~0).

Each side gives an ``Adapter``: ``open_app()`` as an async context manager yielding a
``schedule(i, expression)`` coroutine function, and ``sleep(seconds)``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from _common import Values, percentile

CRON_JOBS = int(os.environ.get("BENCH_CRON_JOBS", "10000"))
EVERY_SECOND = "* * * * * * *"
NEXT_YEAR = f"0 0 1 1 * {time.gmtime().tm_year + 1}"


def fire_seconds() -> float:
    return float(os.environ.get("BENCH_CRON_SECONDS", "10"))


def idle_seconds() -> float:
    return float(os.environ.get("BENCH_IDLE_SECONDS", "60"))


class FireLog:
    """What each fire records: its real wall time (cheap: one append)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def fire(self) -> None:
        self.times.append(time.time())


def summarize_fires(log: FireLog, start: float, end: float, cpu: float) -> Values:
    """Fires whose slot lies in [start, end): rate, lateness p50/p99 (ms), CPU per fire."""
    late = [(t - math.floor(t)) * 1000.0 for t in log.times if start <= math.floor(t) < end]
    if not late:
        return {"fires": 0, "fires_per_s": 0.0}
    ordered = sorted(late)
    return {
        "jobs": CRON_JOBS,
        "seconds": end - start,
        "fires": len(late),
        "fires_per_s": len(late) / (end - start),
        "expected_fires_per_s": float(CRON_JOBS),
        "lateness_p50_ms": percentile(ordered, 0.50),
        "lateness_p99_ms": percentile(ordered, 0.99),
        "lateness_max_ms": ordered[-1],
        "cpu_us_per_fire": cpu / len(late) * 1e6,
    }


async def measure_fires(
    schedule: Callable[[int, str], Awaitable[Any]],
    sleep: Callable[[float], Awaitable[None]],
    log: FireLog,
) -> Values:
    """Schedule the jobs, skip two warm-up seconds, then measure whole seconds."""
    created = time.perf_counter()
    for i in range(CRON_JOBS):
        await schedule(i, EVERY_SECOND)
    create_s = time.perf_counter() - created
    start = math.floor(time.time()) + 3  # first measured slot
    await sleep(start - time.time())
    cpu0 = time.process_time()
    end = start + int(fire_seconds())
    await sleep(end - time.time())
    cpu = time.process_time() - cpu0
    await sleep(0.9)  # let the fires of the last measured slot finish being logged
    values = summarize_fires(log, start, end, cpu)
    values["create_per_s"] = CRON_JOBS / create_s
    return values


async def measure_idle(
    schedule: Callable[[int, str], Awaitable[Any]], sleep: Callable[[float], Awaitable[None]]
) -> Values:
    """Schedule jobs due next year, then measure the CPU used while idle."""
    for i in range(CRON_JOBS):
        await schedule(i, NEXT_YEAR)
    await sleep(1.0)
    seconds = idle_seconds()
    cpu0 = time.process_time()
    await sleep(seconds)
    cpu = time.process_time() - cpu0
    return {"jobs": CRON_JOBS, "seconds": seconds, "idle_cpu_ms": cpu * 1000.0}
