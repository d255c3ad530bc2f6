"""The comparison table: one row per figure, targets and verdicts, and notes."""

from __future__ import annotations

from _plan import (
    DURABLE_FRACTION_TARGET,
    RAW_FRACTION_TARGET,
    ROWS,
    SIDES,
    Results,
    _values,
)

HEADER = [
    "metric",
    SIDES["jobify_trio"].label,
    SIDES["jobify"].label,
    SIDES["apscheduler"].label,
    "ratio (trio / Jobify)",
    "target",
    "met?",
]


def _cell(value: float | None, fmt: str) -> str:
    return "—" if value is None else fmt.format(value)


def _goal(goal: str, ours: float | None, theirs: float | None) -> tuple[str, bool | None]:
    """One goal of a target: its text, and whether it is met (None: not measurable)."""
    if goal.startswith("x"):
        k = float(goal[1:])
        met = None if ours is None or theirs is None else ours >= k * theirs
        return f">= {k:g}x Jobify", met
    if goal == "lower":
        return "<= Jobify", None if ours is None or theirs is None else ours <= theirs
    if goal.startswith(("max:", "min:")):
        bound = float(goal[4:])
        if ours is None:
            return f"{'<=' if goal[:3] == 'max' else '>='} {bound:g}", None
        met = ours <= bound if goal[:3] == "max" else ours >= bound
        return f"{'<=' if goal[:3] == 'max' else '>='} {bound:g}", met
    raise ValueError(f"unknown target goal {goal!r}")


def _verdict(target: str, ours: float | None, theirs: float | None) -> tuple[str, str]:
    """(target text, met?) for a row."""
    if target == "info":
        return "—", "(info)"
    checks = [_goal(g, ours, theirs) for g in target.split("+")]
    oks = [ok for _, ok in checks]
    met = "n/a" if None in oks else ("yes" if all(oks) else "NO")
    return " and ".join(text for text, _ in checks), met


def _get(results: Results, side: str, metric: str, key: str) -> float | None:
    return _values(results.get(side, {}).get(metric)).get(key)


def build_rows(results: Results) -> list[list[str]]:
    """Table rows (see HEADER) for every row whose metric was measured."""
    measured = {metric for metrics in results.values() for metric in metrics}
    table: list[list[str]] = []
    for row in ROWS:
        if row.metric not in measured:
            continue
        ours, theirs, aps = (
            _get(results, side, row.metric, row.key)
            for side in ("jobify_trio", "jobify", "apscheduler")
        )
        ratio = f"{ours / theirs:.2f}x" if ours is not None and theirs else "—"
        cells = [_cell(ours, row.fmt), _cell(theirs, row.fmt), _cell(aps, row.fmt)]
        table.append([row.label, *cells, ratio, *_verdict(row.target, ours, theirs)])
    if "throughput" in measured:
        table.append(_fraction_row(results, "throughput / raw ceiling (%)", "raw"))
    if {"throughput", "durable_throughput"} <= measured:
        table.append(_fraction_row(results, "durable / own plain push, same method (%)", "durable"))
    return table


def _fraction_row(results: Results, label: str, kind: str) -> list[str]:
    """A system's throughput as % of the raw ceiling, or its durable push as % of its own
    plain push."""
    raw = _get(results, "raw_trio", "channel", "items_per_s")

    def pct(side: str) -> float | None:
        plain = _get(results, side, "throughput", "jobs_per_s")
        if kind == "raw":
            return None if plain is None or not raw else 100 * plain / raw
        same_method = _get(results, side, "durable_throughput", "pct_of_nondurable_same_method")
        if same_method is not None:  # measured in the same process, same push method
            return same_method
        durable = _get(results, side, "durable_throughput", "jobs_per_s")
        return None if durable is None or not plain else 100 * durable / plain

    bound = 100 * (RAW_FRACTION_TARGET if kind == "raw" else DURABLE_FRACTION_TARGET)
    ours = pct("jobify_trio")
    cells = [_cell(pct(side), "{:.1f}") for side in ("jobify_trio", "jobify", "apscheduler")]
    return [label, *cells, "—", *_verdict(f"min:{bound:g}", ours, None)]


def format_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]

    def line(cells: list[str]) -> str:
        return " | ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(HEADER), "-+-".join("-" * w for w in widths), *map(line, rows)])


def ceiling_notes(results: Results) -> list[str]:
    channel = _values(results["raw_trio"].get("channel"))
    spawn = _values(results["raw_trio"].get("spawn"))
    if not channel and not spawn:
        return []
    notes = []
    if channel:
        notes += [
            f"memory channel (unbounded) -> 1 consumer awaiting a trivial coroutine: "
            f"{_cell(channel.get('items_per_s'), '{:,.0f}')} items/s",
            f"same with a buffer of 1024: "
            f"{_cell(channel.get('bounded_1024_items_per_s'), '{:,.0f}')} items/s",
        ]
    if spawn:
        notes.append(f"one trio task per item in a nursery: {spawn['tasks_per_s']:,.0f} tasks/s")
    return notes


def footer(results: Results) -> list[str]:
    """Notes under the table: how some figures were taken, and every failure."""
    notes: list[str] = []
    jthr = _values(results["jobify"].get("throughput"))
    if jthr:
        notes.append(
            f"Jobify throughput: best of its own asyncio.gather method "
            f"({_cell(jthr.get('gather_jobs_per_s'), '{:,.0f}')}/s) and a push loop "
            f"({_cell(jthr.get('loop_jobs_per_s'), '{:,.0f}')}/s)"
        )
    athr = _values(results["apscheduler"].get("throughput"))
    if athr:
        notes.append(
            f"APScheduler throughput: AsyncScheduler on trio, MemoryDataStore, "
            f"add_job x n then n JobReleased events, best of {athr.get('rounds')} rounds; "
            f"its MemoryDataStore.acquire_jobs walks every stored job, so the rate falls "
            f"as the queue grows"
        )
    for side, metrics in results.items():
        for metric, result in metrics.items():
            if result.get("status") != "ok":
                notes.append(f"{side}/{metric}: {result.get('status')}: {result.get('reason')}")
    return notes


def targets_met(rows: list[list[str]]) -> bool:
    return not any(r[-1].startswith(("NO", "n/a")) for r in rows)
