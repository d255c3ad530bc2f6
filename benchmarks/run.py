"""Benchmark jobify_trio against Jobify 0.14.0 and a raw trio ceiling.

Usage: ``python benchmarks/run.py [--quick] [--n N] [--repeat R] [--mem-n M] [--check]``

Every side runs in its own interpreter: Jobify 0.14.0 in the virtualenv
``<repo>/.bench/jobify-0.14.0`` (created on first use), jobify_trio and raw trio with the
interpreter running this script and the repository on ``PYTHONPATH``. Each measurement is
repeated and the best round is kept (shared machines are noisy). The table goes to stdout,
everything measured to ``benchmarks/results.json``.

To add a metric: register a function under the same name in the side modules
(``@registry.metric("name")``), add a :class:`Measurement` to :data:`PLAN` and, if it
belongs in the table, a :class:`Row` to :data:`ROWS`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _common import RESULT_MARKER

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
JOBIFY_VERSION = "0.14.0"
JOBIFY_VENV = REPO / ".bench" / f"jobify-{JOBIFY_VERSION}"
RESULTS_FILE = HERE / "results.json"

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
    target: str  # "x2" | "lower" | "info"
    fmt: str = "{:,.0f}"


SIDES = {
    "jobify_trio": Side(name="jobify_trio", script="_trio_side.py", label="jobify_trio"),
    "jobify": Side(name="jobify", script="_jobify_side.py", label=f"Jobify {JOBIFY_VERSION}"),
    "raw_trio": Side(name="raw_trio", script="_raw_side.py", label="raw trio"),
}

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
        label="durable push, SQLite file (jobs/s; target >= 10x)",
        metric="durable_throughput",
        key="jobs_per_s",
        target="info",
    ),
    Row(
        label="restore 100k stored jobs (s; target <= 2)",
        metric="restore",
        key="seconds",
        target="lower",
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
        target="lower",
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
        label="cron idle CPU, 10k jobs (ms; target <= 50)",
        metric="cron_idle",
        key="idle_cpu_ms",
        target="info",
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
)
RAW_FRACTION_TARGET = 0.40


# --------------------------------------------------------------------------- environment


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _installed_jobify(python: Path) -> str | None:
    if not python.exists():
        return None
    probe = "import importlib.metadata as m; print(m.version('jobify'))"
    done = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_jobify_venv() -> Path | str:
    """The Jobify venv's interpreter, creating the venv if needed; a reason on failure."""
    python = _venv_python(JOBIFY_VENV)
    if _installed_jobify(python) == JOBIFY_VERSION:
        return python
    print(f"creating {JOBIFY_VENV} with jobify=={JOBIFY_VERSION} ...", file=sys.stderr)
    steps = (
        [sys.executable, "-m", "venv", "--clear", str(JOBIFY_VENV)],
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            f"jobify=={JOBIFY_VERSION}",
        ],
    )
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return f"{' '.join(step[:3])} failed: {done.stderr.strip()[-300:]}"
    if _installed_jobify(python) != JOBIFY_VERSION:
        return f"jobify {JOBIFY_VERSION} not importable from {python}"
    return python


# --------------------------------------------------------------------------- running sides


def _side_command(side: Side, python: Path | str) -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ)
    if side.name == "jobify":
        env.pop("PYTHONPATH", None)
    else:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return [str(python), str(HERE / side.script)], env


def _run_side(cmd: list[str], env: dict[str, str], timeout: float) -> Result:
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"status": "error", "reason": f"timed out after {timeout:.0f} s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            result: Result = json.loads(line[len(RESULT_MARKER) :])
            return result
    tail = (done.stderr or done.stdout).strip()[-300:]
    return {"status": "error", "reason": f"exit {done.returncode}, no result: {tail}"}


def _args_for(m: Measurement, s: Settings, repeat: int) -> list[str]:
    return ["--metric", m.metric, "--n", str(s.n), "--repeat", str(repeat), "--mem-n", str(s.mem_n)]


def measure(m: Measurement, python: Path | str, s: Settings) -> list[Result]:
    """Run one measurement: one process with ``repeat`` rounds, or for fresh-process
    measurements ``mem_repeat`` processes of one round each."""
    cmd, env = _side_command(SIDES[m.side], python)
    if not m.fresh_process:
        return [_run_side([*cmd, *_args_for(m, s, s.repeat)], env, s.timeout)]
    return [_run_side([*cmd, *_args_for(m, s, 1)], env, s.timeout) for _ in range(s.mem_repeat)]


def _values(result: Result | None) -> dict[str, float]:
    if result is None or result.get("status") != "ok":
        return {}
    values = result.get("values")
    return values if isinstance(values, dict) else {}


# --------------------------------------------------------------------------- report


def _cell(value: float | None, fmt: str) -> str:
    return "—" if value is None else fmt.format(value)


def _verdict(row: Row, ours: float | None, theirs: float | None) -> str:
    if row.target == "info":
        return "(info)"
    if ours is None or theirs is None:
        return "n/a"
    met = ours >= 2 * theirs if row.target == "x2" else ours <= theirs
    goal = ">= 2x" if row.target == "x2" else "<= Jobify"
    return f"{'yes' if met else 'NO'} ({goal})"


def build_rows(results: Results) -> list[list[str]]:
    """Table rows: metric | jobify_trio | Jobify | ratio | target met?"""
    table: list[list[str]] = []
    for row in ROWS:
        ours = _values(results["jobify_trio"].get(row.metric)).get(row.key)
        theirs = _values(results["jobify"].get(row.metric)).get(row.key)
        ratio = f"{ours / theirs:.2f}x" if ours is not None and theirs else "—"
        table.append(
            [
                row.label,
                _cell(ours, row.fmt),
                _cell(theirs, row.fmt),
                ratio,
                _verdict(row, ours, theirs),
            ]
        )
    table.append(_raw_fraction_row(results))
    return table


