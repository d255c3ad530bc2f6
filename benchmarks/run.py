"""Benchmark jobify_trio against Jobify 0.14.0, APScheduler 4, procrastinate and raw ceilings.

Usage: ``python benchmarks/run.py [--quick] [--only METRIC[,METRIC]] [--n N] [--repeat R]
[--mem-n M] [--check] [--out PATH] [--render-only] [--readme-only]``

Every side runs in its own interpreter: Jobify 0.14.0 in the virtualenv
``<repo>/.bench/jobify-0.14.0``, the latest APScheduler 4 pre-release (on trio) in
``<repo>/.bench/apscheduler-4``, procrastinate 3 with psycopg (and the raw PostgreSQL
ceiling) in ``<repo>/.bench/procrastinate-3`` (all created on first use), jobify_trio and
raw trio with the interpreter running this script and the repository on ``PYTHONPATH``.
Every side gets the same rounds and warm-up; every round is kept and each figure is the
median of all rounds with its min-max spread (never the best round). The table goes to
stdout, the report with machine and versions to ``benchmarks/RESULTS.md`` (a full run; a
``--quick``, ``--only`` or custom-size run writes ``.bench/RESULTS-partial.md`` instead),
everything measured to ``benchmarks/results.json``. A full run (and ``--render-only`` of
one) also rewrites the summary between the ``bench-summary`` markers of ``README.md`` from
``benchmarks/RESULTS.md``; ``--readme-only`` does only that.

The plan and the table rows are in ``_plan.py`` (how to add a metric is described there),
the tables and their verdicts in ``_table.py``, machine facts and the Markdown in
``_report.py``, the README summary in ``_summary.py``.
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

import _report
import _summary
from _common import RESULT_MARKER
from _plan import (
    ALIASES,
    JOBIFY_VERSION,
    METRICS,
    PLAN,
    SIDES,
    VENV_SIDES,
    Measurement,
    Result,
    Results,
    Settings,
    Side,
)
from _table import (
    HEADER,
    PG_HEADER,
    build_pg_rows,
    build_rows,
    ceiling_notes,
    footer,
    format_table,
    pg_ceiling_notes,
    targets_met,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS_FILE = HERE / "results.json"
REPORT_FILE = HERE / "RESULTS.md"
README_FILE = REPO / "README.md"
PARTIAL_REPORT_FILE = REPO / ".bench" / "RESULTS-partial.md"


# --------------------------------------------------------------------------- environment


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


@dataclass(frozen=True, kw_only=True)
class Venv:
    """A benchmark virtualenv under ``<repo>/.bench`` holding one other scheduler."""

    path: Path
    dist: str  # the distribution whose version decides whether the venv is usable
    wanted: Callable[[str], bool]
    requirements: tuple[str, ...]


def _trio_requirement() -> str:
    """The trio of this interpreter, so APScheduler runs on the same trio as jobify_trio."""
    version = _report.local_version("trio")
    return f"trio=={version}" if version[:1].isdigit() else "trio"


VENVS = {
    "jobify": Venv(
        path=REPO / ".bench" / f"jobify-{JOBIFY_VERSION}",
        dist="jobify",
        wanted=lambda v: v == JOBIFY_VERSION,
        requirements=(f"jobify=={JOBIFY_VERSION}",),
    ),
    "apscheduler": Venv(
        path=REPO / ".bench" / "apscheduler-4",
        dist="apscheduler",
        wanted=lambda v: v.startswith("4."),
        requirements=("--pre", "apscheduler>=4.0.0a1", _trio_requirement()),
    ),
    "procrastinate": Venv(
        path=REPO / ".bench" / "procrastinate-3",
        dist="procrastinate",
        wanted=lambda v: v.startswith("3."),
        requirements=("procrastinate>=3,<4", "psycopg[binary]>=3.1"),
    ),
    # APScheduler's SQLAlchemy data store on PostgreSQL (asyncio: asyncpg is asyncio only)
    "apscheduler_pg": Venv(
        path=REPO / ".bench" / "apscheduler-4-pg",
        dist="apscheduler",
        wanted=lambda v: v == "4.0.0a6",
        requirements=(
            "apscheduler==4.0.0a6",
            "sqlalchemy[asyncio]>=2",
            "asyncpg",
            "psycopg[binary]>=3.1",
            "sniffio",  # imported by apscheduler 4.0.0a6, no longer pulled in by anyio
        ),
    ),
}


def ensure_venv(venv: Venv) -> Path | str:
    """The venv's interpreter, creating the venv if needed; a reason on failure."""
    python = _venv_python(venv.path)
    if venv.wanted(_report.venv_version(python, venv.dist)):
        return python
    print(f"creating {venv.path} with {' '.join(venv.requirements)} ...", file=sys.stderr)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    steps = (
        [sys.executable, "-m", "venv", "--clear", str(venv.path)],
        [*pip, *venv.requirements],
    )
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return f"{' '.join(step[:3])} failed: {done.stderr.strip()[-300:]}"
    installed = _report.venv_version(python, venv.dist)
    if not venv.wanted(installed):
        return f"{venv.dist} from {python}: {installed}"
    return python


