"""Durability metrics, Jobify 0.14.0 side (same measurements as ``_durable_trio.py``).

Jobify's ``SQLiteStorage`` already opens its file with WAL and ``synchronous=NORMAL``.
Restore rows are made from one row Jobify itself wrote, with the job id replaced.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from _common import Params, Registry, Values, now, settle_memory

RESTORE_ROWS_FULL = 100_000
TEMPLATE_ID = "TEMPLATEJOBID0"


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


def durable_throughput(p: Params) -> Values:
    n = p.n  # the same N as the jobify_trio side (rates depend on batch sizes)

    async def main(path: Path) -> Values:
        app, task = _app(path)
        loop: list[float] = []
        gather: list[float] = []
        async with app:
            for _ in range(min(p.repeat, 3)):
                settle_memory()
                start = now()
                for _ in range(n):
                    await task.push()
                await app.wait_all()
                loop.append(n / (now() - start))
                settle_memory()
                start = now()
                await asyncio.gather(*(task.push() for _ in range(n)))
                await app.wait_all()
                gather.append(n / (now() - start))
        return {
            "jobs_per_s": max(max(loop), max(gather)),
            "loop_jobs_per_s": max(loop),
            "concurrent_jobs_per_s": max(gather),
            "n": n,
        }

    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(main(Path(tmp) / "bench.db"))


def restore(p: Params) -> Values:
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
        times = []
        armed = 0
        for _ in range(max(1, min(p.repeat, 3))):
            elapsed, armed = asyncio.run(start_once(path))
            times.append(elapsed)
    return {"seconds": min(times), "rows": rows, "armed": armed}
