"""What the benchmark measures: the sides, the measurement plan and the table rows.

To add a metric: register a function under the same name in the side modules
(``@registry.metric("name")``), add a :class:`Measurement` to :data:`PLAN` and, if it
belongs in the table, a :class:`Row` to :data:`ROWS`.
"""

from __future__ import annotations

from dataclasses import dataclass

JOBIFY_VERSION = "0.14.0"
APS_MAX_REPEAT = 3  # APScheduler's in-memory store scans every job per acquire: slow rounds

Result = dict[str, object]
Results = dict[str, dict[str, Result]]  # side -> metric -> side's JSON payload


@dataclass(frozen=True, kw_only=True)
class Settings:
    n: int
    repeat: int
    mem_n: int
    mem_repeat: int
    passes: int
    timeout: float


@dataclass(frozen=True, kw_only=True)
class Side:
    name: str
    script: str
    label: str


@dataclass(frozen=True, kw_only=True)
class Measurement:
    side: str
    metric: str
    key: str  # the value that decides which run is best
    higher_is_better: bool
    fresh_process: bool = False  # one interpreter per repetition (memory figures)
    max_repeat: int | None = None  # cap on rounds (a very slow side)

    def best(self, runs: list[Result]) -> Result:
        """The best successful run (all runs kept under "runs"), else the first failure."""
        ok = [r for r in runs if r.get("status") == "ok"]
        if not ok:
            return runs[0]
        pick = max if self.higher_is_better else min
        best = pick(ok, key=lambda r: float(_values(r).get(self.key, 0.0)))
        return {**best, "runs": [_values(r) for r in ok]}


@dataclass(frozen=True, kw_only=True)
class Row:
    label: str
    metric: str
    key: str
    target: str  # "info", or goals joined by "+": "xK" (>= K x Jobify), "lower", "max:V"
    fmt: str = "{:,.0f}"


SIDES = {
    "jobify_trio": Side(name="jobify_trio", script="_trio_side.py", label="jobify_trio"),
    "jobify": Side(name="jobify", script="_jobify_side.py", label=f"Jobify {JOBIFY_VERSION}"),
    "apscheduler": Side(name="apscheduler", script="_apscheduler_side.py", label="APScheduler 4"),
    "raw_trio": Side(name="raw_trio", script="_raw_side.py", label="raw trio"),
}
VENV_SIDES = ("jobify", "apscheduler")  # sides run in their own virtualenv

PLAN = (
    Measurement(side="raw_trio", metric="channel", key="items_per_s", higher_is_better=True),
    Measurement(side="raw_trio", metric="spawn", key="tasks_per_s", higher_is_better=True),
    *(
        m
        for side in ("jobify", "jobify_trio")
        for m in (
            Measurement(side=side, metric="throughput", key="jobs_per_s", higher_is_better=True),
            Measurement(side=side, metric="latency", key="mean_us", higher_is_better=False),
            # 3 pass-through middlewares + QueueMiddleware(workers=100); every job retried once
            Measurement(
                side=side, metric="throughput_middleware", key="jobs_per_s", higher_is_better=True
            ),
            Measurement(
                side=side, metric="throughput_retry", key="jobs_per_s", higher_is_better=True
            ),
            Measurement(
                side=side, metric="durable_throughput", key="jobs_per_s", higher_is_better=True
            ),
            Measurement(side=side, metric="restore", key="seconds", higher_is_better=False),
            # cron: 10,000 every-second crons (BENCH_CRON_SECONDS), and 10,000 idle ones
            Measurement(
                side=side, metric="cron_fire", key="cpu_us_per_fire", higher_is_better=False
            ),
            Measurement(side=side, metric="cron_idle", key="idle_cpu_ms", higher_is_better=False),
            Measurement(
                side=side,
                metric="memory_delayed",
                key="bytes_per_job",
                higher_is_better=False,
                fresh_process=True,
            ),
            # 5 x mem_n jobs that sleep 0.2 s each, pushed as fast as accepted
            Measurement(
                side=side,
                metric="overload",
                key="peak_growth_bytes",
                higher_is_better=False,
                fresh_process=True,
            ),
        )
    ),
    # 1,000 one-off jobs at exact instants over 3 s (_timer_bench.py); one round a process
    *(
        Measurement(
            side=side,
            metric="timer_precision",
            key="lateness_p99_ms",
            higher_is_better=False,
            fresh_process=True,
        )
        for side in ("jobify", "jobify_trio", "apscheduler")
    ),
    Measurement(
        side="apscheduler",
        metric="throughput",
        key="jobs_per_s",
        higher_is_better=True,
        max_repeat=APS_MAX_REPEAT,
    ),
)

