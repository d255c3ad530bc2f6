"""Pipeline metrics, jobify_trio side: push throughput through middleware, and with a
retry of every job (same measurements as ``_pipeline_jobify.py``).

* ``throughput_middleware``: three pass-through inner middlewares and a
  ``QueueMiddleware(workers=100)``, ``n`` pushes then ``wait_all``.
* ``throughput_retry``: ``retry=SmartRetry(retries=1, initial_delay=0)`` and every job
  fails once, so each job runs twice.
"""

from __future__ import annotations

from typing import Any

from _common import Params, Registry, Values, now, per_round, settle_memory


def register_pipeline(registry: Registry) -> None:
    registry.metric("throughput_middleware")(throughput_middleware)
    registry.metric("throughput_retry")(throughput_retry)


class PassThrough:
    async def __call__(self, call_next: Any, context: Any) -> Any:
        return await call_next(context)


async def _rounds(app: Any, task: Any, p: Params, args: Any) -> Values:
    rates: list[float] = []
    async with app:
        for _ in range(100):  # warm up
            await task.push(*args(-1))
        await app.wait_all()
        for r in range(p.repeat):
            settle_memory()
            start = now()
            for i in range(p.n):
                await task.push(*args(r * p.n + i))
            await app.wait_all()
            rates.append(p.n / (now() - start))
    return per_round([{"jobs_per_s": r} for r in rates], n=p.n)


def throughput_middleware(p: Params) -> Values:
    import trio

    from jobify_trio import Jobify
    from jobify_trio.middleware import QueueMiddleware

    mws = [PassThrough(), PassThrough(), PassThrough(), QueueMiddleware(workers=100)]
    app = Jobify(storage=False, middleware=mws)

    async def noop() -> None:
        return None

    task = app.task(name="bench:noop")(noop)
    result: Values = trio.run(_rounds, app, task, p, lambda i: ())
    return result


def throughput_retry(p: Params) -> Values:
    import trio

    from jobify_trio import Jobify, SmartRetry

    app = Jobify(storage=False)
    failed: set[int] = set()

    async def fails_once(i: int) -> None:
        if i not in failed:
            failed.add(i)
            raise ValueError(i)

    task = app.task(name="bench:fails_once", retry=SmartRetry(retries=1, initial_delay=0))(
        fails_once
    )
    result: Values = trio.run(_rounds, app, task, p, lambda i: (i,))
    return result
