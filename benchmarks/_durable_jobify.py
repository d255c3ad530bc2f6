"""Durability metrics, Jobify 0.14.0 side (same measurements as ``_durable_trio.py``).

``durable_throughput``: a push loop, :data:`PRODUCERS` concurrent producer tasks each
pushing its share in a loop, and (labelled "burst") ``asyncio.gather`` of all the pushes,
same rounds, same
warm-up and same one-argument no-op as the jobify_trio side, first on a SQLite file then
without storage, with the 1 ms canary (``asyncio.sleep``) during each durable round.

Jobify's ``SQLiteStorage`` already opens its file with WAL and ``synchronous=NORMAL``.
Restore rows are made from one row Jobify itself wrote, with the job id replaced.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from _common import PRODUCERS, Canary, Params, Registry, Values, now, per_round, settle_memory

RESTORE_ROWS_FULL = 100_000
TEMPLATE_ID = "TEMPLATEJOBID0"
WARMUP_JOBS = 100


def register_durable(registry: Registry) -> None:
    registry.metric("durable_throughput")(durable_throughput)
    registry.metric("restore")(restore)


def _app(path: Path) -> tuple[Any, Any]:
    from jobify import Jobify
    from jobify.storage import SQLiteStorage

    app = Jobify(storage=SQLiteStorage(path))

    async def noop() -> None:
        return None

    return app, app.task(name="bench:noop")(noop)


async def _loop(app: Any, task: Any, n: int) -> float:
    settle_memory()
    start = now()
    for i in range(n):
        await task.push(i)
    await app.wait_all()
    return n / (now() - start)


async def _concurrent(app: Any, task: Any, n: int) -> float:
    """:data:`PRODUCERS` tasks, each pushing its share of ``n`` in a loop."""

    async def producer(first: int) -> None:
        for i in range(first, n, PRODUCERS):
            await task.push(i)

    settle_memory()
    start = now()
    await asyncio.gather(*(producer(first) for first in range(PRODUCERS)))
    await app.wait_all()
    return n / (now() - start)


async def _burst(app: Any, task: Any, n: int) -> float:
    """Jobify's own method: ``asyncio.gather`` of n pushes, then ``wait_all``."""
    settle_memory()
    start = now()
    await asyncio.gather(*(task.push(i) for i in range(n)))
    await app.wait_all()
    return n / (now() - start)


async def _with_canary(measure: Any, *args: Any) -> tuple[float, Canary]:
    canary = Canary()
    probe = asyncio.create_task(canary.run(asyncio.sleep))
    try:
        rate: float = await measure(*args)
    finally:
        canary.stopped = True
        await probe
    return rate, canary


async def _rounds(path: Path | None, p: Params, prefix: str) -> list[Values]:
    from jobify import Jobify
    from jobify.storage import SQLiteStorage

    app = Jobify(storage=SQLiteStorage(path) if path is not None else False)

    async def noop(i: int) -> None:
        return None

    task = app.task(name="bench:noop")(noop)
    rounds: list[Values] = []
    async with app:
        await _loop(app, task, WARMUP_JOBS)
        for _ in range(p.repeat):
            values: Values = {}
            for method, measure in (
                ("loop", _loop),
                ("concurrent", _concurrent),
                ("burst", _burst),
            ):
                if path is not None:
                    rate, canary = await _with_canary(measure, app, task, p.n)
                    values.update(canary.summary(f"{prefix}_{method}"))
                else:
                    rate = await measure(app, task, p.n)
                values[f"{prefix}_{method}_jobs_per_s"] = rate
            rounds.append(values)
    return rounds


def durable_throughput(p: Params) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        durable = asyncio.run(_rounds(Path(tmp) / "bench.db", p, "durable"))
    plain = asyncio.run(_rounds(None, p, "plain"))
    rounds = [{**d, **pl} for d, pl in zip(durable, plain, strict=True)]
    return per_round(rounds, n=p.n)


def restore(p: Params) -> dict[str, object]:
    rows = RESTORE_ROWS_FULL if p.mem_n >= RESTORE_ROWS_FULL else p.mem_n

    async def template(path: Path) -> None:
        app, task = _app(path)
        async with app:
            await task.schedule().delay(3600, job_id=TEMPLATE_ID)

    async def start_once(path: Path) -> tuple[float, int]:
        app, _ = _app(path)
        start = now()
        async with app:
            elapsed = now() - start
            armed = len(app.get_active_jobs()) if hasattr(app, "get_active_jobs") else -1
        return elapsed, armed

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "restore.db"
        asyncio.run(template(path))
        with sqlite3.connect(path) as conn:
            cols = conn.execute("SELECT * FROM jobify_schedules").fetchall()[0]
            message: bytes = cols[2]
            conn.execute("DELETE FROM jobify_schedules")
            conn.executemany(
                "INSERT INTO jobify_schedules (job_id, name, message, status, next_run_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    (
                        f"job-{i}",
                        cols[1],
                        message.replace(TEMPLATE_ID.encode(), f"job-{i}".encode()),
                        cols[3],
                        cols[4],
                    )
                    for i in range(rows)
                ),
            )
        conn.close()
        rounds: list[Values] = []
        for _ in range(max(1, min(p.repeat, 3))):
            elapsed, armed = asyncio.run(start_once(path))
            rounds.append({"seconds": elapsed, "armed": armed})
    return per_round(rounds, rows=rows)
