"""APScheduler 4 on PostgreSQL: the end-to-end peer of the PostgreSQL benchmarks (issue 9).

Run by ``run.py`` with the interpreter of the ``.bench/apscheduler-4-pg`` virtualenv
(``apscheduler==4.0.0a6``, SQLAlchemy, asyncpg, psycopg, as its docs list for the
SQLAlchemy data store): ``python benchmarks/_apscheduler_pg_side.py --metric pg_end_to_end``.

The scheduler is ``AsyncScheduler(SQLAlchemyDataStore(engine, schema="bench_apscheduler"))``
with an asyncpg engine (``postgresql+asyncpg://``) on the benchmark server, its default
``LocalEventBroker`` and ``max_concurrent_jobs=100``, on asyncio (asyncpg does not run
under trio). The task is an ``async`` no-op configured with ``max_running_jobs=None`` (as
on the in-memory APScheduler side: its default is one running job per task).

* ``pg_end_to_end``: ``jobs_per_s``, from the first of ``n`` ``add_job(task, args=(i,))``
  calls made at once (``asyncio.gather``; the scheduler processes jobs meanwhile, as
  jobify_trio does) until ``n`` ``JobReleased`` events arrived (a job is done once the
  data store released it); ``loop_jobs_per_s``, the same with a loop of awaited calls.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from _common import Params, Registry, Values, now, per_round, settle_memory, side_main
from _pg_common import CONNINFO, connect, fresh_schema, server_settings

registry = Registry(side="apscheduler_pg")
SCHEMA = f"bench_apscheduler_{os.getpid()}"  # per run: two runs at once do not clash
WARMUP_JOBS = 100
NOOP_TASK = "bench:noop"

try:
    import psycopg
    from apscheduler import AsyncScheduler, JobReleased
    from apscheduler.datastores.sqlalchemy import SQLAlchemyDataStore
    from sqlalchemy.ext.asyncio import create_async_engine
except Exception as exc:  # reported as "unavailable", never a crash
    registry.unavailable = f"cannot import apscheduler/sqlalchemy: {type(exc).__name__}: {exc}"


async def noop(i: int) -> None:
    return None


class Completions:
    """Counts ``JobReleased`` events; ``expect(n)`` then ``wait()`` for ``n`` more."""

    def __init__(self) -> None:
        self.count = 0
        self.target = 0
        self.reached = asyncio.Event()

    def __call__(self, event: Any) -> None:
        self.count += 1
        if self.count >= self.target:
            self.reached.set()

    def expect(self, n: int) -> None:
        self.target = self.count + n
        self.reached = asyncio.Event()


async def _round(scheduler: Any, done: Completions, n: int) -> Values:
    settle_memory()
    done.expect(n)
    start = now()
    await asyncio.gather(*(scheduler.add_job(NOOP_TASK, args=(i,)) for i in range(n)))
    await done.reached.wait()
    concurrent = n / (now() - start)
    settle_memory()
    done.expect(n)
    start = now()
    for i in range(n):
        await scheduler.add_job(NOOP_TASK, args=(i,))
    await done.reached.wait()
    return {"jobs_per_s": concurrent, "loop_jobs_per_s": n / (now() - start)}


@registry.metric("pg_end_to_end")
def pg_end_to_end(p: Params) -> dict[str, object]:
    url = CONNINFO.replace("postgresql://", "postgresql+asyncpg://", 1)

    async def main() -> list[Values]:
        engine = create_async_engine(url)
        try:
            store = SQLAlchemyDataStore(engine, schema=SCHEMA)
            async with AsyncScheduler(store) as scheduler:
                await scheduler.configure_task(NOOP_TASK, func=noop, max_running_jobs=None)
                done = Completions()
                with scheduler.subscribe(done, {JobReleased}):
                    await scheduler.start_in_background()
                    await _round(scheduler, done, WARMUP_JOBS)
                    rates = [await _round(scheduler, done, p.n) for _ in range(p.repeat)]
                await scheduler.stop()
        finally:
            await engine.dispose()
        return rates

    with fresh_schema(psycopg, SCHEMA):
        with connect(psycopg) as conn:
            settings = server_settings(conn)
        rounds = asyncio.run(main())
    return per_round(rounds, n=p.n, max_concurrent_jobs=100, **settings)


if __name__ == "__main__":
    sys.exit(side_main(registry))
