"""Cost of storing the run history on the durable push path (issue 12).

``python benchmarks/history_durable.py [--n 5000] [--repeat 7] [--store sqlite|postgres]``:
pushes ``n`` durable no-op jobs in a loop (each push returns once its row is committed)
and waits until all ran, on a fresh store per round, in three modes, alternated so that
noise hits all:

* ``plain``: no RunHistory;
* ``memory``: ``RunHistory(app, stored=False)`` (the history in memory only);
* ``stored``: ``RunHistory(app)`` (each run also written through the storage writer).

Reports the median wall-clock throughput and CPU time of each mode, with min-max.
PostgreSQL: ``$JOBIFY_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/test``),
one fresh schema per round, dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import trio

from jobify_trio import Jobify, RunHistory
from jobify_trio.storage import SQLiteStorage, Storage

MODES = ("plain", "memory", "stored")
PG_URL = os.environ.get("JOBIFY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def make_store(kind: str, where: Path) -> tuple[Storage, str | None]:
    if kind == "sqlite":
        return SQLiteStorage(where / f"{uuid.uuid4().hex}.db"), None
    from jobify_trio.storage import PostgresStorage

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    return PostgresStorage(PG_URL, schema=schema), schema


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def one_run(mode: str, n: int, store: Storage) -> tuple[float, float, int]:
    """(jobs/s, CPU seconds, stored runs) to push ``n`` durable no-op jobs and run them."""
    app = Jobify(storage=store)

    @app.task(name="noop")
    async def noop() -> None:
        return None

    if mode != "plain":
        RunHistory(app, stored=mode == "stored")
    async with app:
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(n):
            await noop.push()
        await app.wait_all()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await store.startup()
    try:
        stored = len(await store.load_runs(since=_epoch(), per_job=1))
    finally:
        await store.shutdown()
    return n / wall, cpu, stored


def _epoch():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime(2000, 1, 1, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    cpus: dict[str, list[float]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.repeat + 1):  # round 0 warms up, not kept
            for mode in MODES:
                store, schema = make_store(args.store, Path(tmp))
                try:
                    rate, cpu, stored = trio.run(one_run, mode, args.n, store)
                finally:
                    if schema is not None:
                        drop_schema(schema)
                assert stored == (args.n if mode == "stored" else 0), (mode, stored)
                if round_:
                    rates[mode].append(rate)
                    cpus[mode].append(cpu)
    print(f"store={args.store} n={args.n} repeat={args.repeat} cpus={os.cpu_count()}")
    base = statistics.median(rates["plain"])
    for mode in MODES:
        rate, cpu = statistics.median(rates[mode]), statistics.median(cpus[mode])
        extra = f"  {(rate / base - 1) * 100:+.1f}% throughput vs plain" if mode != "plain" else ""
        print(
            f"{mode:>7}: {rate:8,.0f} jobs/s (min {min(rates[mode]):,.0f}, max "
            f"{max(rates[mode]):,.0f}); CPU {cpu:.3f} s{extra}"
        )


if __name__ == "__main__":
    main()