def _raw_fraction_row(results: Results) -> list[str]:
    raw = _values(results["raw_trio"].get("channel")).get("items_per_s")
    ours = _values(results["jobify_trio"].get("throughput")).get("jobs_per_s")
    theirs = _values(results["jobify"].get("throughput")).get("jobs_per_s")

    def pct(x: float | None) -> float | None:
        return None if x is None or not raw else 100 * x / raw

    verdict = "n/a"
    if (p := pct(ours)) is not None:
        met = p >= 100 * RAW_FRACTION_TARGET
        verdict = f"{'yes' if met else 'NO'} (>= {RAW_FRACTION_TARGET:.0%})"
    return [
        "throughput / raw ceiling (%)",
        _cell(pct(ours), "{:.1f}"),
        _cell(pct(theirs), "{:.1f}"),
        "—",
        verdict,
    ]


def format_table(rows: list[list[str]]) -> str:
    header = ["metric", SIDES["jobify_trio"].label, SIDES["jobify"].label, "ratio", "target met?"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return " | ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(header), "-+-".join("-" * w for w in widths), *map(line, rows)])


def footer(results: Results) -> list[str]:
    channel = _values(results["raw_trio"].get("channel"))
    spawn = _values(results["raw_trio"].get("spawn"))
    jthr = _values(results["jobify"].get("throughput"))
    notes = [
        f"raw trio ceiling (memory channel -> 1 consumer): "
        f"{_cell(channel.get('items_per_s'), '{:,.0f}')} items/s "
        f"(buffer 1024: {_cell(channel.get('bounded_1024_items_per_s'), '{:,.0f}')}); "
        f"task per item: {_cell(spawn.get('tasks_per_s'), '{:,.0f}')} tasks/s",
        f"Jobify throughput: best of its own asyncio.gather method "
        f"({_cell(jthr.get('gather_jobs_per_s'), '{:,.0f}')}/s) and a push loop "
        f"({_cell(jthr.get('loop_jobs_per_s'), '{:,.0f}')}/s)",
    ]
    for side, metrics in results.items():
        for metric, result in metrics.items():
            if result.get("status") != "ok":
                notes.append(f"{side}/{metric}: {result.get('status')}: {result.get('reason')}")
    return notes


def targets_met(rows: list[list[str]]) -> bool:
    return not any(r[-1].startswith(("NO", "n/a")) for r in rows)


# --------------------------------------------------------------------------- main


def parse_settings(argv: list[str] | None) -> tuple[Settings, bool, bool]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes (< 30 s)")
    parser.add_argument("--n", type=int, help="jobs per throughput/latency round")
    parser.add_argument("--repeat", type=int, help="rounds per measurement (best kept)")
    parser.add_argument("--mem-n", type=int, help="delayed jobs for the memory figure")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--cron-long", action="store_true", help="cron fires for 60 s, not 10")
    parser.add_argument("--idle-seconds", type=float, help="cron idle window (default 60)")
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    cron_seconds = 60 if args.cron_long else (3 if quick else 10)
    os.environ.setdefault("BENCH_CRON_SECONDS", str(cron_seconds))  # read by _cron_bench.py
    idle = args.idle_seconds or (5.0 if quick else 60.0)
    os.environ.setdefault("BENCH_IDLE_SECONDS", str(idle))
    settings = Settings(
        n=args.n or (2_000 if quick else 10_000),
        repeat=args.repeat or (2 if quick else 7),
        mem_n=args.mem_n or (20_000 if quick else 100_000),
        mem_repeat=1 if quick else 2,
        passes=1 if quick else 2,
        timeout=60.0 if quick else 300.0,
    )
    return settings, quick, bool(args.check)


def run_plan(settings: Settings, log: Callable[[str], None]) -> Results:
    """Run the plan ``passes`` times, interleaved, so a noisy moment hits every side alike."""
    jobify_python = ensure_jobify_venv()
    runs: dict[Measurement, list[Result]] = {m: [] for m in PLAN}
    for number in range(1, settings.passes + 1):
        for m in PLAN:
            if m.side == "jobify" and isinstance(jobify_python, str):
                runs[m].append({"status": "unavailable", "reason": jobify_python})
                continue
            python = jobify_python if m.side == "jobify" else sys.executable
            log(f"  pass {number}/{settings.passes}: {m.side}/{m.metric} ...")
            runs[m].extend(measure(m, python, settings))
    results: Results = {name: {} for name in SIDES}
    for m, side_runs in runs.items():
        results[m.side][m.metric] = m.best(side_runs)
    return results


def main(argv: list[str] | None = None) -> int:
    settings, quick, check = parse_settings(argv)
    started = time.perf_counter()
    results = run_plan(settings, lambda msg: print(msg, file=sys.stderr, flush=True))
    rows = build_rows(results)
    print(format_table(rows))
    print()
    print("\n".join(footer(results)))
    elapsed = time.perf_counter() - started
    print(
        f"\n(n={settings.n}, repeat={settings.repeat}, passes={settings.passes},"
        f" mem_n={settings.mem_n}, "
        f"{'quick, ' if quick else ''}{elapsed:.0f} s; best of all rounds kept)"
    )
    report = {
        "meta": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "quick": quick,
            "settings": dataclasses.asdict(settings),
            "elapsed_s": round(elapsed, 1),
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        "table": [
            dict(zip(["metric", "jobify_trio", "jobify", "ratio", "target"], r, strict=True))
            for r in rows
        ],
        "results": results,
    }
    RESULTS_FILE.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 1 if check and not targets_met(rows) else 0


if __name__ == "__main__":
    sys.exit(main())
