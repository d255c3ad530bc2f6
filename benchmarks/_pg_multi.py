"""PostgreSQL metrics of several jobify_trio processes sharing one schema (issue 9).

Registered on the jobify_trio side by ``_trio_side.py``; each instance is a process
running ``_pg_instance.py`` (see there), on a fresh schema of the benchmark server:

* ``pg_workers``: ``jobs_per_s_2`` and ``jobs_per_s_3``: 2 (3) processes, each pushes
  ``n // K`` no-op jobs at once and waits for them (push then run to completion), all
  started together; the figure is ``n`` over the time from the first start to the last
  end; ``app_cores_K``: the CPU seconds of the K processes over that time (the rest of
  the 2 cores goes to the PostgreSQL server and to everything else on the machine).
* ``pg_cron``: ``CRON_JOBS`` every-second crons split over ``CRON_INSTANCES`` processes
  (``task.schedule(i).cron(...)``, job id ``c{i}``), watched for ``BENCH_CRON_SECONDS``
  whole seconds after a 3 s warm-up: ``missed`` and ``duplicates`` count the (cron, slot)
  pairs fired 0 or more than 1 time (a fire at wall time ``t`` belongs to slot
  ``floor(t)``), and lateness p50/p99 of each fire against its slot.
* ``pg_takeover``: a survivor instance runs; a victim instance (``SharingOptions(lease=
  TAKEOVER_LEASE)`` on both) pushes ``TAKEOVER_JOBS`` jobs that never end there, then is
  killed with SIGKILL; ``first_s`` / ``last_s``: seconds from the kill until the survivor
  started the first / last of them.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _common import Params, Registry, Skipped, Values, per_round, percentile
from _pg_common import connect, fresh_schema, server_settings
from _plan import TAKEOVER_LEASE

HERE = Path(__file__).resolve().parent
SCHEMA = f"bench_jobify_trio_multi_{os.getpid()}"
"""Per run: two benchmark runs at once on one server (two checkouts) must not drop each
other's schema in the middle of a round."""
CRON_JOBS = 1_000
CRON_INSTANCES = 3
CRON_WARMUP_S = 3
TAKEOVER_JOBS = 100
READY_TIMEOUT = 60.0


def register_multi(registry: Registry) -> None:
    registry.metric("pg_workers")(pg_workers)
    registry.metric("pg_cron")(pg_cron)
    registry.metric("pg_takeover")(pg_takeover)


class Instance:
    """One ``_pg_instance.py`` process: commands on stdin, ``RESULT`` lines on stdout."""

    def __init__(self, mode: str, *args: str) -> None:
        cmd = [sys.executable, str(HERE / "_pg_instance.py"), mode, "--schema", SCHEMA, *args]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=HERE.parent
        )

    def _line(self, prefix: str) -> str:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
        raise RuntimeError(f"instance exited ({self.proc.wait()}) before {prefix.strip()!r}")

    def ready(self) -> None:
        self._line("READY")

    def ask(self, command: str) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return json.loads(self._line("RESULT "))

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _psycopg() -> Any:
    try:
        import psycopg

        from jobify_trio.storage import PostgresStorage  # noqa: F401
    except ImportError as exc:
        raise Skipped(f"needs psycopg and PostgresStorage: {exc}") from exc
    return psycopg


def _settings(psycopg: Any) -> dict[str, str]:
    with connect(psycopg) as conn:
        return server_settings(conn)


def _workers_round(instances: list[Instance]) -> tuple[float, float, float]:
    """(first start, last end, CPU seconds of all the instances)."""
    for inst in instances:
        inst.send("GO")
    spans = [json.loads(inst._line("RESULT ")) for inst in instances]
    cpu = sum(s["cpu_s"] for s in spans)
    return min(s["start"] for s in spans), max(s["end"] for s in spans), cpu


