"""Pipeline metrics, Jobify 0.14.0 side (same measurements as ``_pipeline_trio.py``).

Jobify logs a warning for every retry; logging is switched off for ``throughput_retry``
so that Jobify is measured at its fastest. Each round is measured both as a plain push
loop and as Jobify's own ``asyncio.gather`` of pushes; a round's figure is the faster of
the two in that round, as for the plain throughput metric.
"""

from __future__ import annotations

import asyncio
from typing import Any

from _common import Params, Registry, Values, now, per_round, settle_memory


def register_pipeline(registry: Registry) -> None:
    registry.metric("throughput_middleware")(throughput_middleware)
    registry.metric("throughput_retry")(throughput_retry)


class PassThrough:
    async def __call__(self, call_next: Any, context: Any) -> Any:
        return await call_next(context)


async def _round(app: Any, task: Any, n: int, base: int, args: Any, gather: bool) -> float:
    settle_memory()
    start = now()
    if gather:
        await asyncio.gather(*(task.push(*args(base + i)) for i in range(n)))
    else:
        for i in range(n):
            await task.push(*args(base + i))
    await app.wait_all()
    return n / (now() - start)


async def _rounds(app: Any, task: Any, p: Params, args: Any) -> Values:
    loop: list[float] = []
    gather: list[float] = []
    async with app:
        for _ in range(100):  # warm up
            await task.push(*args(-1))
        await app.wait_all()
        for r in range(p.repeat):
            loop.append(await _round(app, task, p.n, 2 * r * p.n, args, gather=False))
            gather.append(await _round(app, task, p.n, (2 * r + 1) * p.n, args, gather=True))
    rounds: list[Values] = [
        {"jobs_per_s": max(lo, ga), "loop_jobs_per_s": lo, "gather_jobs_per_s": ga}
        for lo, ga in zip(loop, gather, strict=True)
    ]
    return per_round(rounds, n=p.n)


def throughput_middleware(p: Params) -> Values:
    from jobify import Jobify
    from jobify.middleware import QueueMiddleware

    mws = [PassThrough(), PassThrough(), PassThrough(), QueueMiddleware(workers=100)]
    app = Jobify(storage=False, middleware=mws)

    async def noop() -> None:
        return None

    task = app.task(name="bench:noop")(noop)
    return asyncio.run(_rounds(app, task, p, lambda i: ()))


def throughput_retry(p: Params) -> Values:
    import logging

    from jobify import Jobify, SmartRetry

    logging.disable(logging.CRITICAL)  # one log record per retry would dominate the cost

    app = Jobify(storage=False)
    failed: set[int] = set()

    async def fails_once(i: int) -> None:
        if i not in failed:
            failed.add(i)
            raise ValueError(i)

    task = app.task(name="bench:fails_once", retry=SmartRetry(retries=1, initial_delay=0))(
        fails_once
    )
    return asyncio.run(_rounds(app, task, p, lambda i: (i,)))
