"""RunHistory kept in the app's storage (issue 12): restored after a restart, pruned in
batches (retention period, ``per_job`` bound), shared across instances, and only for
durable jobs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import trio
from _helpers import START
from _sharing_helpers import LEASE, Instance
from _stores import Backend
from trio.testing import MockClock

from jobify_trio import Jobify, JobStatus, RunHistory, RunRecord, SmartRetry
from jobify_trio._ops._history_store import PRUNE_INTERVAL
from jobify_trio.storage import Storage
from jobify_trio.testing import MemoryStorage, VirtualWallClock


def _app(store: Storage, clock: VirtualWallClock, **history: Any) -> tuple[Jobify, RunHistory]:
    app = Jobify(wall_clock=clock, storage=store)

    @app.task(name="rec")
    async def rec(seconds: float = 0.0) -> None:
        await trio.sleep(seconds)

    @app.task(name="flaky", retry=SmartRetry(1, initial_delay=5, jitter=False))
    async def flaky() -> None:
        raise RuntimeError("boom")

    @app.task(name="fleeting", durable=False)
    async def fleeting() -> None:
        pass

    return app, RunHistory(app, **history)


async def _run(app: Jobify, task: str, *args: Any, job_id: str) -> None:
    await (await app.tasks[task].schedule(*args).push(job_id=job_id)).wait()
    await trio.sleep(0.5)  # the ended job's row is deleted (on a shared store, the id is
    # taken while it is there)


def _key(record: RunRecord) -> tuple[Any, ...]:
    return (record.job_id, record.attempt, record.status, record.started_at, record.ended_at,
            record.error, record.retried)  # fmt: skip


async def _stored_count(backend: Backend, job_id: str) -> int:
    store = await backend.open()
    runs = await store.load_runs(since=START - timedelta(days=1), per_job=10_000, job_id=job_id)
    await store.shutdown()
    backend.opened.remove(store)
    return len(runs)


def _real_store(clock: MockClock, backend: Backend) -> None:
    if backend.kind != "memory":  # commits run in a thread: let it answer before jumping
        clock.autojump_threshold = 0.02


async def test_the_history_of_durable_jobs_is_restored_after_a_restart(
    autojump_clock: MockClock, backend: Backend
) -> None:
    _real_store(autojump_clock, backend)
    clock = VirtualWallClock(START)
    app, history = _app(backend.new(), clock)
    async with app:
        for seconds in (1.0, 2.0):
            await _run(app, "rec", seconds, job_id="a")
        await _run(app, "flaky", job_id="f")
        await _run(app, "fleeting", job_id="n")
    before = {job_id: [_key(r) for r in history.runs(job_id)] for job_id in ("a", "f")}
    assert [r.status for r in history.runs("f")] == [JobStatus.FAILED, JobStatus.FAILED]
    assert [r.retried for r in history.runs("f")] == [True, False]
    assert history.runs("n") != []  # in memory, but not stored (not durable)
    app, history = _app(backend.new(), clock)
    assert history.runs("a") == []
    async with app:
        after = {job_id: [_key(r) for r in history.runs(job_id)] for job_id in ("a", "f")}
        assert after == before
        assert [r.duration for r in history.runs("a")] == [1.0, 2.0]
        assert history.runs("f")[0].error == "RuntimeError: boom"
        assert history.runs("n") == []
        assert [_key(r) for r in await history.stored_runs("a")] == before["a"]
        assert "a" in history.finished_ids()


async def test_stored_runs_are_pruned_in_batches_to_per_job(
    autojump_clock: MockClock, backend: Backend
) -> None:
    _real_store(autojump_clock, backend)
    clock = VirtualWallClock(START)
    app, history = _app(backend.new(), clock, per_job=3)
    async with app:
        for _ in range(20):
            await _run(app, "rec", 0.1, job_id="a")
        assert len(history.runs("a")) == 3
    assert await _stored_count(backend, "a") == 20  # not pruned run by run
    app, history = _app(backend.new(), clock, per_job=3)
    async with app:
        assert len(history.runs("a")) == 3  # loaded: the latest 3
        await trio.sleep(PRUNE_INTERVAL)
        await _run(app, "rec", 0.1, job_id="a")  # a prune is due
    assert await _stored_count(backend, "a") == 3
    assert [r.ended_at - START for r in history.runs("a")][-1] > timedelta(seconds=60)


async def test_runs_older_than_the_retention_period_are_pruned(
    autojump_clock: MockClock, backend: Backend
) -> None:
    _real_store(autojump_clock, backend)
    clock = VirtualWallClock(START)
    app, history = _app(backend.new(), clock, retention=timedelta(minutes=5))
    async with app:
        await _run(app, "rec", job_id="old")
        await trio.sleep(10 * 60)
        await _run(app, "rec", job_id="new")
    assert await _stored_count(backend, "old") == 0
    assert await _stored_count(backend, "new") == 1
    app, history = _app(backend.new(), clock, retention=timedelta(minutes=5))
    async with app:
        assert history.runs("old") == []
        assert len(history.runs("new")) == 1


async def test_the_loaded_history_keeps_max_jobs_jobs(autojump_clock: MockClock) -> None:
    store, clock = MemoryStorage(), VirtualWallClock(START)
    app, history = _app(store, clock)
    async with app:
        for index in range(5):
            await _run(app, "rec", job_id=f"j{index}")
    app, history = _app(store, clock, max_jobs=2)
    async with app:
        assert len(history) == 2
        assert history.finished_ids() == ["j4", "j3"]  # the jobs that ran last


async def test_a_history_that_is_not_stored_stays_in_memory(autojump_clock: MockClock) -> None:
    store, clock = MemoryStorage(), VirtualWallClock(START)
    app, history = _app(store, clock, stored=False)
    async with app:
        await _run(app, "rec", job_id="a")
        assert [r.job_id for r in await history.stored_runs("a")] == ["a"]  # from memory
    assert store.runs == []


async def test_stored_runs_show_the_runs_of_other_instances(autojump_clock: MockClock) -> None:
    store, clock, ran = MemoryStorage(), VirtualWallClock(START), []
    a, b = Instance("A", store, clock, ran), Instance("B", store, clock, ran)
    history_a, history_b = RunHistory(a.app), RunHistory(b.app)
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await nursery.start(b.run)
        await trio.sleep(LEASE / 3 + 0.1)
        job = await a.tasks["work"].schedule("x").push(job_id="w")
        assert await job == "x-done"
        await trio.sleep(1)  # the run is committed with the writer's next batch
        assert history_b.runs("w") == []  # not run here
        (record,) = await history_b.stored_runs("w")
        assert (record.instance, record.status, record.attempt) == ("A", JobStatus.SUCCESS, 1)
        assert history_a.last("w") == record
        nursery.cancel_scope.cancel()
