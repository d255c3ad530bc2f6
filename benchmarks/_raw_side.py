"""Raw trio ceilings: what the event loop alone can do, measured in the same run.

``channel``: a trio memory channel (unbounded buffer) feeding one consumer that awaits a
trivial coroutine per item; items/s from the first send until the consumer has drained
everything; the same with a bounded buffer of 1024 alongside. ``spawn``: one trio task
per item in a nursery. jobify_trio's push throughput is compared with the faster of the
two (the strictest denominator).

``sqlite_commit``: the raw inline-commit ceiling of a durable push. On a SQLite file with
the settings jobify_trio uses (WAL, ``synchronous=NORMAL``, a ``WITHOUT ROWID`` table
keyed by a text id), one row per transaction (``BEGIN IMMEDIATE``, ``INSERT``,
``COMMIT``) executed on the trio thread in a loop, with a trio checkpoint between rows.
The same commit through a thread round trip (``trio.to_thread.run_sync``) per row is
reported alongside (informative).
"""

from __future__ import annotations

import math
import sqlite3
import sys
import tempfile
from pathlib import Path

from _common import Params, Registry, Values, now, per_round, settle_memory, side_main

registry = Registry(side="raw_trio")
BOUNDED_BUFFER = 1024

try:
    import trio
except Exception as exc:  # reported as "unavailable", never a crash
    registry.unavailable = f"cannot import trio: {type(exc).__name__}: {exc}"


async def _trivial() -> None:
    return None


async def _channel_round(n: int, buffer: float) -> float:
    send, receive = trio.open_memory_channel[int](buffer)

    async def consume() -> None:
        async with receive:
            async for _ in receive:
                await _trivial()

    settle_memory()
    start = now()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume)
        async with send:
            for item in range(n):
                await send.send(item)
    return n / (now() - start)


async def _spawn_round(n: int) -> float:
    settle_memory()
    start = now()
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(_trivial)
    return n / (now() - start)


@registry.metric("channel")
def channel(p: Params) -> Values:
    async def main() -> Values:
        await _channel_round(min(p.n, 1000), math.inf)  # warm-up
        rounds: list[Values] = []
        for _ in range(p.repeat):
            unbounded = await _channel_round(p.n, math.inf)
            bounded = await _channel_round(p.n, BOUNDED_BUFFER)
            rounds.append({"items_per_s": unbounded, "bounded_1024_items_per_s": bounded})
        return per_round(rounds, n=p.n)

    result: Values = trio.run(main)
    return result


@registry.metric("spawn")
def spawn(p: Params) -> Values:
    async def main() -> Values:
        await _spawn_round(min(p.n, 1000))  # warm-up
        rates = [await _spawn_round(p.n) for _ in range(p.repeat)]
        return per_round([{"tasks_per_s": r} for r in rates], n=p.n)

    result: Values = trio.run(main)
    return result


_TABLE = """CREATE TABLE jobs (
    job_id TEXT PRIMARY KEY NOT NULL, task TEXT NOT NULL, next_run_at TEXT NOT NULL,
    arguments BLOB NOT NULL
) WITHOUT ROWID"""
_INSERT = "INSERT INTO jobs (job_id, task, next_run_at, arguments) VALUES (?, ?, ?, ?)"
_ARGUMENTS = b'{"args":[1],"kwargs":{}}'
_WHEN = "2026-01-01T00:00:00.000000+00:00"


def _open(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(_TABLE)
    return conn


def _commit_one(conn: sqlite3.Connection, job_id: str) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(_INSERT, (job_id, "bench:noop", _WHEN, _ARGUMENTS))
    conn.execute("COMMIT")


async def _commit_round(conn: sqlite3.Connection, n: int, base: int, hop: bool) -> float:
    settle_memory()
    start = now()
    for i in range(base, base + n):
        if hop:
            await trio.to_thread.run_sync(_commit_one, conn, f"job-{i}")
        else:
            _commit_one(conn, f"job-{i}")
            await trio.lowlevel.checkpoint()
    return n / (now() - start)


@registry.metric("sqlite_commit")
def sqlite_commit(p: Params) -> dict[str, object]:
    async def main(conn: sqlite3.Connection) -> list[Values]:
        await _commit_round(conn, 100, -1000, hop=False)  # warm-up
        rounds: list[Values] = []
        for r in range(p.repeat):
            inline = await _commit_round(conn, p.n, 2 * r * p.n, hop=False)
            hop = await _commit_round(conn, p.n, (2 * r + 1) * p.n, hop=True)
            rounds.append({"rows_per_s": inline, "thread_hop_rows_per_s": hop})
        return rounds

    with tempfile.TemporaryDirectory() as tmp:
        conn = _open(Path(tmp) / "raw.db")
        try:
            rounds: list[Values] = trio.run(main, conn)
        finally:
            conn.close()
    return per_round(rounds, n=p.n)


if __name__ == "__main__":
    sys.exit(side_main(registry))
