"""The comparison tables: one row per figure, targets and verdicts, and notes.

Every figure is the median of all rounds with its min-max spread. A ratio (or a
percentage) of two figures is the ratio of their medians, bounded by the worst and best
pairing of the two spreads: ``[ours_min / theirs_max, ours_max / theirs_min]``. A verdict
is "yes" only when the whole spread meets the target, "NO" only when the whole spread
misses it, and "inconclusive" otherwise (run more rounds, or on a quieter machine).
"""

from __future__ import annotations

from dataclasses import dataclass

from _plan import (
    DURABLE_FRACTION_TARGET,
    INLINE_COMMIT_TARGET,
    PG_AUTOCOMMIT_TARGET,
    PG_ROWS,
    RAW_FRACTION_TARGET,
    ROWS,
    SIDES,
    Results,
    Row,
    _values,
)

MAIN_PEERS = ("jobify", "apscheduler")
PG_PEERS = ("procrastinate", "apscheduler_pg")


def header(peers: tuple[str, ...]) -> list[str]:
    first = SIDES[peers[0]].label.split()[0]
    return [
        "metric",
        SIDES["jobify_trio"].label,
        *(SIDES[p].label for p in peers),
        f"ratio (trio / {first})",
        "target",
        "met?",
    ]


HEADER = header(MAIN_PEERS)
PG_HEADER = [
    *header(PG_PEERS)[:4],
    "ratio (trio / procrastinate, or the peer named)",
    "target",
    "met?",
]


@dataclass(frozen=True)
class Stat:
    """A median with the min-max spread around it."""

    mid: float
    lo: float
    hi: float

    def scaled(self, k: float) -> Stat:
        return Stat(self.mid * k, self.lo * k, self.hi * k)

    def over(self, other: Stat) -> Stat | None:
        """This / other: ratio of medians, bounds from the extreme pairings."""
        if other.lo <= 0 or other.mid <= 0:
            return None
        return Stat(self.mid / other.mid, self.lo / other.hi, self.hi / other.lo)

    def text(self, fmt: str) -> str:
        mid = fmt.format(self.mid)
        lo, hi = fmt.format(self.lo), fmt.format(self.hi)
        return mid if lo == hi == mid else f"{mid} ({lo}–{hi})"  # noqa: RUF001


def stat(results: Results, side: str, metric: str, key: str) -> Stat | None:
    values = _values(results.get(side, {}).get(metric))
    mid = values.get(key)
    if not isinstance(mid, int | float):
        return None
    return Stat(
        float(mid), float(values.get(f"{key}__min", mid)), float(values.get(f"{key}__max", mid))
    )


def _cell(value: Stat | None, fmt: str) -> str:
    return "—" if value is None else value.text(fmt)


def _judge(lo_ok: bool, hi_ok: bool) -> str:
    """yes if even the worst end of the spread meets the goal, NO if even the best misses."""
    return "yes" if lo_ok else ("inconclusive" if hi_ok else "NO")


def _goal(goal: str, ours: Stat | None, theirs: Stat | None, peer: str) -> tuple[str, str | None]:
    """One goal of a target: its text, and its verdict (None: not measurable)."""
    if goal.startswith("x"):
        k = float(goal[1:])
        ratio = None if ours is None or theirs is None else ours.over(theirs)
        return f">= {k:g}x {peer}", None if ratio is None else _judge(ratio.lo >= k, ratio.hi >= k)
    if goal == "lower":
        if ours is None or theirs is None:
            return f"<= {peer}", None
        return f"<= {peer}", _judge(ours.hi <= theirs.lo, ours.lo <= theirs.hi)
    if goal.startswith(("max:", "min:")):
        bound, is_max = float(goal[4:]), goal.startswith("max")
        text = f"{'<=' if is_max else '>='} {bound:g}"
        if ours is None:
            return text, None
        if is_max:
            return text, _judge(ours.hi <= bound, ours.lo <= bound)
        return text, _judge(ours.lo >= bound, ours.hi >= bound)
    raise ValueError(f"unknown target goal {goal!r}")


def _verdict(target: str, ours: Stat | None, theirs: Stat | None, peer: str) -> tuple[str, str]:
    """(target text, met?) for a row."""
    if target == "info":
        return "—", "(info)"
    checks = [_goal(g, ours, theirs, peer) for g in target.split("+")]
    verdicts = [v for _, v in checks]
    text = " and ".join(t for t, _ in checks)
    if None in verdicts:
        return text, "n/a"
    if "NO" in verdicts:
        return text, "NO"
    return text, "yes" if all(v == "yes" for v in verdicts) else "inconclusive"


