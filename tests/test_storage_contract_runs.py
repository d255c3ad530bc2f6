"""The storage contract for the run history and the paused column (issue 12): SQLite,
PostgreSQL and MemoryStorage agree on RecordRun, PruneRuns, load_runs and SetPaused."""

from __future__ import annotations

from datetime import timedelta

from _helpers import START
from _stores import Backend

from jobify_trio.storage import (
    Delete,
    PruneRuns,
    RecordRun,
    SetPaused,
    StoredJob,
    StoredRun,
    Trigger,
    Upsert,
)


def run(job_id: str, second: int, *, attempt: int = 1, error: str | None = None) -> StoredRun:
    return StoredRun(
        job_id=job_id, task_name="t", attempt=attempt, status="failed" if error else "success",
        started_at=START + timedelta(seconds=second - 1) if second else None,
        ended_at=START + timedelta(seconds=second), error=error, retried=error is not None,
        instance="A" if second % 2 else None,
    )  # fmt: skip


def record(*runs: StoredRun) -> list[RecordRun]:
    return [RecordRun(run=r) for r in runs]


async def test_runs_are_stored_and_loaded_latest_per_job(backend: Backend) -> None:
    store = await backend.open()
    runs = [run("a", 0), run("b", 1, error="E: x"), run("a", 2, attempt=2), run("a", 3)]
    await store.apply(record(*runs))
    assert await store.load_runs(since=START, per_job=10) == runs
    assert await store.load_runs(since=START, per_job=2) == runs[1:]
    assert await store.load_runs(since=START, per_job=2, job_id="a") == [runs[2], runs[3]]
    assert await store.load_runs(since=START + timedelta(seconds=2), per_job=5) == runs[2:]
    other = await backend.open()  # another connection sees them
    assert await other.load_runs(since=START, per_job=10, job_id="b") == [runs[1]]


async def test_prune_runs_by_age_per_job_and_in_all(backend: Backend) -> None:
    store = await backend.open()
    runs = [run(job_id, second) for second, job_id in enumerate("aabababbab", start=1)]
    await store.apply(record(*runs))
    cutoff = START + timedelta(seconds=3)
    await store.apply([PruneRuns(before=cutoff, per_job=2, job_ids=("a",))])
    left = await store.load_runs(since=START, per_job=100)
    # 1a 2a: too old; of a's 4, 6 and 9 the latest two stay; b's all stay (not named)
    assert left == [runs[i] for i in (2, 4, 5, 6, 7, 8, 9)]
    await store.apply([PruneRuns(before=START, per_job=100, max_runs=3)])
    assert await store.load_runs(since=START, per_job=100) == left[-3:]
    await store.apply(record(run("c", 20), run("c", 21)))
    await store.apply([PruneRuns(before=START, per_job=1, job_ids=("c",), max_runs=2)])
    assert await store.load_runs(since=START, per_job=100) == [left[-1], run("c", 21)]


async def test_set_paused_sets_the_column_in_batch_order(backend: Backend) -> None:
    store = await backend.open()
    row = StoredJob(job_id="j", task_name="t", trigger=Trigger.AT,
                    next_run_at=START + timedelta(minutes=1), arguments=b"{}")  # fmt: skip
    await store.apply([Upsert(job=row), SetPaused(job_id="j", paused=True)])
    assert [j.paused for j in (await store.load()).jobs] == [True]
    await store.apply([SetPaused(job_id="j", paused=False), SetPaused(job_id="gone", paused=True)])
    assert [j.paused for j in (await store.load()).jobs] == [False]
    await store.apply([SetPaused(job_id="j", paused=True), Upsert(job=row)])  # replaced after
    assert [j.paused for j in (await store.load()).jobs] == [False]
    await store.apply([Delete(job_id="j"), SetPaused(job_id="j", paused=True)])
    assert (await store.load()).jobs == []