def pg_workers(p: Params) -> dict[str, object]:
    psycopg = _psycopg()
    rounds: list[Values] = [{} for _ in range(p.repeat)]
    with fresh_schema(psycopg, SCHEMA):
        settings = _settings(psycopg)
        for k in (2, 3):
            instances = [Instance("push", "--n", str(p.n // k)) for _ in range(k)]
            try:
                for inst in instances:
                    inst.ready()
                for r in range(p.repeat):
                    start, end, cpu = _workers_round(instances)
                    rounds[r][f"jobs_per_s_{k}"] = (p.n // k) * k / (end - start)
                    rounds[r][f"app_cores_{k}"] = cpu / (end - start)
            finally:
                for inst in instances:
                    inst.close()
    return per_round(rounds, n=p.n, **settings)


def _cron_values(fires: list[tuple[int, float]], start: int, end: int) -> Values:
    slots = Counter((i, math.floor(t)) for i, t in fires if start <= math.floor(t) < end)
    late = sorted((t - math.floor(t)) * 1000.0 for i, t in fires if start <= math.floor(t) < end)
    expected = CRON_JOBS * (end - start)
    return {
        "fires": sum(slots.values()),
        "fires_per_s": sum(slots.values()) / (end - start),
        "missed": expected - len(slots),
        "duplicates": sum(c - 1 for c in slots.values()),
        "lateness_p50_ms": percentile(late, 0.50) if late else math.nan,
        "lateness_p99_ms": percentile(late, 0.99) if late else math.nan,
        "lateness_max_ms": late[-1] if late else math.nan,
    }


def pg_cron(p: Params) -> dict[str, object]:
    psycopg = _psycopg()
    seconds = int(float(os.environ.get("BENCH_CRON_SECONDS", "10")))
    rounds: list[Values] = []
    for _ in range(p.repeat):
        with fresh_schema(psycopg, SCHEMA):
            settings = _settings(psycopg)
            args = ("--n", str(CRON_JOBS), "--of", str(CRON_INSTANCES))
            instances = [Instance("cron", *args, "--index", str(k)) for k in range(CRON_INSTANCES)]
            try:
                for inst in instances:
                    inst.ready()
                start = math.floor(time.time()) + CRON_WARMUP_S
                end = start + seconds
                time.sleep(max(0.0, end + 1.5 - time.time()))
                dumps = [inst.ask("DUMP") for inst in instances]
            finally:
                for inst in instances:
                    inst.close()
        fires = [(i, t) for d in dumps for i, t in d["fires"]]
        values = _cron_values(fires, start, end)
        values["cpu_ms_per_s"] = sum(d["cpu_s"] for d in dumps) * 1000.0 / (end - start + 4.5)
        rounds.append(values)
    return per_round(rounds, crons=CRON_JOBS, instances=CRON_INSTANCES, seconds=seconds, **settings)


def pg_takeover(p: Params) -> dict[str, object]:
    psycopg = _psycopg()
    lease = ("--lease", str(TAKEOVER_LEASE))
    rounds: list[Values] = []
    for _ in range(p.repeat):
        with fresh_schema(psycopg, SCHEMA):
            settings = _settings(psycopg)
            survivor = Instance("survivor", *lease)
            victim = Instance("victim", *lease, "--n", str(TAKEOVER_JOBS))
            try:
                survivor.ready()
                victim.ready()
                time.sleep(TAKEOVER_LEASE / 2)  # between two heartbeats of the victim
                os.kill(victim.proc.pid, signal.SIGKILL)
                killed = time.monotonic()
                victim.proc.wait()
                time.sleep(2 * TAKEOVER_LEASE + 2)
                runs = survivor.ask("DUMP")["runs"]
            finally:
                victim.close()
                survivor.close()
        if len(runs) != TAKEOVER_JOBS:
            raise RuntimeError(f"survivor ran {len(runs)} of {TAKEOVER_JOBS} orphaned jobs")
        rounds.append({"first_s": min(runs) - killed, "last_s": max(runs) - killed})
    return per_round(rounds, lease_s=TAKEOVER_LEASE, jobs=TAKEOVER_JOBS, **settings)
