"""PostgreSQL metrics, jobify_trio side (same measurements as ``_procrastinate_side.py``).

Registered on the side's registry by ``_trio_side.py`` (``register_pg(registry)``). The app
is ``Jobify(storage=PostgresStorage(CONNINFO, schema="bench_jobify_trio"))`` in a fresh
schema on the benchmark server; the task is an async no-op taking one argument. Skipped,
with the reason, while ``jobify_trio.storage`` has no ``PostgresStorage`` (issue 9), while
psycopg is not installed, or when the server does not answer.

* ``pg_push``: ``loop_jobs_per_s``, ``for i in range(n): await task.push(i)`` until the
  last push has returned (each returns once its row is committed; jobs run meanwhile);
  ``concurrent_jobs_per_s``, ``n`` pushes in one nursery until all have returned. Each
  round then waits for every job to finish, outside the timing.
* ``pg_end_to_end``: ``jobs_per_s``, from the first of ``n`` pushes made at once (one
  task each in a nursery; every push returns once its row is committed) until
  ``wait_all()`` returns (every job has run); ``loop_jobs_per_s``, the same with a loop
  of awaited pushes.
"""

from __future__ import annotations

import os
from typing import Any

from _common import Params, Registry, Skipped, Values, now, per_round, settle_memory
from _pg_common import CONNINFO, connect, fresh_schema, server_settings

SCHEMA = f"bench_jobify_trio_{os.getpid()}"  # per run: two runs at once do not clash
WARMUP_JOBS = 100


def register_pg(registry: Registry) -> None:
    registry.metric("pg_push")(pg_push)
    registry.metric("pg_end_to_end")(pg_end_to_end)


def _requirements() -> tuple[Any, Any]:
    """(PostgresStorage, psycopg), or :class:`Skipped` naming what is missing."""
    try:
        from jobify_trio.storage import PostgresStorage
    except ImportError as exc:
        raise Skipped("jobify_trio.storage has no PostgresStorage yet (issue 9)") from exc
    try:
        import psycopg
    except ImportError as exc:
        raise Skipped("psycopg is not installed (pip install -e '.[postgres]')") from exc
    return PostgresStorage, psycopg


async def _loop(task: Any, n: int) -> float:
    start = now()
    for i in range(n):
        await task.push(i)
    return n / (now() - start)


async def _concurrent(task: Any, n: int) -> float:
    import trio

    start = now()
    async with trio.open_nursery() as nursery:
        for i in range(n):
            nursery.start_soon(task.push, i)
    return n / (now() - start)


async def _push_round(app: Any, task: Any, n: int) -> Values:
    settle_memory()
    loop = await _loop(task, n)
    await app.wait_all()
    settle_memory()
    concurrent = await _concurrent(task, n)
    await app.wait_all()
    return {"loop_jobs_per_s": loop, "concurrent_jobs_per_s": concurrent}


async def _end_to_end_round(app: Any, task: Any, n: int) -> Values:
    settle_memory()
    start = now()
    await _concurrent(task, n)
    await app.wait_all()
    concurrent = n / (now() - start)
    settle_memory()
    start = now()
    for i in range(n):
        await task.push(i)
    await app.wait_all()
    return {"jobs_per_s": concurrent, "loop_jobs_per_s": n / (now() - start)}


def _run(p: Params, measure_round: Any) -> dict[str, object]:
    storage_class, psycopg = _requirements()
    import trio

    from jobify_trio import Jobify

    async def main() -> list[Values]:
        app = Jobify(storage=storage_class(CONNINFO, schema=SCHEMA))

        async def noop(i: int) -> None:
            return None

        task = app.task(name="bench:noop")(noop)
        async with app:
            await measure_round(app, task, WARMUP_JOBS)
            rounds: list[Values] = [await measure_round(app, task, p.n) for _ in range(p.repeat)]
        return rounds

    with fresh_schema(psycopg, SCHEMA):
        with connect(psycopg) as conn:
            settings = server_settings(conn)
        rounds: list[Values] = trio.run(main)
    return per_round(rounds, n=p.n, **settings)


def pg_push(p: Params) -> dict[str, object]:
    return _run(p, _push_round)


def pg_end_to_end(p: Params) -> dict[str, object]:
    return _run(p, _end_to_end_round)
