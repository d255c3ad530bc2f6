"""The README's benchmark summary, generated from ``benchmarks/RESULTS.md``.

The summary is a few rows of the committed report's main table, copied verbatim, between
the markers :data:`START` and :data:`END` in ``README.md``. So the README never quotes a
figure that the committed report does not show. ``run.py`` rewrites it after a full run
and on ``--render-only``; ``run.py --readme-only`` rewrites it from the committed report.
"""

from __future__ import annotations

from pathlib import Path

START = "<!-- bench-summary:start -->"
END = "<!-- bench-summary:end -->"
#: Rows of RESULTS.md's main table shown in the README (those present are shown).
SUMMARY_LABELS = (
    "throughput (jobs/s)",
    "latency mean (µs)",
    "durable push loop, SQLite file (jobs/s)",
    "concurrent durable push, 64 producers, SQLite file (jobs/s)",
    "memory per delayed job (B)",
    "overload: peak RSS growth (MB)",
)
#: Columns of the main table kept in the summary.
COLUMNS = ("metric", "jobify_trio", "Jobify 0.14.0", "ratio (trio / Jobify)", "met?")


def _cells(line: str) -> list[str]:
    return [c.strip().replace("\\|", "|") for c in line.strip().strip("|").split(" | ")]


def _main_table(report: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the table under ``## Results``."""
    lines = report.splitlines()
    table: list[str] = []
    for line in lines[lines.index("## Results") + 1 :]:
        if line.startswith("## "):
            break
        if line.startswith("|"):
            table.append(line)
    return _cells(table[0]), [_cells(ln) for ln in table[2:]]


def _fact(report: str, name: str) -> str:
    prefix = f"- **{name}**: "
    return next((ln[len(prefix) :] for ln in report.splitlines() if ln.startswith(prefix)), "?")


def summary(report: str) -> str:
    """The Markdown block (without markers) for ``report`` (RESULTS.md's text)."""
    header, rows = _main_table(report)
    keep = [header.index(c) for c in COLUMNS if c in header]
    picked = [r for label in SUMMARY_LABELS for r in rows if r[0] == label]
    run = _fact(report, "run")
    statistic = run.rsplit("; ", 1)[-1]  # how the run reduced its rounds
    kind = "partial (quick) run" if run.startswith("partial") else "full run"
    intro = (
        f"Rows copied by `benchmarks/run.py` from the {kind} in "
        f"[benchmarks/RESULTS.md](benchmarks/RESULTS.md) ({_fact(report, 'date')}, "
        f"{_fact(report, 'cores (logical)')} cores; {statistic}). Every other figure, the "
        f"targets and the raw ceilings are in that file."
    )

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cells[i].replace("|", "\\|") for i in keep) + " |"

    align = "| " + " | ".join("---" if i == 0 else "---:" for i in range(len(keep))) + " |"
    return "\n".join([intro, "", line(header), align, *map(line, picked)])


def update_readme(report_file: Path, readme_file: Path) -> None:
    """Replace the text between the markers in ``readme_file`` with the summary."""
    readme = readme_file.read_text(encoding="utf-8")
    if START not in readme or END not in readme:
        raise SystemExit(f"{readme_file}: markers {START} ... {END} not found")
    before, rest = readme.split(START, 1)
    _, after = rest.split(END, 1)
    block = summary(report_file.read_text(encoding="utf-8"))
    readme_file.write_text(f"{before}{START}\n{block}\n{END}{after}", encoding="utf-8")
