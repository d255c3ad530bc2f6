"""Interleaved short rounds of the PostgreSQL push sides, for A/B runs on a noisy machine.

``python benchmarks/pg_interleave.py --rounds 8 --n 2000 [--other before=PY:BENCHDIR]``

Each round runs, in an order rotated every round, the raw autocommit loop and procrastinate
(with the ``.bench/procrastinate-3`` interpreter, created by ``run.py``), jobify_trio with
this interpreter, and every ``--other`` jobify_trio build (its interpreter and its
``benchmarks`` directory), each as ``<side>.py --metric ... --n N --repeat 1``. Rounds that
run close in time share the machine's load, so per-round ratios (printed at the end, median
and min-max) hold better than figures of runs made minutes apart. ``BENCH_PG_CONNINFO``
selects the server and database as for ``run.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROCRASTINATE = HERE.parent / ".bench" / "procrastinate-3" / "bin" / "python"


def _run(python: str, script: Path, metric: str, n: int) -> dict[str, float]:
    argv = [python, str(script), "--metric", metric, "--n", str(n), "--repeat", "1"]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=script.parent, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH_RESULT ")]
    result = json.loads(lines[-1].split(" ", 1)[1]) if lines else {"reason": done.stderr[-300:]}
    if result.get("status") != "ok":
        raise SystemExit(f"{script.name}: {result.get('reason')}")
    values: dict[str, float] = result["values"]["per_round"][0]
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--other", action="append", default=[], help="NAME=PYTHON:BENCHDIR")
    args = parser.parse_args()
    sides = {
        "raw": (str(PROCRASTINATE), HERE / "_raw_pg_side.py", "pg_raw_insert"),
        "procrastinate": (str(PROCRASTINATE), HERE / "_procrastinate_side.py", "pg_push"),
        "jobify_trio": (sys.executable, HERE / "_trio_side.py", "pg_push"),
    }
    for other in args.other:
        name, _, rest = other.partition("=")
        python, _, bench = rest.partition(":")
        sides[name] = (python, Path(bench) / "_trio_side.py", "pg_push")
    names = list(sides)
    got: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for index in range(args.rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            got[name].append(_run(*sides[name][:2], sides[name][2], args.n))
            print(index, name, got[name][-1], flush=True)
    _summary(got)


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):,.2f} ({min(values):,.2f}-{max(values):,.2f})"


def _summary(got: dict[str, list[dict[str, float]]]) -> None:
    raw = [v["autocommit_rows_per_s"] for v in got["raw"]]
    pro = [v["loop_jobs_per_s"] for v in got["procrastinate"]]
    print("raw autocommit rows/s", _spread(raw))
    print("procrastinate loop jobs/s", _spread(pro))
    for name in [n for n in got if n not in ("raw", "procrastinate")]:
        loop = [v["loop_jobs_per_s"] for v in got[name]]
        concurrent = [v["concurrent_jobs_per_s"] for v in got[name]]
        print(f"{name}: loop {_spread(loop)}, concurrent {_spread(concurrent)}")
        to_raw = [a / b for a, b in zip(loop, raw, strict=True)]
        to_procrastinate = [a / b for a, b in zip(loop, pro, strict=True)]
        print(f"  loop / raw, same round: {_spread(to_raw)}")
        print(f"  loop / procrastinate, same round: {_spread(to_procrastinate)}")


if __name__ == "__main__":
    main()
