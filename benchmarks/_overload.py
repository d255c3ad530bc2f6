"""Overload: push far more slow jobs than can run at once; peak memory and total time.

The same measurement for both systems. Each job sleeps ``NAP`` seconds, so the pusher is
always far ahead of the jobs. jobify_trio applies backpressure (at most
``max_concurrency`` attempts, the pusher waits); Jobify 0.14.0 creates one asyncio task
per job. Reported: growth of the peak RSS over the RSS before pushing, and jobs/s.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from _common import Values, now, rss_bytes, settle_memory

NAP = 0.2


def peak_rss_bytes() -> int:
    """Peak resident set size of this process (VmHWM on Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss_bytes()


async def measure_overload(app: Any, push: Callable[[], Awaitable[Any]], jobs: int) -> Values:
    """Push ``jobs`` sleeping jobs as fast as the system accepts them, then wait for all."""
    async with app:
        settle_memory()
        before = rss_bytes()
        start = now()
        for _ in range(jobs):
            await push()
        pushed = now() - start
        await app.wait_all()
        elapsed = now() - start
    peak = peak_rss_bytes()
    return {
        "jobs": jobs,
        "peak_growth_bytes": peak - before,
        "peak_growth_mb": (peak - before) / 2**20,
        "push_seconds": pushed,
        "jobs_per_s": jobs / elapsed,
    }
