"""Timer precision, shared by every side (standard library only; importable by any venv).

``timer_precision``: ``TIMER_JOBS`` one-off jobs (default 1,000), each scheduled for an
exact wall-clock instant. The instants are spread evenly over ``TIMER_SPREAD`` real seconds
(default 3) starting ``TIMER_LEAD`` seconds (1) after scheduling begins, and are scheduled
in a shuffled order (fixed seed), so the scheduler's timer structure sees out-of-order
inserts. Each job records ``time.time()`` when its body starts; lateness is that start
minus its instant (real clock). Reported: p50, p99 and max lateness in ms, the earliest
start (negative = a job ran early), and how many jobs never started.

Each side passes ``schedule(i, when)`` (``when`` an aware UTC ``datetime``; the job must
call ``log.start(i)`` first thing) and its ``sleep(seconds)``.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from _common import Values, percentile

TIMER_JOBS = int(os.environ.get("BENCH_TIMER_JOBS", "1000"))
TIMER_SPREAD = float(os.environ.get("BENCH_TIMER_SPREAD", "3.0"))
TIMER_LEAD = 1.0
TIMER_GRACE = 5.0  # how long after the last instant a missing job is waited for
SEED = 20_240_601


class StartLog:
    """When each job started, by index (one dict store per job)."""

    def __init__(self) -> None:
        self.starts: dict[int, float] = {}

    def start(self, index: int) -> None:
        self.starts[index] = time.time()


def plan_instants(n: int, spread: float, first: float) -> list[float]:
    """``n`` epoch instants evenly spread over ``[first, first + spread)``."""
    step = spread / n
    return [first + i * step for i in range(n)]


def summarize(instants: list[float], log: StartLog, schedule_s: float) -> Values:
    """Lateness figures of the started jobs (ms), and how many never started."""
    late = sorted((log.starts[i] - t) * 1000.0 for i, t in enumerate(instants) if i in log.starts)
    if not late:
        return {"jobs": len(instants), "started": 0}
    return {
        "jobs": len(instants),
        "started": len(late),
        "missing": len(instants) - len(late),
        "spread_s": TIMER_SPREAD,
        "schedule_s": schedule_s,
        "lateness_p50_ms": percentile(late, 0.50),
        "lateness_p99_ms": percentile(late, 0.99),
        "lateness_max_ms": late[-1],
        "earliest_ms": late[0],
    }


async def measure_timers(
    schedule: Callable[[int, datetime], Awaitable[Any]],
    sleep: Callable[[float], Awaitable[Any]],
    log: StartLog,
) -> Values:
    """Schedule every job for its instant, wait until all ran (or the grace ran out)."""
    first = time.time() + TIMER_LEAD
    instants = plan_instants(TIMER_JOBS, TIMER_SPREAD, first)
    order = list(range(len(instants)))
    random.Random(SEED).shuffle(order)
    began = time.perf_counter()
    for i in order:
        await schedule(i, datetime.fromtimestamp(instants[i], tz=UTC))
    schedule_s = time.perf_counter() - began
    await sleep(max(0.0, instants[-1] - time.time()))
    deadline = instants[-1] + TIMER_GRACE
    while len(log.starts) < len(instants) and time.time() < deadline:
        await sleep(0.05)
    return summarize(instants, log, schedule_s)
