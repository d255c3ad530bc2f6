"""Durability metrics, jobify_trio side: durable push throughput and restore time.

Registered on the side's registry by ``_trio_side.py`` (``register_durable(registry)``).
Both use a real SQLite file in a temporary directory (WAL, ``synchronous=NORMAL``).

``durable_throughput`` measures, in one process and with the same method as
``_durable_jobify.py``: the sequential loop users write (``for i in range(n): await
task.push(i)``, then ``wait_all``); ``n`` concurrent pushes made by :data:`PRODUCERS`
tasks, each pushing its share in a loop (a server handling requests), then ``wait_all``;
and, labelled "burst", ``n`` pushes started at once (one nursery task each). First on a
SQLite file, then without storage; a 1 ms canary task records the event loop's lag
during each durable round. Every round is reported.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from _common import PRODUCERS, Canary, Params, Registry, Values, now, per_round, settle_memory

RESTORE_ROWS_FULL = 100_000
WARMUP_JOBS = 100


def register_durable(registry: Registry) -> None:
    registry.metric("durable_throughput")(durable_throughput)
    registry.metric("restore")(restore)


async def _loop(app: Any, task: Any, n: int) -> float:
    settle_memory()
    start = now()
    for i in range(n):
        await task.push(i)
    await app.wait_all()
    return n / (now() - start)


async def _concurrent(app: Any, task: Any, n: int) -> float:
    """:data:`PRODUCERS` tasks, each pushing its share of ``n`` in a loop."""
    import trio

    async def producer(first: int) -> None:
        for i in range(first, n, PRODUCERS):
            await task.push(i)

    settle_memory()
    start = now()
    async with trio.open_nursery() as nursery:
        for first in range(PRODUCERS):
            nursery.start_soon(producer, first)
    await app.wait_all()
    return n / (now() - start)


async def _burst(app: Any, task: Any, n: int) -> float:
    """Like Jobify's own method (``asyncio.gather`` of n pushes): n tasks started at once."""
    import trio

    settle_memory()
    start = now()
    async with trio.open_nursery() as nursery:
        for i in range(n):
            nursery.start_soon(task.push, i)
    await app.wait_all()
    return n / (now() - start)


async def _with_canary(measure: Any, *args: Any) -> tuple[float, Canary]:
    """Run ``measure(*args)`` while a canary task records the event loop's lag."""
    import trio

    canary = Canary()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(canary.run, trio.sleep)
        rate: float = await measure(*args)
        canary.stopped = True
    return rate, canary


METHODS = (("loop", _loop), ("concurrent", _concurrent), ("burst", _burst))


def _rounds(storage: Any, p: Params, prefix: str, canary: bool) -> list[Values]:
    import trio

    from jobify_trio import Jobify

    async def main() -> list[Values]:
        app = Jobify(storage=storage)

        async def noop(i: int) -> None:
            return None

        task = app.task(name="bench:noop")(noop)
        rounds: list[Values] = []
        async with app:
            await _loop(app, task, WARMUP_JOBS)
            for _ in range(p.repeat):
                values: Values = {}
                for method, measure in METHODS:
                    if canary:
                        rate, probe = await _with_canary(measure, app, task, p.n)
                        values.update(probe.summary(f"{prefix}_{method}"))
                    else:
                        rate = await measure(app, task, p.n)
                    values[f"{prefix}_{method}_jobs_per_s"] = rate
                rounds.append(values)
        return rounds

    result: list[Values] = trio.run(main)
    return result


def durable_throughput(p: Params) -> dict[str, object]:
    from jobify_trio.storage import SQLiteStorage

    with tempfile.TemporaryDirectory() as tmp:
        durable = _rounds(SQLiteStorage(Path(tmp) / "bench.db"), p, "durable", canary=True)
    plain = _rounds(False, p, "plain", canary=False)
    rounds = [{**d, **pl} for d, pl in zip(durable, plain, strict=True)]
    return per_round(rounds, n=p.n)


def restore(p: Params) -> dict[str, object]:
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
        rounds: list[Values] = []
        for _ in range(max(1, min(p.repeat, 3))):
            elapsed, armed = trio.run(start_once, path)
            rounds.append({"seconds": elapsed, "armed": armed})
    return per_round(rounds, rows=rows)