def _table(results: Results, rows: tuple[Row, ...], peers: tuple[str, ...]) -> list[list[str]]:
    measured = {metric for metrics in results.values() for metric in metrics}
    peer_name = SIDES[peers[0]].label.split()[0]
    table: list[list[str]] = []
    for row in rows:
        if row.metric not in measured:
            continue
        ours = stat(results, "jobify_trio", row.metric, row.key)
        others = [stat(results, p, row.metric, row.key) for p in peers]
        peer = row.peer or peers[0]
        theirs = stat(results, peer, row.metric, row.key)
        ratio = None if ours is None or theirs is None else ours.over(theirs)
        cells = [_cell(ours, row.fmt), *(_cell(o, row.fmt) for o in others)]
        label = SIDES[peer].label.split()[0] if row.peer else peer_name
        verdict = _verdict(row.target, ours, theirs, label)
        table.append([row.label, *cells, _cell(ratio, "{:.2f}x"), *verdict])
    return table


def _fastest(*stats: Stat | None) -> Stat | None:
    """The figure with the highest median: the strictest denominator."""
    present = [s for s in stats if s is not None]
    return max(present, key=lambda s: s.mid) if present else None


def _pct(num: Stat | None, den: Stat | None) -> Stat | None:
    ratio = None if num is None or den is None else num.over(den)
    return None if ratio is None else ratio.scaled(100)


def _pct_row(label: str, pcts: list[Stat | None], target: float) -> list[str]:
    bound = f"min:{100 * target:g}"
    cells = [_cell(p, "{:.1f}") for p in pcts]
    return [label, *cells, "—", *_verdict(bound, pcts[0], None, "")]


def _fraction_rows(results: Results) -> list[list[str]]:
    """Percentages with the strictest denominators (see docs/benchmarks.rst)."""
    measured = {metric for metrics in results.values() for metric in metrics}
    sides = ("jobify_trio", *MAIN_PEERS)
    rows = []
    if "throughput" in measured:
        ceiling = _fastest(
            stat(results, "raw_trio", "channel", "items_per_s"),
            stat(results, "raw_trio", "spawn", "tasks_per_s"),
        )
        pcts = [_pct(stat(results, s, "throughput", "jobs_per_s"), ceiling) for s in sides]
        rows.append(_pct_row("throughput / fastest raw trio figure (%)", pcts, RAW_FRACTION_TARGET))
    if "durable_throughput" in measured:

        def durable_pct(side: str) -> Stat | None:
            def get(key: str) -> Stat | None:
                return stat(results, side, "durable_throughput", key)

            durable = _fastest(get("durable_loop_jobs_per_s"), get("durable_concurrent_jobs_per_s"))
            plain = _fastest(
                stat(results, side, "throughput", "jobs_per_s"),
                get("plain_loop_jobs_per_s"),
                get("plain_concurrent_jobs_per_s"),
                get("plain_burst_jobs_per_s"),  # the strictest denominator
            )
            return _pct(durable, plain)

        label = "fastest durable push / fastest own plain push (%)"
        rows.append(_pct_row(label, [durable_pct(s) for s in sides], DURABLE_FRACTION_TARGET))
        inline = stat(results, "raw_trio", "sqlite_commit", "rows_per_s")
        pcts = [
            _pct(stat(results, s, "durable_throughput", "durable_loop_jobs_per_s"), inline)
            for s in sides
        ]
        label = "durable push loop / raw inline-commit ceiling (%)"
        rows.append(_pct_row(label, pcts, INLINE_COMMIT_TARGET))
    return rows


def _one_after_other(a: Stat, b: Stat) -> Stat:
    """The rate of doing a then b for each item: ``1 / (1/a + 1/b)``, bounds likewise."""

    def both(x: float, y: float) -> float:
        return 1 / (1 / x + 1 / y) if x > 0 and y > 0 else 0.0

    return Stat(both(a.mid, b.mid), both(a.lo, b.lo), both(a.hi, b.hi))


def _loop_bound_rows(results: Results) -> list[list[str]]:
    """How fast a durable loop that commits each push could be, at best.

    Such a push does at least what a non-durable push does (the plain loop, which also
    runs the job) and one commit of its row (the raw inline-commit ceiling), one after
    the other: no call can share another's commit. Against Jobify's durable loop this
    bounds the ratio a commit-per-push loop can reach on this machine. Ours journals a
    push's row instead (SQLite's push journal, docs/durability.rst), so it may pass it.
    """
    plain = stat(results, "jobify_trio", "durable_throughput", "plain_loop_jobs_per_s")
    inline = stat(results, "raw_trio", "sqlite_commit", "rows_per_s")
    theirs = stat(results, "jobify", "durable_throughput", "durable_loop_jobs_per_s")
    if plain is None or inline is None:
        return []
    bound = _one_after_other(plain, inline)
    ratio = None if theirs is None else bound.over(theirs)
    label = (
        "bound on a commit-per-push loop: own plain loop + one raw inline commit per job (jobs/s)"
    )
    cells = [_cell(bound, "{:,.0f}"), _cell(theirs, "{:,.0f}"), "—"]
    return [[label, *cells, _cell(ratio, "{:.2f}x"), "—", "(info)"]]