# --------------------------------------------------------------------------- running sides


def _side_command(side: Side, python: Path | str) -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ)
    if side.venv is not None:
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


# --------------------------------------------------------------------------- main


@dataclass(frozen=True, kw_only=True)
class Options:
    settings: Settings
    quick: bool
    check: bool
    only: tuple[str, ...]  # empty: every metric
    out: Path
    render_only: bool
    readme_only: bool


def _parse_only(value: str | None) -> tuple[str, ...]:
    given = (n.strip() for n in (value or "").split(",") if n.strip())
    names = tuple(dict.fromkeys(m for n in given for m in ALIASES.get(n, (n,))))
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise SystemExit(f"--only: unknown metric(s) {unknown}; known: {', '.join(METRICS)}")
    return names


def parse_options(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes (about 2 min)")
    names = ", ".join([*METRICS, *ALIASES])
    parser.add_argument("--only", metavar="METRIC[,METRIC]", help=f"any of {names}")
    parser.add_argument("--n", type=int, help="jobs per throughput/latency round")
    parser.add_argument(
        "--repeat", type=int, help="rounds per measurement and pass (all kept: median, min-max)"
    )
    parser.add_argument("--mem-n", type=int, help="delayed jobs for the memory figure")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--cron-long", action="store_true", help="cron fires for 60 s, not 10")
    parser.add_argument("--idle-seconds", type=float, help="cron idle window (default 60)")
    parser.add_argument("--out", type=Path, help="Markdown report path")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="measure nothing: rewrite the report of the run saved in results.json",
    )
    parser.add_argument(
        "--readme-only",
        action="store_true",
        help="measure nothing: rewrite README.md's summary from benchmarks/RESULTS.md",
    )
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    only = _parse_only(args.only)
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
        timeout=60.0 * max(1.0, (args.repeat or 2) / 2) if quick else 300.0,
    )
    partial = quick or bool(only) or bool(args.n or args.repeat or args.mem_n)
    out = args.out or (PARTIAL_REPORT_FILE if partial else REPORT_FILE)
    return Options(
        settings=settings,
        quick=quick,
        check=bool(args.check),
        only=only,
        out=out,
        render_only=bool(args.render_only),
        readme_only=bool(args.readme_only),
    )


#: The raw ceilings a metric's percentages are computed from, measured with it.
CEILINGS = {
    "throughput": ("channel", "spawn"),
    "durable_throughput": ("sqlite_commit",),
    "pg_push": ("pg_raw_insert",),
}


def selected_plan(only: tuple[str, ...]) -> tuple[Measurement, ...]:
    """The measurements for ``only``, plus the raw ceilings their percentages need."""
    if not only:
        return PLAN
    wanted = {*only, *(c for name in only for c in CEILINGS.get(name, ()))}
    return tuple(m for m in PLAN if m.metric in wanted)


def run_plan(
    plan: tuple[Measurement, ...],
    pythons: dict[str, Path | str],
    settings: Settings,
    log: Callable[[str], None],
) -> tuple[Results, list[float]]:
    """Run the plan ``passes`` times, interleaved, so a noisy moment hits every side alike.
    Also returns the 1-minute load average seen before each measurement."""
    runs: dict[Measurement, list[Result]] = {m: [] for m in plan}
    loads: list[float] = []
    for number in range(1, settings.passes + 1):
        for m in plan:
            python = pythons.get(m.side, Path(sys.executable))
            if isinstance(python, str):
                runs[m].append({"status": "unavailable", "reason": python})
                continue
            if (load := _report.load_average()) is not None:
                loads.append(load)
            log(f"  pass {number}/{settings.passes}: {m.side}/{m.metric} ...")
            runs[m].extend(measure(m, python, settings))
    results: Results = {name: {} for name in SIDES}
    for m, side_runs in runs.items():
        results[m.side][m.metric] = m.reduce(side_runs)
    return results, loads


def _sizes(o: Options, elapsed: float) -> str:
    s = o.settings
    return (
        f"n={s.n}, repeat={s.repeat}, passes={s.passes}, mem_n={s.mem_n}, "
        f"cron {os.environ['BENCH_CRON_SECONDS']} s, idle {os.environ['BENCH_IDLE_SECONDS']} s, "
        f"{'quick, ' if o.quick else ''}{elapsed:.0f} s; every figure is the median of all "
        f"rounds (min-max in brackets)"
    )


