"""Durability metrics, jobify_trio side: durable push throughput and restore time.

Registered on the side's registry by ``_trio_side.py`` (``register_durable(registry)``).
Both use a real SQLite file in a temporary directory (WAL, ``synchronous=NORMAL``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from _common import Params, Registry, Values, now, settle_memory

RESTORE_ROWS_FULL = 100_000


def register_durable(registry: Registry) -> None:
    registry.metric("durable_throughput")(durable_throughput)
    registry.metric("restore")(restore)


async def _loop(app: Any, task: Any, n: int) -> float:
    settle_memory()
    start = now()
    for _ in range(n):
        await task.push()
    await app.wait_all()
    return n / (now() - start)


async def _concurrent(app: Any, task: Any, n: int) -> float:
    """Like Jobify's own method (``asyncio.gather`` of n pushes): n concurrent pushes."""
    import trio

    settle_memory()
    start = now()
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(task.push)
    await app.wait_all()
    return n / (now() - start)


def _rates(storage: Any, p: Params) -> dict[str, float]:
    import trio

    from jobify_trio import Jobify

    async def main() -> dict[str, float]:
        app = Jobify(storage=storage)

        async def noop() -> None:
            return None

        task = app.task(name="bench:noop")(noop)
        loop: list[float] = []
        conc: list[float] = []
        async with app:
            await _loop(app, task, 100)
            for _ in range(p.repeat):
                loop.append(await _loop(app, task, p.n))
                conc.append(await _concurrent(app, task, p.n))
        return {"loop": max(loop), "concurrent": max(conc)}

    result: dict[str, float] = trio.run(main)
    return result


def durable_throughput(p: Params) -> Values:
    from jobify_trio.storage import SQLiteStorage

    with tempfile.TemporaryDirectory() as tmp:
        durable = _rates(SQLiteStorage(Path(tmp) / "bench.db"), p)
    plain = _rates(False, p)
    return {
        "jobs_per_s": max(durable.values()),
        "loop_jobs_per_s": durable["loop"],
        "concurrent_jobs_per_s": durable["concurrent"],
        "nondurable_loop_jobs_per_s": plain["loop"],
        "nondurable_concurrent_jobs_per_s": plain["concurrent"],
        "pct_of_nondurable_same_method": 100
        * max(durable["loop"] / plain["loop"], durable["concurrent"] / plain["concurrent"]),
        "n": p.n,
    }


def restore(p: Params) -> Values:
    import trio

    from jobify_trio import Jobify
    from jobify_trio.serializers import ExtendedJSONSerializer, encode_call_arguments
    from jobify_trio.storage import SQLiteStorage, StoredJob, Trigger

    rows = RESTORE_ROWS_FULL if p.mem_n >= RESTORE_ROWS_FULL else p.mem_n
    arguments = encode_call_arguments(
        ExtendedJSONSerializer(), task_name="bench:noop", args=(), kwargs={}
    )

    async def seed(path: Path) -> None:
        from datetime import UTC, datetime, timedelta

        storage = SQLiteStorage(path)
        await storage.startup()
        later = datetime.now(UTC) + timedelta(hours=1)
        batch = [
            StoredJob(
                job_id=f"job-{i}",
                task_name="bench:noop",
                trigger=Trigger.AT,
                next_run_at=later,
                arguments=arguments,
            )
            for i in range(rows)
        ]
        await storage.add(*batch)
        await storage.shutdown()

    async def start_once(path: Path) -> tuple[float, int]:
        app = Jobify(storage=SQLiteStorage(path))

        async def noop() -> None:
            return None

        app.task(name="bench:noop")(noop)
        start = now()
        async with app:
            elapsed = now() - start
            armed = len(app.get_active_jobs())
        return elapsed, armed

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "restore.db"
        trio.run(seed, path)
        times = []
        armed = 0
        for _ in range(max(1, min(p.repeat, 3))):
            elapsed, armed = trio.run(start_once, path)
            times.append(elapsed)
    return {"seconds": min(times), "rows": rows, "armed": armed}
