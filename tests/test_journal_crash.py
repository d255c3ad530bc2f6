"""Crash test of the push journal with real processes: kill -9 during push loops, restart.

A child process pushes items with generated job ids (the pushes the journal takes, see
``jobify_trio/_storage/_journal.py``): one producer in a plain ``for`` loop and three
concurrent ones. After each push returns, it appends the item to an "acked" file; from
then on the item's job must run, at least once. Each job appends its item to a result
file and sleeps 0-20 ms, so at any moment some rows are journaled and not yet folded
into the table. The parent kills the child with SIGKILL at random moments, restarts it
(it restores, and pushes the items not acked yet), then lets it finish. The seed is
printed; ``CRASH_SEED=<seed>`` replays the same kill times.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from test_crash import _lines, _seed, start_child

ITEMS = 30000
KILLS = 5

CHILD = r"""
import os, sys, trio
from jobify_trio import Jobify
from jobify_trio.storage import SQLiteStorage

db, results, acked_path, items = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
app = Jobify(storage=SQLiteStorage(db))
out = os.open(results, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
ack = os.open(acked_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

@app.task(name="journal:work")
async def work(item: int) -> None:
    os.write(out, f"{item}\n".encode())
    await trio.sleep((item % 21) / 1000)

async def push_all(todo) -> None:
    for item in todo:
        await work.push(item)
        os.write(ack, f"{item}\n".encode())

async def main() -> None:
    with open(acked_path) as f:
        done = {int(line) for line in f if line.endswith("\n")}
    todo = [i for i in range(items) if i not in done]
    async with app:
        half = len(todo) // 2
        await push_all(todo[:half])  # the loop users write
        async with trio.open_nursery() as nursery:  # and concurrent producers
            for first in range(3):
                nursery.start_soon(push_all, todo[half + first::3])
        await app.wait_all()

trio.run(main)
"""


def _start(tmp: Path, script: Path) -> subprocess.Popen[bytes]:
    args = [str(tmp / "jobs.db"), str(tmp / "results.txt"), str(tmp / "acked.txt"), str(ITEMS)]
    return start_child(script, args, tmp)


@pytest.mark.slow
def test_kill_9_during_journaled_pushes_loses_no_job(tmp_path: Path) -> None:
    import random

    script = tmp_path / "child.py"
    script.write_text(CHILD)
    (tmp_path / "acked.txt").touch()
    seed = _seed()
    print(f"\njournal crash test: seed {seed} (CRASH_SEED={seed} repeats these kill times)")
    rng = random.Random(seed)
    kills = journaled = 0
    for _ in range(30):
        if kills >= KILLS:
            break
        child = _start(tmp_path, script)
        time.sleep(rng.uniform(0.3, 0.7))
        if child.poll() is None:  # else it finished its work before the kill
            os.kill(child.pid, signal.SIGKILL)
            kills += 1
            journal = tmp_path / "jobs.db-jobify_jobs-journal"
            journaled += journal.stat().st_size > 0 if journal.exists() else 0
        _, stderr = child.communicate(timeout=60)
        assert child.returncode in (0, -signal.SIGKILL), f"seed {seed}: {stderr.decode()[-2000:]}"
    final = _start(tmp_path, script)
    _, stderr = final.communicate(timeout=60)
    assert final.returncode == 0, f"seed {seed}: {stderr.decode()[-2000:]}"

    acked = {int(item) for item in _lines(tmp_path / "acked.txt")}
    runs = Counter(int(item) for item in _lines(tmp_path / "results.txt"))
    assert acked == set(range(ITEMS)), f"seed {seed}"
    lost = sorted(item for item in acked if runs[item] == 0)
    assert lost == [], f"seed {seed}: {len(lost)} acknowledged jobs never ran: {lost[:20]}"
    with sqlite3.connect(tmp_path / "jobs.db") as conn:
        left = conn.execute("SELECT job_id FROM jobify_jobs").fetchall()
    conn.close()
    assert left == [], f"seed {seed}"
    assert not (tmp_path / "jobs.db-jobify_jobs-journal").exists()  # removed at shutdown
    duplicates = sum(count - 1 for count in runs.values())
    print(
        f"journal crash test (seed {seed}): {kills} kills ({journaled} with a non-empty "
        f"journal), {sum(runs.values())} runs of {ITEMS} jobs, {duplicates} duplicate runs"
    )
