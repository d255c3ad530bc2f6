"""What the benchmark measures: the sides, the measurement plan and the table rows.

To add a metric: register a function under the same name in the side modules
(``@registry.metric("name")``), add a :class:`Measurement` to :data:`PLAN` and, if it
belongs in a table, a :class:`Row` to :data:`ROWS` (or :data:`PG_ROWS`).

Every side gets the same treatment: the same rounds (``--repeat``), the same warm-up
where the side has one, and the same statistic. A side reports every round; all rounds of
all passes (and of all processes, for one-process-per-round figures) are reduced by
:meth:`Measurement.reduce` to the median, with the min-max spread under ``<key>__min``
and ``<key>__max``. No best round is ever kept.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from _common import PRODUCERS

JOBIFY_VERSION = "0.14.0"
TAKEOVER_LEASE = 3.0  # SharingOptions(lease=...) of the pg_takeover instances (_pg_multi.py)

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
    venv: str | None = None  # key of run.VENVS; None: this interpreter + the repository


@dataclass(frozen=True, kw_only=True)
class Measurement:
    side: str
    metric: str
    fresh_process: bool = False  # one interpreter per repetition (memory figures)

    def reduce(self, runs: list[Result]) -> Result:
        """Every round of every successful run reduced to median and min-max; the rounds
        themselves are kept under "samples". Without a successful run: the first one."""
        ok = [r for r in runs if r.get("status") == "ok"]
        if not ok:
            return runs[0]
        samples, info = _rounds_of(ok)
        values: dict[str, object] = dict(info)
        for key in dict.fromkeys(k for sample in samples for k in sample):
            xs = sorted(float(s[key]) for s in samples if isinstance(s.get(key), int | float))
            if xs:
                values[key] = statistics.median(xs)
                values[f"{key}__min"], values[f"{key}__max"] = xs[0], xs[-1]
        values["rounds"] = len(samples)
        failed = [str(r.get("reason")) for r in runs if r.get("status") != "ok"]
        return {**ok[0], "values": values, "samples": samples, "failed_runs": failed}


def _rounds_of(ok: list[Result]) -> tuple[list[dict[str, object]], dict[str, object]]:
    """The per-round values of successful runs (a run without "per_round" is one round),
    and the facts reported beside the rounds."""
    samples: list[dict[str, object]] = []
    info: dict[str, object] = {}
    for run in ok:
        values = run.get("values")
        if not isinstance(values, dict):
            continue
        rounds = values.get("per_round")
        if isinstance(rounds, list):
            samples.extend(rounds)
            info.update({k: v for k, v in values.items() if k != "per_round"})
        else:
            samples.append(values)
    return samples, info


@dataclass(frozen=True, kw_only=True)
class Row:
    label: str
    metric: str
    key: str
    target: str  # "info", or goals joined by "+": "xK" (>= K x peer), "lower", "max:V", "min:V"
    fmt: str = "{:,.0f}"
    peer: str | None = None  # the side of the ratio and of "xK"; None: the table's first peer


SIDES = {
    "jobify_trio": Side(name="jobify_trio", script="_trio_side.py", label="jobify_trio"),
    "jobify": Side(
        name="jobify", script="_jobify_side.py", label=f"Jobify {JOBIFY_VERSION}", venv="jobify"
    ),
    "apscheduler": Side(
        name="apscheduler",
        script="_apscheduler_side.py",
        label="APScheduler 4",
        venv="apscheduler",
    ),
    "raw_trio": Side(name="raw_trio", script="_raw_side.py", label="raw trio"),
    "procrastinate": Side(
        name="procrastinate",
        script="_procrastinate_side.py",
        label="procrastinate 3",
        venv="procrastinate",
    ),
    "raw_pg": Side(
        name="raw_pg", script="_raw_pg_side.py", label="raw PostgreSQL", venv="procrastinate"
    ),
    "apscheduler_pg": Side(
        name="apscheduler_pg",
        script="_apscheduler_pg_side.py",
        label="APScheduler 4 (SQLAlchemy)",
        venv="apscheduler_pg",
    ),
}
VENV_SIDES = tuple(name for name, side in SIDES.items() if side.venv is not None)
PG_METRICS = (
    "pg_push",
    "pg_end_to_end",
    "pg_raw_insert",
    "pg_workers",
    "pg_cron",
    "pg_takeover",
)
#: ``--only`` names that stand for several metrics.
ALIASES = {"postgres": PG_METRICS}

PLAN = (
    Measurement(side="raw_trio", metric="channel"),
    Measurement(side="raw_trio", metric="spawn"),
    Measurement(side="raw_trio", metric="sqlite_commit"),
    *(
        m
        for side in ("jobify", "jobify_trio")
        for m in (
            Measurement(side=side, metric="throughput"),
            Measurement(side=side, metric="latency"),
            # 3 pass-through middlewares + QueueMiddleware(workers=100); every job retried once
            Measurement(side=side, metric="throughput_middleware"),
            Measurement(side=side, metric="throughput_retry"),
            # push loop and concurrent pushes, SQLite file then no storage, with the canary
            Measurement(side=side, metric="durable_throughput"),
            Measurement(side=side, metric="restore"),
            # cron: 10,000 every-second crons (BENCH_CRON_SECONDS), and 10,000 idle ones
            Measurement(side=side, metric="cron_fire"),
            Measurement(side=side, metric="cron_idle"),
            Measurement(side=side, metric="memory_delayed", fresh_process=True),
            # 5 x mem_n jobs that sleep 0.2 s each, pushed as fast as accepted
            Measurement(side=side, metric="overload", fresh_process=True),
        )
    ),
    # 1,000 one-off jobs at exact instants over 3 s (_timer_bench.py); one round a process
    *(
        Measurement(side=side, metric="timer_precision", fresh_process=True)
        for side in ("jobify", "jobify_trio", "apscheduler")
    ),
    Measurement(side="apscheduler", metric="throughput"),
    # PostgreSQL (issue 9): skipped with a reason when the server or the backend is missing
    Measurement(side="raw_pg", metric="pg_raw_insert"),
    *(
        Measurement(side=side, metric=metric)
        for side in ("procrastinate", "jobify_trio")
        for metric in ("pg_push", "pg_end_to_end")
    ),
    Measurement(side="apscheduler_pg", metric="pg_end_to_end"),
    # several jobify_trio processes on one schema (_pg_multi.py)
    Measurement(side="jobify_trio", metric="pg_workers"),
    Measurement(side="jobify_trio", metric="pg_cron"),
    Measurement(side="jobify_trio", metric="pg_takeover"),
)


def _lag_rows(method: str, targets: dict[str, str] | None = None) -> tuple[Row, ...]:
    """Event-loop lag (1 ms canary) during a durable push round: p50, p99, max."""
    if targets is None:
        targets = {"p50": "info", "p99": "max:1", "max": "max:10"}
    return tuple(
        Row(
            label=f"event-loop lag {q}, durable {method} (ms)",
            metric="durable_throughput",
            key=f"durable_{method}_lag_{q}_ms",
            target=target,
            fmt="{:.2f}",
        )
        for q, target in targets.items()
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
        label="push loop push(i), no storage (jobs/s)",
        metric="durable_throughput",
        key="plain_loop_jobs_per_s",
        target="x2",
    ),
    Row(
        label=f"concurrent push(i), {PRODUCERS} producers, no storage (jobs/s)",
        metric="durable_throughput",
        key="plain_concurrent_jobs_per_s",
        target="x2",
    ),
    Row(
        label="durable push loop, SQLite file (jobs/s)",
        metric="durable_throughput",
        key="durable_loop_jobs_per_s",
        target="x10",
    ),
    Row(
        label=f"concurrent durable push, {PRODUCERS} producers, SQLite file (jobs/s)",
        metric="durable_throughput",
        key="durable_concurrent_jobs_per_s",
        target="x10",
    ),
    Row(
        label="burst: N push tasks started at once, durable (jobs/s)",
        metric="durable_throughput",
        key="durable_burst_jobs_per_s",
        target="info",
    ),
    Row(
        label="burst: N push tasks started at once, no storage (jobs/s)",
        metric="durable_throughput",
        key="plain_burst_jobs_per_s",
        target="info",
    ),
    *_lag_rows("loop"),
    *_lag_rows("concurrent"),
    *_lag_rows("burst", targets={"p50": "info", "p99": "info", "max": "info"}),
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

#: PostgreSQL rows (issue 9): jobify_trio against procrastinate on the same server.
PG_ROWS = (
    Row(
        label="durable push loop, PostgreSQL (jobs/s)",
        metric="pg_push",
        key="loop_jobs_per_s",
        target="x3",
    ),
    Row(
        label="concurrent durable push, PostgreSQL (jobs/s)",
        metric="pg_push",
        key="concurrent_jobs_per_s",
        target="min:20000",
    ),
    Row(
        label="end to end: push N at once, then all run (jobs/s)",
        metric="pg_end_to_end",
        key="jobs_per_s",
        target="x10",
    ),
    Row(
        label="end to end, N at once, against APScheduler 4 (jobs/s)",
        metric="pg_end_to_end",
        key="jobs_per_s",
        target="x5",
        peer="apscheduler_pg",
    ),
    Row(
        label="end to end: push N in a loop, then all run (jobs/s)",
        metric="pg_end_to_end",
        key="loop_jobs_per_s",
        target="info",
    ),
    Row(
        label="running N stored jobs only (jobs/s)",
        metric="pg_end_to_end",
        key="worker_jobs_per_s",
        target="info",
    ),
    *(
        Row(
            label=f"end to end, {k} processes on one schema (jobs/s)",
            metric="pg_workers",
            key=f"jobs_per_s_{k}",
            target="info",
        )
        for k in (2, 3)
    ),
    *(
        Row(
            label=f"end to end, {k} processes: CPU of the processes (cores)",
            metric="pg_workers",
            key=f"app_cores_{k}",
            target="info",
            fmt="{:.2f}",
        )
        for k in (2, 3)
    ),
    Row(
        label="1,000 crons x every second, 3 instances: slots missed",
        metric="pg_cron",
        key="missed",
        target="max:0",
    ),
    Row(
        label="1,000 crons x every second, 3 instances: slots fired twice",
        metric="pg_cron",
        key="duplicates",
        target="max:0",
    ),
    Row(
        label="1,000 crons x every second, 3 instances: lateness p50 (ms)",
        metric="pg_cron",
        key="lateness_p50_ms",
        target="info",
        fmt="{:.1f}",
    ),
    Row(
        label="1,000 crons x every second, 3 instances: lateness p99 (ms)",
        metric="pg_cron",
        key="lateness_p99_ms",
        target="max:50",
        fmt="{:.1f}",
    ),
    Row(
        label="1,000 crons x every second, 3 instances: lateness max (ms)",
        metric="pg_cron",
        key="lateness_max_ms",
        target="info",
        fmt="{:.1f}",
    ),
    Row(
        label=f"takeover after SIGKILL, lease {TAKEOVER_LEASE:g} s: first job (s)",
        metric="pg_takeover",
        key="first_s",
        target="info",
        fmt="{:.2f}",
    ),
    Row(
        label=f"takeover after SIGKILL, lease {TAKEOVER_LEASE:g} s: last job (s)",
        metric="pg_takeover",
        key="last_s",
        target=f"max:{TAKEOVER_LEASE + 1:g}",
        fmt="{:.2f}",
    ),
)

RAW_FRACTION_TARGET = 0.40  # push throughput >= 40% of the fastest raw trio figure
DURABLE_FRACTION_TARGET = 0.50  # fastest durable push >= 50% of the fastest plain push
INLINE_COMMIT_TARGET = 0.50  # durable push loop >= 50% of the raw inline-commit ceiling
PG_AUTOCOMMIT_TARGET = 0.50  # PostgreSQL push loop >= 50% of the raw autocommit INSERT loop
METRICS = tuple(dict.fromkeys(m.metric for m in PLAN))


def _values(result: Result | None) -> dict[str, float]:
    if result is None or result.get("status") != "ok":
        return {}
    values = result.get("values")
    return values if isinstance(values, dict) else {}
