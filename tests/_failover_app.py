"""The app of the multi-process failover tests (``tests/test_sharing_failover.py``).

Workers run it with ``python -m jobify_trio run tests/_failover_app.py:app``; the pusher
runs this file as a script (``python tests/_failover_app.py N SECONDS``), which pushes N
durable one-off jobs spread over SECONDS and writes each job id to ``acked`` once its
push returned, then waits for SIGTERM.

Configuration comes from the environment (the test sets it):

* ``FAILOVER_DB``: a SQLite file path, or ``postgresql://...``; ``FAILOVER_SCHEMA``: the
  PostgreSQL schema;
* ``FAILOVER_LEASE``: the sharing lease in seconds; ``FAILOVER_CRONS``: how many
  every-second crons (declared with ``MisfirePolicy.ALL``);
* ``FAILOVER_DIR``: where each process appends its records (``<pid>.log``);
* ``FAILOVER_ROLE``: ``worker`` (default) or ``pusher`` (``max_concurrency=1``: it
  releases most due jobs to the workers, running one at a time itself).

Records survive SIGKILL: each is one ``os.write`` of a whole line to a file opened with
``O_APPEND`` (in the kernel as soon as the call returns). Lines are
``S|E job_id pid time`` (start and end of a one-off run), ``C cron_id pid time slot``
(a cron run starting; ``slot`` is its slot as a UNIX time) and ``L - pid from to`` (the
process renewed its leases late: they may have run out from ``from`` to ``to``, when
another instance could take its rows over; logged by the runtime as a warning).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import trio

from jobify_trio import INJECT, Cron, Job, Jobify, MisfirePolicy, SharingOptions
from jobify_trio.storage import SQLiteStorage, Storage

DB = os.environ.get("FAILOVER_DB", "failover.db")
ROLE = os.environ.get("FAILOVER_ROLE", "worker")
LEASE = float(os.environ.get("FAILOVER_LEASE", "2"))
CRONS = int(os.environ.get("FAILOVER_CRONS", "20"))
RECORDS = Path(os.environ.get("FAILOVER_DIR", "."))
WORK = "failover:work"


def _storage() -> Storage:
    if DB.startswith("postgresql://"):
        from jobify_trio.storage import PostgresStorage

        return PostgresStorage(DB, schema=os.environ["FAILOVER_SCHEMA"], connect_timeout=5)
    return SQLiteStorage(DB, shared=True)


_fd = os.open(RECORDS / f"{os.getpid()}.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT)


def record(*fields: object) -> None:
    """Append one line (one write: whole, and kept if the process is killed next)."""
    os.write(_fd, (" ".join(map(str, fields)) + "\n").encode())


class _Lapses(logging.Handler):
    """Records the instance's own late renewals (its leases ran out while it was live):
    ``L - pid from to``, the wall-clock window in which another instance could take its
    rows (from when the lease may have run out to the renewal)."""

    def emit(self, entry: logging.LogRecord) -> None:
        if str(entry.msg).startswith("instance %r renewed its leases up to"):
            late = float(entry.args[1])  # type: ignore[index]
            now = time.time()
            record("L", "-", os.getpid(), f"{now - late:.6f}", f"{now:.6f}")


logging.getLogger("jobify_trio.sharing").addHandler(_Lapses())


app = Jobify(
    storage=_storage(),
    sharing=SharingOptions(lease=LEASE, instance_id=f"{ROLE}-{os.getpid()}"),
    max_concurrency=1 if ROLE == "pusher" else 1000,
)


@app.task(name=WORK)
async def work(seconds: float, job: Job[Any] = INJECT) -> None:
    record("S", job.id, os.getpid(), f"{time.time():.6f}")
    await trio.sleep(seconds)
    record("E", job.id, os.getpid(), f"{time.time():.6f}")


def _declare_cron(index: int) -> None:
    async def tick(job: Job[Any] = INJECT) -> None:
        slot = job.exec_at.timestamp()
        record("C", job.id, os.getpid(), f"{time.time():.6f}", f"{slot:.6f}")

    cron = Cron("* * * * * * *", misfire_policy=MisfirePolicy.ALL)
    app.task(tick, name=f"failover:cron{index}", cron=cron)


for _index in range(CRONS):
    _declare_cron(_index)


async def push(count: int, seconds: float, acked: Path) -> None:
    """Push ``count`` jobs evenly over ``seconds`` (each push in its own task, so a slow
    commit does not hold back the next ones); ack each job once its push returned.

    Every third job is delayed by up to 2 s (a stored future row); durations are 20 to
    400 ms, so a killed worker is usually running some.
    """
    ack = os.open(acked, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    async def push_one(n: int) -> None:
        job_id = f"j{n}"
        builder = work.schedule(0.02 + (n * 37 % 381) / 1000)
        if n % 3 == 2:
            await builder.delay((n * 13 % 2000) / 1000, job_id=job_id)
        else:
            await builder.push(job_id=job_id)
        os.write(ack, f"{job_id}\n".encode())

    start = trio.current_time()
    async with app:
        async with trio.open_nursery() as nursery:
            for n in range(count):
                await trio.sleep_until(start + seconds * n / count)
                nursery.start_soon(push_one, n)
        with trio.open_signal_receiver(15) as signals:
            os.write(ack, b"done\n")
            await signals.__anext__()


if __name__ == "__main__":
    logging.basicConfig(format="%(message)s")  # warnings to stderr, as before the handler
    trio.run(push, int(sys.argv[1]), float(sys.argv[2]), Path(sys.argv[3]))