def write_report(
    o: Options,
    argv: list[str],
    rows: list[list[str]],
    results: Results,
    pythons: dict[str, Path | str],
    loads: list[float],
    elapsed: float,
    *,
    date: str,
    commit: str,
) -> None:
    """The Markdown report; after a full run, the README summary taken from it."""
    kind = "partial (--quick/--only/custom sizes)" if o.out != REPORT_FILE else "full"
    load = f"{min(loads):.2f} to {max(loads):.2f}" if loads else "unknown"
    run = {
        "date": date,
        "command": f"`{_report.command_line(argv)}` (from the repository root)",
        "run": f"{kind}; {_sizes(o, elapsed)}",
        "repository commit": commit,
        "1-min load average before each measurement": f"{load} on {os.cpu_count()} cores",
    }
    facts = {
        "Run": run,
        "Machine": _report.machine(),
        "Versions": _report.versions(
            pythons["jobify"],
            pythons["apscheduler"],
            pythons["procrastinate"],
            pythons["apscheduler_pg"],
        ),
    }
    pg_rows = build_pg_rows(results)
    tables = {"Results": (HEADER, rows)}
    if pg_rows:
        tables["PostgreSQL"] = (PG_HEADER, pg_rows)
    _report.write_markdown(
        o.out,
        title_note=(
            "Written by `benchmarks/run.py`; the method of each figure is in "
            "`docs/benchmarks.rst`. Each figure is the median of all rounds, with the "
            "min-max spread in brackets. Ratios are jobify_trio / the first peer (ratio of "
            "medians; bounds: worst and best pairing of the two spreads). A verdict is "
            "`yes` or `NO` only when the whole spread is on one side of the target, "
            "otherwise `inconclusive`. For rates higher is better, for times, bytes and "
            "lateness lower is better. `—` = not measured."
        ),
        tables=tables,
        facts=facts,
        sections={
            "Raw ceilings": ceiling_notes(results) + pg_ceiling_notes(results)
            or ["not measured in this run"],
            "Notes": footer(results),
        },
    )
    if o.out == REPORT_FILE:
        _summary.update_readme(REPORT_FILE, README_FILE)


def _venv_pythons(sides: set[str]) -> dict[str, Path | str]:
    """The interpreter of every venv side in ``sides`` (a reason when unusable)."""
    venvs = {SIDES[s].venv for s in sides} - {None}
    made = {name: ensure_venv(VENVS[name]) for name in sorted(v for v in venvs if v)}
    by_venv = {name: made.get(name, "not run") for name in VENVS}
    pythons: dict[str, Path | str] = {}
    for side in VENV_SIDES:
        venv = SIDES[side].venv
        pythons[side] = by_venv[venv] if venv is not None else "not run"
    return {**pythons, **{f"venv:{name}": p for name, p in by_venv.items()}}


def render_saved(o: Options) -> int:
    """Rewrite the report from ``results.json`` (after a change to the report only)."""
    saved = json.loads(RESULTS_FILE.read_text(encoding="utf-8"))
    meta = saved["meta"]
    results: Results = saved["results"]
    pythons: dict[str, Path | str] = {
        name: _venv_python(VENVS[name].path) for name in VENVS if name in SIDES
    }
    s = Settings(**meta["settings"])
    out = Path(meta.get("out", REPORT_FILE))
    o = dataclasses.replace(o, settings=s, quick=meta["quick"], only=tuple(meta["only"]), out=out)
    os.environ.update(meta["env"])
    for side in SIDES:  # a saved run from before a side existed
        results.setdefault(side, {})
    rows = build_rows(results)
    print(format_table(rows))
    if pg_rows := build_pg_rows(results):
        print(format_table(pg_rows, PG_HEADER))
    args = (o, meta["argv"], rows, results, dict(pythons), meta["loads"], meta["elapsed_s"])
    write_report(*args, date=meta["date"], commit=meta["commit"])
    print(f"report: {o.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    o = parse_options(argv)
    if o.readme_only:
        _summary.update_readme(REPORT_FILE, README_FILE)
        print(f"summary of {REPORT_FILE} written to {README_FILE}")
        return 0
    if o.render_only:
        return render_saved(o)
    started = time.perf_counter()
    commit_before = _report.git_commit(REPO)
    plan = selected_plan(o.only)
    pythons = _venv_pythons({m.side for m in plan})
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    results, loads = run_plan(plan, pythons, o.settings, log)
    rows = build_rows(results)
    pg_rows = build_pg_rows(results)
    elapsed = time.perf_counter() - started
    if rows:
        print(format_table(rows))
    if pg_rows:
        print(format_table(pg_rows, PG_HEADER))
    print()
    print("\n".join([*ceiling_notes(results), *pg_ceiling_notes(results), *footer(results)]))
    print(f"\n({_sizes(o, elapsed)})")
    o.out.parent.mkdir(parents=True, exist_ok=True)
    date = _report.timestamp()
    commit = _report.git_commit(REPO)
    if commit != commit_before:
        commit = f"{commit_before} at the start, {commit} at the end"
    write_report(o, argv, rows, results, pythons, loads, elapsed, date=date, commit=commit)
    print(f"report: {o.out}")
    env = {k: os.environ[k] for k in ("BENCH_CRON_SECONDS", "BENCH_IDLE_SECONDS")}
    report = {
        "meta": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "quick": o.quick,
            "only": list(o.only),
            "argv": argv,
            "out": str(o.out),
            "env": env,
            "loads": loads,
            "date": date,
            "commit": commit,
            "settings": dataclasses.asdict(o.settings),
            "elapsed_s": round(elapsed, 1),
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        "table": [dict(zip(HEADER, r, strict=True)) for r in rows],
        "results": results,
    }
    RESULTS_FILE.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 1 if o.check and not targets_met(rows + pg_rows) else 0


if __name__ == "__main__":
    sys.exit(main())
