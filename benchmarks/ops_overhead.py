"""Cost of the operations features: plain push throughput vs listeners + history + metrics.

``python benchmarks/ops_overhead.py [--n 20000] [--repeat 7]``: pushes ``n`` no-op jobs
and waits until all ran, with nothing attached ("off"), with one no-op listener (what the
runtime's events cost by themselves), with a RunHistory and a JobMetrics attached
("on"), and with all three ("all"). It measures the process's CPU time (the machine may
be shared), alternates the modes so noise hits all, and reports the median of each with
its min-max spread, as extra CPU per job and as the share of the plain throughput lost
(issue 12's target: the features together cost at most 15% of plain push throughput).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import trio
from prometheus_client import CollectorRegistry

from jobify_trio import Jobify, RunHistory
from jobify_trio.metrics import JobMetrics

MODES = ("off", "listener", "on", "all")
"""off: nothing attached; listener: one no-op listener (the runtime's own event cost);
on: RunHistory + JobMetrics; all: the no-op listener, RunHistory and JobMetrics."""


def make_app(mode: str) -> Jobify:
    app = Jobify(storage=False)

    @app.task(name="noop")
    async def noop() -> None:
        return None

    if mode in ("listener", "all"):
        app.add_listener(lambda event: None)
    if mode in ("on", "all"):
        RunHistory(app, per_job=20, max_jobs=1000)
        JobMetrics(app, registry=CollectorRegistry())
    return app


async def one_run(mode: str, n: int) -> float:
    """CPU seconds of this process to push ``n`` no-op jobs and run them all."""
    app = make_app(mode)
    task = app.tasks["noop"]
    async with app:
        began = time.process_time()
        for _ in range(n):
            await task.push()
        await app.wait_all()
        return time.process_time() - began


def _lost(off: float, on: float) -> float:
    """Percentage of the plain throughput (``n / off``) that ``on``'s extra CPU takes away."""
    return (1 - off / on) * 100


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    trio.run(one_run, "off", 2000)  # warm up imports and caches
    results: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(args.repeat):
        for mode in MODES:
            results[mode].append(trio.run(one_run, mode, args.n))
    print(f"cpus={os.cpu_count()} n={args.n} repeat={args.repeat} (median CPU seconds)")
    off = statistics.median(results["off"])
    for mode in MODES:
        cpu, runs = statistics.median(results[mode]), results[mode]
        spread = f"{min(runs):.3f}-{max(runs):.3f}"
        extra = ""
        if mode != "off":
            extra = f"  {(cpu / off - 1) * 100:+.1f}% CPU vs off, {_lost(off, cpu):.1f}% of"
            extra += " its throughput lost"
            # each round against the "off" round run just before it
            pairs = list(zip(runs, results["off"], strict=True))
            paired = sorted((m / o - 1) * 100 for m, o in pairs)
            lost = statistics.median(_lost(o, m) for m, o in pairs)
            extra += f" (paired rounds {paired[0]:+.1f}% to {paired[-1]:+.1f}% CPU,"
            extra += f" median {lost:.1f}% lost)"
        print(f"{mode:>8}: {cpu:.3f} s [{spread}] ({args.n / cpu:,.0f} jobs/s){extra}")


if __name__ == "__main__":
    main()