ROWS = (
    Row(label="throughput (jobs/s)", metric="throughput", key="jobs_per_s", target="x2"),
    Row(label="latency mean (µs)", metric="latency", key="mean_us", target="lower", fmt="{:.1f}"),
    Row(label="latency p50 (µs)", metric="latency", key="p50_us", target="info", fmt="{:.1f}"),
    Row(label="latency p99 (µs)", metric="latency", key="p99_us", target="info", fmt="{:.1f}"),
    Row(
        label="push, 3 middlewares + queue (jobs/s)",
        metric="throughput_middleware",
        key="jobs_per_s",
        target="x2",
    ),
    Row(
        label="push, every job retried once (jobs/s)",
        metric="throughput_retry",
        key="jobs_per_s",
        target="x2",
    ),
    Row(
        label="durable push, SQLite file (jobs/s)",
        metric="durable_throughput",
        key="jobs_per_s",
        target="x10",
    ),
    Row(
        label="restore 100k stored jobs (s)",
        metric="restore",
        key="seconds",
        target="max:2",
        fmt="{:.2f}",
    ),
    Row(
        label="cron fires/s (10k x every second)",
        metric="cron_fire",
        key="fires_per_s",
        target="info",
    ),
    Row(
        label="cron lateness p50 (ms)",
        metric="cron_fire",
        key="lateness_p50_ms",
        target="info",
        fmt="{:.1f}",
    ),
    Row(
        label="cron lateness p99 (ms)",
        metric="cron_fire",
        key="lateness_p99_ms",
        target="lower+max:5",
        fmt="{:.1f}",
    ),
    Row(
        label="cron CPU per fire (µs)",
        metric="cron_fire",
        key="cpu_us_per_fire",
        target="lower",
        fmt="{:.1f}",
    ),
    Row(
        label="cron idle CPU, 10k jobs (ms)",
        metric="cron_idle",
        key="idle_cpu_ms",
        target="max:50",
        fmt="{:.1f}",
    ),
    Row(
        label="memory per delayed job (B)",
        metric="memory_delayed",
        key="bytes_per_job",
        target="lower",
    ),
    Row(
        label="overload: peak RSS growth (MB)",
        metric="overload",
        key="peak_growth_mb",
        target="lower",
        fmt="{:.1f}",
    ),
    Row(
        label="overload: jobs/s (0.2 s jobs)",
        metric="overload",
        key="jobs_per_s",
        target="info",
    ),
    *(
        Row(
            label=f"timer lateness {name} (ms, 1,000 one-off jobs)",
            metric="timer_precision",
            key=f"lateness_{name}_ms",
            target="info",
            fmt="{:.2f}",
        )
        for name in ("p50", "p99", "max")
    ),
)
RAW_FRACTION_TARGET = 0.40
DURABLE_FRACTION_TARGET = 0.50  # durable push >= 50% of jobify_trio's own plain push
METRICS = tuple(dict.fromkeys(m.metric for m in PLAN))


def _values(result: Result | None) -> dict[str, float]:
    if result is None or result.get("status") != "ok":
        return {}
    values = result.get("values")
    return values if isinstance(values, dict) else {}
