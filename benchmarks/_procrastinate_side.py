"""procrastinate 3 (asyncio, psycopg) side of the PostgreSQL benchmarks (issue 9).

Run by ``run.py`` with the interpreter of the ``.bench/procrastinate-3`` virtualenv:
``python benchmarks/_procrastinate_side.py --metric pg_push --n 2000 --repeat 3``.

The app uses ``PsycopgConnector`` (its asyncio pool, default size) on the benchmark server,
in a fresh schema ``bench_procrastinate`` (``search_path``) where its own schema is
applied; the task is an ``async`` no-op taking one argument. Measured, every round kept:

* ``pg_push``: ``loop_jobs_per_s``, ``for i in range(n): await task.defer_async(i=i)``
  (no worker runs meanwhile); ``concurrent_jobs_per_s``, ``asyncio.gather`` of ``n``
  ``defer_async`` calls.
* ``pg_end_to_end``: ``jobs_per_s``, from the first of ``n`` jobs deferred at once
  (``asyncio.gather`` of ``defer_async``) until a worker (``run_worker_async(wait=False)``:
  it returns once the queue is empty) has run them all; ``worker_jobs_per_s``, the
  worker's part alone; ``loop_jobs_per_s``, the same with a loop of awaited
  ``defer_async`` (the table is emptied in between). The worker runs with
  ``concurrency=WORKER_CONCURRENCY`` (its docs: concurrency suits async tasks that wait
  on I/O) and ``listen_notify=False`` (nothing is deferred while it runs).

The jobs table is emptied between rounds (outside the timing).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from _common import Params, Registry, Values, now, per_round, settle_memory, side_main
from _pg_common import CONNINFO, connect, fresh_schema, server_settings

registry = Registry(side="procrastinate")
SCHEMA = f"bench_procrastinate_{os.getpid()}"  # per run: two runs at once do not clash
WARMUP_JOBS = 100
WORKER_CONCURRENCY = 10

try:
    import procrastinate
    import psycopg
except Exception as exc:  # reported as "unavailable", never a crash
    registry.unavailable = f"cannot import procrastinate/psycopg: {type(exc).__name__}: {exc}"


def _app() -> tuple[Any, Any]:
    connector = procrastinate.PsycopgConnector(
        conninfo=CONNINFO, kwargs={"options": f"-c search_path={SCHEMA}"}
    )
    app = procrastinate.App(connector=connector)

    @app.task(name="bench_noop")
    async def noop(i: int) -> None:
        return None

    return app, noop


async def _clear(app: Any) -> None:
    await app.connector.execute_query_async("TRUNCATE procrastinate_jobs CASCADE")


async def _defer_loop(task: Any, n: int) -> float:
    settle_memory()
    start = now()
    for i in range(n):
        await task.defer_async(i=i)
    return n / (now() - start)


async def _defer_concurrent(task: Any, n: int) -> float:
    settle_memory()
    start = now()
    await asyncio.gather(*(task.defer_async(i=i) for i in range(n)))
    return n / (now() - start)


async def _run_worker(app: Any) -> None:
    await app.run_worker_async(
        wait=False,
        concurrency=WORKER_CONCURRENCY,
        listen_notify=False,
        install_signal_handlers=False,
    )


async def _worker_round(app: Any, n: int, start: float, deferred: float) -> Values:
    await _run_worker(app)
    done = now()
    left = await app.connector.execute_query_one_async(
        "SELECT count(*) AS c FROM procrastinate_jobs WHERE status = 'todo'"
    )
    if left["c"]:
        raise RuntimeError(f"worker returned with {left['c']} jobs still to do")
    return {"jobs_per_s": n / (done - start), "worker_jobs_per_s": n / (done - deferred)}


async def _end_to_end(app: Any, task: Any, n: int) -> Values:
    settle_memory()
    start = now()
    await asyncio.gather(*(task.defer_async(i=i) for i in range(n)))
    concurrent = await _worker_round(app, n, start, now())
    await _clear(app)
    settle_memory()
    start = now()
    for i in range(n):
        await task.defer_async(i=i)
    loop = await _worker_round(app, n, start, now())
    return {**concurrent, "loop_jobs_per_s": loop["jobs_per_s"]}


def _run(p: Params, measure_round: Any) -> dict[str, object]:
    async def main() -> list[Values]:
        app, task = _app()
        async with app.open_async():
            await app.schema_manager.apply_schema_async()
            await measure_round(app, task, WARMUP_JOBS)
            rounds: list[Values] = []
            for _ in range(p.repeat):
                await _clear(app)
                rounds.append(await measure_round(app, task, p.n))
        return rounds

    with fresh_schema(psycopg, SCHEMA):
        with connect(psycopg) as conn:
            settings = server_settings(conn)
        rounds = asyncio.run(main())
    return per_round(rounds, n=p.n, worker_concurrency=WORKER_CONCURRENCY, **settings)


@registry.metric("pg_push")
def pg_push(p: Params) -> dict[str, object]:
    async def one(app: Any, task: Any, n: int) -> Values:
        loop = await _defer_loop(task, n)
        await _clear(app)
        return {"loop_jobs_per_s": loop, "concurrent_jobs_per_s": await _defer_concurrent(task, n)}

    return _run(p, one)


@registry.metric("pg_end_to_end")
def pg_end_to_end(p: Params) -> dict[str, object]:
    return _run(p, _end_to_end)


if __name__ == "__main__":
    sys.exit(side_main(registry))
