"""Reading and checking the records of a failover run (``tests/test_sharing_failover.py``).

Pure functions over the lines the processes of ``tests/_failover_app.py`` appended, the
kills the test made and the slot claims left in the store. Each check returns a list of
problems (empty: it holds) so one failure message can show them all with the seed.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Run:
    """One run of a one-off job: ``end`` is None if its process was killed meanwhile."""

    pid: int
    start: float
    end: float | None = None


@dataclass
class Kill:
    """One SIGKILL: the victim, when, and the rows it held in the store at that moment."""

    pid: int
    at: float
    restart: float = 0.0  # seconds from the kill to the restart
    one_off: set[str] = field(default_factory=set)
    crons: set[str] = field(default_factory=set)


@dataclass
class Records:
    runs: dict[str, list[Run]] = field(default_factory=lambda: defaultdict(list))
    cron_runs: dict[tuple[str, float], list[int]] = field(default_factory=lambda: defaultdict(list))
    cron_starts: dict[str, list[tuple[float, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    lapses: dict[int, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))


def read_records(directory: Path) -> Records:
    """Every process's lines; a run's S and E lines are matched by job id and pid."""
    found = Records()
    for path in sorted(directory.glob("*.log")):
        for line in path.read_text().splitlines():
            kind, name, pid_text, at_text, *rest = line.split()
            pid, at = int(pid_text), float(at_text)
            if kind == "S":
                found.runs[name].append(Run(pid, at))
            elif kind == "E":
                run = next(r for r in found.runs[name] if r.pid == pid and r.end is None)
                run.end = at
            elif kind == "L":
                found.lapses[pid].append((at, float(rest[0])))
            elif kind == "C":
                found.cron_runs[(name, round(float(rest[0]), 3))].append(pid)
                found.cron_starts[name].append((at, pid))
    return found


def lost_lease(runs: list[Run], lapses: dict[int, list[tuple[float, float]]]) -> bool:
    """True if each run after the first started while (or within 1 s after) a window in
    which the process of an earlier run had, by its own record, let its leases run out
    (it was live but stalled: the failure table's "paused longer than its lease")."""
    for i, later in enumerate(runs[1:], start=1):
        if not any(
            start <= later.start <= end + 1.0 and earlier.start <= end
            for earlier in runs[:i]
            for start, end in lapses.get(earlier.pid, [])
        ):
            return False
    return True


def check_jobs(acked: set[str], records: Records, kills: list[Kill]) -> tuple[list[str], int, int]:
    """At least once; more than once only after a kill, or after the earlier runner's own
    recorded lease lapse; never on two live instances at once (unless so). Returns the
    problems, how many acked jobs ran more than once, and how many of those after a lapse."""
    killed_at = {kill.pid: kill.at for kill in kills}
    held = set().union(*(kill.one_off for kill in kills))
    problems: list[str] = []
    duplicates = stalled = 0
    for job_id in sorted(acked):
        runs = sorted(records.runs.get(job_id, []), key=lambda r: r.start)
        if not any(run.end is not None for run in runs):
            problems.append(f"{job_id}: acknowledged but never ran to the end: {runs}")
            continue
        duplicates += len(runs) > 1
        if len(runs) > 1 and job_id not in held and lost_lease(runs, records.lapses):
            stalled += 1
            continue
        if len(runs) > 1 and job_id not in held:
            problems.append(f"{job_id}: ran again though no killed worker held it: {runs}")
        survivors = [run for run in runs if run.pid not in killed_at]
        if len(survivors) > 1:
            problems.append(f"{job_id}: ran more than once on instances never killed: {runs}")
        for run in runs:
            if run.end is None and run.pid not in killed_at:
                problems.append(f"{job_id}: a run on pid {run.pid} never ended: {runs}")
        problems += _overlaps(job_id, runs, killed_at)
    return problems, duplicates, stalled


def _overlaps(job_id: str, runs: list[Run], killed_at: dict[int, float]) -> list[str]:
    """Runs of one job on two processes while both were alive (a killed process's
    interrupted run lasts until its kill)."""
    spans = [
        (r.start, r.end if r.end is not None else killed_at.get(r.pid, math.inf), r.pid)
        for r in runs
    ]
    problems = []
    for i, (start, end, pid) in enumerate(spans):
        for other_start, other_end, other_pid in spans[i + 1 :]:
            if pid != other_pid and other_start < end and start < other_end:
                problems.append(f"{job_id}: ran on pids {pid} and {other_pid} at once: {runs}")
    return problems


def check_crons(
    records: Records,
    claims: dict[tuple[str, float], str],
    window: tuple[float, float],
    crons: list[str],
    kills: list[Kill],
) -> tuple[list[str], int]:
    """Every slot fired once at most; with ``MisfirePolicy.ALL`` every slot in the window
    is claimed (none skipped, even while its owner was dead) and ran on its claimer, but
    a slot claimed by a worker killed before it recorded the run does not run again.
    Returns the problems and how many slots were claimed by a killed worker and lost."""
    killed = {kill.pid for kill in kills}
    problems = [
        f"{key}: slot fired {len(pids)} times (pids {pids})"
        for key, pids in records.cron_runs.items()
        if len(pids) > 1
    ]
    lost = 0
    for cron in crons:
        for slot in range(math.ceil(window[0]), math.floor(window[1]) + 1):
            key = (cron, float(slot))
            owner = claims.get(key)
            pids = records.cron_runs.get(key, [])
            if owner is None:
                problems.append(f"{key}: slot in the window never claimed (ran on {pids})")
                continue
            owner_pid = int(owner.rsplit("-", 1)[1])
            if not pids and owner_pid in killed:
                lost += 1
            elif pids != [owner_pid]:
                problems.append(f"{key}: claimed by {owner} but ran on {pids}")
    return problems, lost


def takeover(kill: Kill, records: Records) -> tuple[float | None, float | None]:
    """Seconds from the kill to the first run elsewhere of a one-off job, and of a cron,
    that the killed worker held (None: it held none)."""
    firsts = [
        run.start
        for job_id in kill.one_off
        for run in records.runs.get(job_id, [])
        if run.pid != kill.pid and run.start > kill.at
    ]
    cron_firsts = [
        at
        for cron in kill.crons
        for at, pid in records.cron_starts.get(cron, [])
        if pid != kill.pid and at > kill.at
    ]
    one_off = min(firsts) - kill.at if firsts else None
    cron = min(cron_firsts) - kill.at if cron_firsts else None
    return one_off, cron


def summary(values: list[float]) -> str:
    if not values:
        return "none measured"
    return f"median {statistics.median(values):.2f} s, max {max(values):.2f} s"
