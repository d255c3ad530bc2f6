"""One jobify_trio app instance on PostgreSQL, driven by ``_pg_multi.py`` through stdin/stdout.

``python benchmarks/_pg_instance.py MODE --schema S [--n N] [--index I --of K] [--lease L]``;
the app is ``Jobify(storage=PostgresStorage(CONNINFO, schema=S), sharing=...)``. The
instance prints ``READY`` once started, then obeys one command a line on stdin and answers
each with one ``RESULT <json>`` line on stdout (times: ``time.monotonic()``, one clock for
every process of the host). EOF on stdin stops it. Modes:

* ``push``: ``GO``: push ``N`` no-op jobs at once (``task.push(i)``, one task each in a
  nursery), wait for all of them (``wait_all()``); answers ``{"start": t0, "end": t1,
  "cpu_s": process CPU seconds meanwhile}``.
* ``cron``: at start, schedules the every-second crons ``c{i}`` for ``i % K == I``
  (``i < N``); every fire logs ``(i, time.time())``. ``DUMP``: answers the fires and the
  process CPU seconds since ``READY``.
* ``victim``: pushes ``N`` jobs that never end (they hold their leases); ``READY`` once
  all are running. The driver kills it with SIGKILL.
* ``survivor``: the same task, which here logs ``time.monotonic()`` and returns.
  ``DUMP``: answers the run times.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import trio

from jobify_trio import Jobify, SharingOptions
from jobify_trio.storage import PostgresStorage

CONNINFO_ENV = "BENCH_PG_CONNINFO"
WARMUP_JOBS = 100
EVERY_SECOND = "* * * * * * *"


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def _lines() -> Any:
    stdin = trio.lowlevel.FdStream(sys.stdin.fileno())
    buffer = b""
    while True:
        chunk = await stdin.receive_some(4096)
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield line.decode().strip()


def _app(args: argparse.Namespace) -> Jobify:
    from _pg_common import CONNINFO

    sharing = SharingOptions(lease=args.lease) if args.lease else None
    return Jobify(storage=PostgresStorage(CONNINFO, schema=args.schema), sharing=sharing)


async def push_mode(args: argparse.Namespace) -> None:
    app = _app(args)

    async def noop(i: int) -> None:
        return None

    task = app.task(name="bench:noop")(noop)
    async with app:
        for i in range(WARMUP_JOBS):
            await task.push(i)
        await app.wait_all()
        _say("READY")
        async for line in _lines():
            if line == "GO":
                cpu = time.process_time()
                start = time.monotonic()
                async with trio.open_nursery() as nursery:
                    for i in range(args.n):
                        nursery.start_soon(task.push, i)
                await app.wait_all()
                end, cpu = time.monotonic(), time.process_time() - cpu
                _say("RESULT " + json.dumps({"start": start, "end": end, "cpu_s": cpu}))


async def cron_mode(args: argparse.Namespace) -> None:
    app = _app(args)
    fires: list[tuple[int, float]] = []

    async def tick(i: int) -> None:
        fires.append((i, time.time()))

    task = app.task(name="bench:tick")(tick)
    async with app:
        for i in range(args.index, args.n, args.of):
            await task.schedule(i).cron(EVERY_SECOND, job_id=f"c{i}")
        cpu0 = time.process_time()
        _say("READY")
        async for line in _lines():
            if line == "DUMP":
                cpu = time.process_time() - cpu0
                _say("RESULT " + json.dumps({"fires": fires, "cpu_s": cpu}))


async def takeover_mode(args: argparse.Namespace) -> None:
    app = _app(args)
    runs: list[float] = []
    victim = args.mode == "victim"
    running = trio.Event()
    started = 0

    async def hold(i: int) -> None:
        nonlocal started
        if victim:
            started += 1
            if started >= args.n:
                running.set()
            await trio.sleep_forever()
        runs.append(time.monotonic())

    task = app.task(name="bench:hold")(hold)
    async with app:
        if victim:
            for i in range(args.n):
                await task.push(i)
            await running.wait()
        _say("READY")
        async for line in _lines():
            if line == "DUMP":
                _say("RESULT " + json.dumps({"runs": runs}))


MODES = {"push": push_mode, "cron": cron_mode, "victim": takeover_mode, "survivor": takeover_mode}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=sorted(MODES))
    parser.add_argument("--schema", required=True)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--of", type=int, default=1)
    parser.add_argument("--lease", type=float, default=0.0)
    args = parser.parse_args()
    trio.run(MODES[args.mode], args)


if __name__ == "__main__":
    main()
