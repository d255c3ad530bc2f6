"""A live instance never starts a job it may no longer hold (the lease fence), and keeps
its leases while its storage writer is behind (issue 9; MemoryStorage, MockClock)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import trio
from _helpers import START
from _sharing_helpers import LEASE, Instance
from trio.testing import MockClock

from jobify_trio import JobStatus
from jobify_trio.storage import Write
from jobify_trio.testing import MemoryStorage, VirtualWallClock

Ran = list[tuple[str, str, Any]]


def pair(store: MemoryStorage | None = None) -> tuple[MemoryStorage, Ran, Instance, Instance]:
    store = store or MemoryStorage()
    clock, ran = VirtualWallClock(START), []
    return store, ran, Instance("A", store, clock, ran), Instance("B", store, clock, ran)


async def start_both(nursery: trio.Nursery, a: Instance, b: Instance) -> None:
    await nursery.start(a.run)
    await nursery.start(b.run)
    await trio.sleep(LEASE / 3 + 0.1)  # one heartbeat: everyone knows everyone


async def test_a_stalled_instance_does_not_start_a_job_taken_over(
    autojump_clock: MockClock,
) -> None:
    store, ran, a, b = pair()
    async with trio.open_nursery() as nursery:
        await start_both(nursery, a, b)
        job = await a.tasks["work"].schedule("later").delay(2 * LEASE)
        a.stall()  # A's heartbeat stops; its scheduler and executor go on
        with trio.fail_after(2 * LEASE + 1):
            while ("B", "later", 1) not in ran:
                await trio.sleep(0.05)
        await trio.sleep(1)  # A's timer fired too: its run waits for a renewal
        assert ran == [("B", "later", 1)]
        assert job.status is JobStatus.SCHEDULED
        a.resume()  # its confirming beat finds the row is B's: it follows the job there
        with trio.fail_after(LEASE):
            assert await job == "later-done"
        nursery.cancel_scope.cancel()
    assert ran == [("B", "later", 1)]
    assert job.id not in store.rows


async def test_a_job_due_while_the_lease_is_still_ours_starts_after_a_renewal(
    autojump_clock: MockClock,
) -> None:
    _store, ran, a, b = pair()
    async with trio.open_nursery() as nursery:
        await start_both(nursery, a, b)
        job = await a.tasks["work"].schedule("soon").delay(LEASE * 0.9)
        a.stall()  # its lease is still valid when the job is due, but without the margin
        await trio.sleep(LEASE)
        assert ran == []  # waits for a renewal rather than risk a lost lease
        a.resume()
        with trio.fail_after(1):
            assert await job == "soon-done"
        nursery.cancel_scope.cancel()
    assert ran == [("A", "soon", 1)]  # the row was still A's: it ran there, once


async def test_a_heartbeat_finding_a_lease_lost_cancels_the_run(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    ended: list[str] = []
    store, ran, a, b = pair()

    @a.app.task(name="long")
    async def long_a() -> str:
        ran.append(("A", "long", 1))
        await trio.sleep(100)
        ended.append("A")
        return "A"

    @b.app.task(name="long")
    async def long_b() -> str:
        ran.append(("B", "long", 1))
        await trio.sleep(5)
        ended.append("B")
        return "B"

    async with trio.open_nursery() as nursery:
        await start_both(nursery, a, b)
        job = await long_a.push()
        await trio.sleep(0.5)
        a.stall()
        with trio.fail_after(2 * LEASE):
            while ("B", "long", 1) not in ran:
                await trio.sleep(0.05)
        runtime = a.app._runtime
        assert runtime is not None
        assert runtime.executor.busy == 1  # A's run goes on: A does not know yet
        with caplog.at_level(logging.WARNING, logger="jobify_trio.sharing"):
            a.resume()
            await trio.sleep(LEASE / 3 + 0.1)  # A's next heartbeat
        assert runtime.executor.busy == 0  # its run was cancelled
        assert "lost the leases of 1 running jobs" in caplog.text
        with trio.fail_after(10):
            assert await job == "B"  # B's result reaches A's handle
        nursery.cancel_scope.cancel()
    assert ended == ["B"]
    assert store.rows == {}


class SlowWriterStore(MemoryStorage):
    """A store whose writes take ``delay`` seconds while ``slow`` is set."""

    slow = False
    delay = 3 * LEASE

    async def apply(self, writes: Sequence[Write], /) -> None:
        if self.slow:
            self.slow = False
            await trio.sleep(self.delay)
        await super().apply(writes)


async def test_a_writer_far_behind_does_not_let_the_leases_run_out(
    autojump_clock: MockClock,
) -> None:
    store, ran, a, b = pair(SlowWriterStore())
    assert isinstance(store, SlowWriterStore)
    async with trio.open_nursery() as nursery:
        await start_both(nursery, a, b)
        later = await a.tasks["work"].schedule("later").delay(2 * LEASE)
        store.slow = True  # A's next write (a push) takes 3 leases to commit
        nursery.start_soon(a.tasks["work"].push, "stuck")
        with trio.fail_after(4 * LEASE):
            assert await later == "later-done"
        with trio.fail_after(4 * LEASE):
            while not [tag for _, tag, _ in ran if tag == "stuck"]:
                await trio.sleep(0.05)
        await trio.sleep(LEASE)
        nursery.cancel_scope.cancel()
    # A's renewals went on: B never took the row A held. The pushed row reached the store
    # with its lease already run out (stamped at the push): B may have adopted it, then A
    # did not start it (its row was not known to be A's: the fence waited for the writer)
    assert [r for r in ran if r[1] == "later"] == [("A", "later", 1)]
    assert len([r for r in ran if r[1] == "stuck"]) == 1


async def test_an_urgent_call_runs_before_queued_work() -> None:
    import threading

    from jobify_trio._storage._thread import WorkerThread

    worker, gate, order = WorkerThread("test-urgent"), threading.Event(), []
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(worker.call, lambda: gate.wait(5))  # the thread is busy
            await trio.sleep(0.01)
            for name, urgent in [("batch1", False), ("batch2", False), ("beat", True)]:
                nursery.start_soon(
                    lambda n=name, u=urgent: worker.call(lambda: order.append(n), urgent=u)
                )
                await trio.sleep(0.01)
            gate.set()
    finally:
        worker.stop()
    assert order == ["beat", "batch1", "batch2"]


async def test_a_sqlite_heartbeat_runs_before_queued_calls(tmp_path: Path) -> None:
    import threading
    from datetime import UTC, datetime, timedelta

    from jobify_trio.storage import InstanceInfo, SQLiteStorage

    store = SQLiteStorage(tmp_path / "jobs.db", shared=True)
    await store.startup()
    now = datetime.now(UTC)
    info = InstanceInfo(instance_id="A", host="h", pid=1, started_at=now, heartbeat_at=now)
    await store.register_instance(info)
    gate, busy, order = threading.Event(), threading.Event(), []
    thread = store._open_thread()
    worker = thread._worker

    async def until(condition: Callable[[], bool]) -> None:
        """Until ``condition()`` holds (the thread's queues are read, not timed)."""
        with trio.fail_after(5):
            while not condition():
                await trio.sleep(0.001)

    submit = thread.call

    async def recording_call(fn: Callable[[Any], Any], *, urgent: bool = False) -> Any:
        def call(db: Any) -> Any:  # (runs on the thread: the order is the thread's own;
            order.append("beat" if urgent else "read")  # trio may wake the tasks in any)
            return fn(db)

        return await submit(call, urgent=urgent)

    thread.call = recording_call  # type: ignore[method-assign]

    async def queued() -> None:
        await store.next_due_at(now=now)

    async def beat() -> None:
        await store.heartbeat(instance_id="A", now=now, lease_until=now + timedelta(seconds=30))

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(thread.run, lambda: busy.set() or gate.wait(5))
            await until(busy.is_set)  # the thread is busy
            nursery.start_soon(queued)
            await until(lambda: worker._queue.qsize() == 1)  # the read waits in the queue
            nursery.start_soon(beat)
            await until(lambda: len(worker._urgent) == 1)  # the heartbeat was submitted
            gate.set()
    finally:
        await store.shutdown()
    assert order == ["beat", "read"]
