"""Helpers shared by every benchmark side process (standard library only).

Each side (``_jobify_side.py``, ``_trio_side.py``, ``_raw_side.py``, ...) is a script
that ``run.py`` starts in its own interpreter. A side registers its measurements in a
:class:`Registry`; :func:`side_main` runs one of them and prints a single JSON line,
prefixed with :data:`RESULT_MARKER`, on stdout.

A measurement reports every round, never a best one: :func:`per_round` wraps the list of
per-round values, and ``run.py`` reduces all rounds of all processes to a median with its
min-max spread. A measurement that cannot run here raises :class:`Skipped` with a reason.

This module must stay importable by every benchmark virtualenv (Jobify 0.14.0,
procrastinate, ...), which have neither trio nor jobify_trio installed.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

RESULT_MARKER = "BENCH_RESULT "
#: The concurrent push plans: this many producer tasks, each pushing its share of N in a
#: loop (the pattern of a server handling requests), on every side alike.
PRODUCERS = 64

Values = dict[str, float | int | str]


@dataclass(frozen=True, kw_only=True)
class Params:
    """What one side process is asked to measure."""

    n: int
    repeat: int
    mem_n: int


MetricFn = Callable[[Params], Any]  # returns Values or per_round(...)


@dataclass(kw_only=True)
class Registry:
    """The measurements one side can run, by metric name."""

    side: str
    unavailable: str | None = None
    metrics: dict[str, MetricFn] = field(default_factory=dict)

    def metric(self, name: str) -> Callable[[MetricFn], MetricFn]:
        """Register ``fn`` as the measurement for ``name``."""

        def register(fn: MetricFn) -> MetricFn:
            if name in self.metrics:
                raise ValueError(f"metric {name!r} registered twice on side {self.side!r}")
            self.metrics[name] = fn
            return fn

        return register


def rss_bytes() -> int:
    """Resident set size of this process now, in bytes (Linux), else peak RSS."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            resident_pages = int(statm.read().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def settle_memory() -> None:
    """Collect garbage thoroughly before an RSS reading."""
    for _ in range(3):
        gc.collect()


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty list (``q`` in [0, 1])."""
    if not sorted_values:
        raise ValueError("percentile of an empty list")
    rank = round(q * (len(sorted_values) - 1))
    return sorted_values[rank]


def latency_summary(samples_ns: list[int]) -> Values:
    """Mean, p50 and p99 of per-operation latencies, in microseconds."""
    ordered = sorted(s / 1000.0 for s in samples_ns)
    return {
        "mean_us": sum(ordered) / len(ordered),
        "p50_us": percentile(ordered, 0.50),
        "p99_us": percentile(ordered, 0.99),
        "samples": len(ordered),
    }


class Skipped(Exception):
    """This measurement cannot run on this machine or build; the message says why."""


def per_round(rounds: list[Values], **info: float | int | str) -> dict[str, object]:
    """A measurement's result: every round's values (reduced by ``run.py``) plus facts."""
    return {"per_round": rounds, **info}


CANARY_PERIOD = 0.001  # seconds


@dataclass(kw_only=True)
class Canary:
    """Event-loop lag probe: sleeps 1 ms in a loop and records how late each wake-up is.

    ``await canary.run(sleep)`` in a background task (any event loop's sleep), set
    ``stopped`` when the measured work is done; the task returns at its next wake-up.
    """

    lags_ms: list[float] = field(default_factory=list)
    stopped: bool = False

    async def run(self, sleep: Callable[[float], Any]) -> None:
        while not self.stopped:
            start = time.perf_counter()
            await sleep(CANARY_PERIOD)
            self.lags_ms.append((time.perf_counter() - start - CANARY_PERIOD) * 1000.0)

    def summary(self, prefix: str) -> Values:
        """``{prefix}_lag_p50_ms``, ``_p99_ms``, ``_max_ms`` and the number of wake-ups."""
        ordered = sorted(self.lags_ms) or [0.0]
        return {
            f"{prefix}_lag_p50_ms": percentile(ordered, 0.50),
            f"{prefix}_lag_p99_ms": percentile(ordered, 0.99),
            f"{prefix}_lag_max_ms": ordered[-1],
            f"{prefix}_lag_wakeups": len(self.lags_ms),
        }


def now() -> float:
    """Monotonic high-resolution seconds."""
    return time.perf_counter()


def _emit(payload: dict[str, object]) -> None:
    sys.stdout.write(RESULT_MARKER + json.dumps(payload) + "\n")
    sys.stdout.flush()


def side_main(registry: Registry, argv: list[str] | None = None) -> int:
    """Run one registered metric and print its JSON result; always exits 0 if it printed."""
    parser = argparse.ArgumentParser(description=f"benchmark side: {registry.side}")
    parser.add_argument("--metric", required=True)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mem-n", type=int, default=100_000)
    args = parser.parse_args(argv)
    base: dict[str, object] = {"side": registry.side, "metric": args.metric}
    if registry.unavailable is not None:
        _emit({**base, "status": "unavailable", "reason": registry.unavailable})
        return 0
    fn = registry.metrics.get(args.metric)
    if fn is None:
        _emit({**base, "status": "unsupported", "reason": "metric not implemented"})
        return 0
    params = Params(n=args.n, repeat=args.repeat, mem_n=args.mem_n)
    try:
        values = fn(params)
    except Skipped as skip:
        _emit({**base, "status": "skipped", "reason": str(skip)})
        return 0
    except Exception as exc:  # a half-built library must not kill the whole run
        _emit({**base, "status": "error", "reason": f"{type(exc).__name__}: {exc}"})
        return 0
    _emit({**base, "status": "ok", "values": values})
    return 0
