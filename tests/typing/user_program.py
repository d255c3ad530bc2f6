"""A small user program that ``mypy --strict`` must accept (see ``test_typing.py``).

It is type-checked, never run: it uses the library the way a user's code does (tasks of
each run mode, ``push``, ``schedule(...).push/.at/.delay/.cron``, ``await job``, routers,
inner and outer middleware, ``INJECT``, a lifespan), and ``assert_type`` pins the types
the user sees.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Coroutine
from datetime import datetime, timedelta
from typing import Any, assert_type

from jobify_trio import (
    INJECT,
    Cron,
    Job,
    JobContext,
    Jobify,
    JobRouter,
    MisfirePolicy,
    OuterContext,
    RunMode,
    SmartRetry,
    State,
    Task,
)
from jobify_trio.middleware import CallNext, CallNextOuter, QueueMiddleware
from jobify_trio.storage import SQLiteStorage


class Timing:
    async def __call__(self, call_next: CallNext, context: JobContext) -> Any:
        return await call_next(context)


class Refuse:
    async def __call__(self, call_next: CallNextOuter, context: OuterContext) -> Any:
        return await call_next(context)


@contextlib.asynccontextmanager
async def lifespan(app: Jobify) -> AsyncIterator[dict[str, Any]]:
    yield {"started": True}


app = Jobify(
    tz="UTC",
    storage=SQLiteStorage("jobs.db"),
    lifespan=lifespan,
    middleware=[Timing()],
    outer_middleware=[Refuse()],
)
router = JobRouter(prefix="billing", middleware=[QueueMiddleware()])
router.add_middleware(Timing())


@app.task
async def add(a: int, b: int) -> int:
    return a + b


@app.task(name="greet", retry=SmartRetry(retries=3), timeout=5.0)
def greet(name: str, *, punctuation: str = "!") -> str:
    return f"hello {name}{punctuation}"


@app.task(run_mode=RunMode.THREAD)
def blocking(path: str) -> bytes:
    return path.encode()


@app.task(run_mode=RunMode.PROCESS)
def crunch(n: int) -> float:
    return n / 3


@app.task(cron=Cron("*/5 * * * *", misfire_policy=MisfirePolicy.SKIP))
async def tick(context: JobContext = INJECT, state: State = INJECT) -> None:
    return None


@router.task
async def invoice(customer: str, amount: float) -> str:
    return f"{customer}: {amount}"


app.include_router(router)


async def main() -> None:
    as_task: Task[[int, int], Coroutine[Any, Any, int]] = add
    assert_type(greet("ada"), str)  # calling a task calls the function
    async with app:
        job = await add.push(1, 2)
        assert_type(job, Job[int])
        total: int = await job
        assert_type(await greet.push("ada", punctuation="?"), Job[str])
        data: bytes = await (await blocking.push("/tmp/x"))
        ratio: float = await (await crunch.schedule(9).delay(1.5))
        later = await invoice.schedule("acme", 12.5).at(datetime(2030, 1, 1), job_id="inv-1")
        assert_type(later, Job[str])
        soon = await greet.schedule("bob").delay(timedelta(seconds=2), replace=True)
        assert_type(soon, Job[str])
        nightly = await add.schedule(1, 1).cron("0 3 * * *", job_id="nightly")
        assert_type(nightly, Job[int])
        now = await add.schedule(2, 2).push(job_id="once", force=True)
        await now.wait()
        await now.cancel()
        print(as_task.name, total, data, ratio, later.result(), nightly.status)