def build_rows(results: Results) -> list[list[str]]:
    """The main table (see HEADER) for every row whose metric was measured."""
    return [
        *_table(results, ROWS, MAIN_PEERS),
        *_fraction_rows(results),
        *_loop_bound_rows(results),
    ]


def build_pg_rows(results: Results) -> list[list[str]]:
    """The PostgreSQL table (see PG_HEADER); empty when no PostgreSQL metric ran."""
    table = _table(results, PG_ROWS, PG_PEERS)
    if not any("pg_push" in metrics for metrics in results.values()):
        return table
    ceiling = stat(results, "raw_pg", "pg_raw_insert", "autocommit_rows_per_s")
    pcts = [
        _pct(stat(results, s, "pg_push", "loop_jobs_per_s"), ceiling)
        for s in ("jobify_trio", *PG_PEERS)
    ]
    label = "push loop / raw autocommit INSERT loop (%)"
    return [*table, _pct_row(label, pcts, PG_AUTOCOMMIT_TARGET)]


def format_table(rows: list[list[str]], head: list[str] | None = None) -> str:
    head = head or HEADER
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return " | ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(head), "-+-".join("-" * w for w in widths), *map(line, rows)])


def _note(results: Results, side: str, metric: str, key: str, text: str, fmt: str) -> list[str]:
    value = stat(results, side, metric, key)
    return [] if value is None else [f"{text}: {value.text(fmt)}"]


def ceiling_notes(results: Results) -> list[str]:
    """The raw trio and raw SQLite figures, as measured in this run."""
    notes = [
        *_note(
            results,
            "raw_trio",
            "channel",
            "items_per_s",
            "memory channel (unbounded) -> 1 consumer awaiting a trivial coroutine (items/s)",
            "{:,.0f}",
        ),
        *_note(
            results,
            "raw_trio",
            "channel",
            "bounded_1024_items_per_s",
            "same with a buffer of 1024 (items/s)",
            "{:,.0f}",
        ),
        *_note(
            results,
            "raw_trio",
            "spawn",
            "tasks_per_s",
            "one trio task per item in a nursery (tasks/s)",
            "{:,.0f}",
        ),
        *_note(
            results,
            "raw_trio",
            "sqlite_commit",
            "rows_per_s",
            "raw inline commit: BEGIN IMMEDIATE/INSERT/COMMIT of one row on the trio thread, "
            "checkpoint between rows, WAL + NORMAL (rows/s)",
            "{:,.0f}",
        ),
        *_note(
            results,
            "raw_trio",
            "sqlite_commit",
            "thread_hop_rows_per_s",
            "the same commit through trio.to_thread.run_sync per row (rows/s)",
            "{:,.0f}",
        ),
    ]
    return notes


def pg_ceiling_notes(results: Results) -> list[str]:
    return [
        *_note(
            results,
            "raw_pg",
            "pg_raw_insert",
            "autocommit_rows_per_s",
            "psycopg (sync), autocommit, one single-row INSERT per commit (rows/s)",
            "{:,.0f}",
        ),
        *_note(
            results,
            "raw_pg",
            "pg_raw_insert",
            "batched_rows_per_s",
            "psycopg (sync), executemany of N rows in one transaction (rows/s)",
            "{:,.0f}",
        ),
    ]


def footer(results: Results) -> list[str]:
    """Notes under the tables: how some figures were taken, every skip and every failure."""
    notes: list[str] = []
    jthr = _values(results["jobify"].get("throughput"))
    if jthr:
        notes.append(
            "Jobify throughput: in each round, the faster of its own asyncio.gather method "
            "and a push loop (medians: gather "
            f"{_cell(stat(results, 'jobify', 'throughput', 'gather_jobs_per_s'), '{:,.0f}')}, "
            f"loop {_cell(stat(results, 'jobify', 'throughput', 'loop_jobs_per_s'), '{:,.0f}')})"
        )
    if _values(results["apscheduler"].get("throughput")):
        notes.append(
            "APScheduler throughput: AsyncScheduler on trio, MemoryDataStore, task configured "
            "with max_running_jobs=None, add_job x n then n JobReleased events"
        )
    for side, metrics in results.items():
        for metric, result in metrics.items():
            status = result.get("status")
            if status != "ok":
                notes.append(f"{side}/{metric}: {status}: {result.get('reason')}")
            elif failed := result.get("failed_runs"):
                reasons = failed if isinstance(failed, list) else [failed]
                notes.append(
                    f"{side}/{metric}: {len(reasons)} run(s) failed and are not counted "
                    f"(first: {reasons[0]})"
                )
    return notes


def targets_met(rows: list[list[str]]) -> bool:
    return not any(r[-1] in ("NO", "n/a", "inconclusive") for r in rows)
