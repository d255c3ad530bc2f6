"""The storage writer with a store whose ``apply`` runs on the trio thread (PostgreSQL).

``Storage._commit_in_caller``: a sequential caller commits the open batch in its own task;
writes nobody waits for wait up to ``DEFER_SECONDS`` for a watched write to take them
along (deletes of other jobs until ``DELETES_PER_COMMIT`` of them are queued). Commits
never overlap, and concurrent callers still share one commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
import trio
from test_storage_failures import MemoryStorage

from jobify_trio._storage._writer import DELETES_PER_COMMIT, StorageWriter
from jobify_trio.storage import Delete, StoredJob, Upsert, Write

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def upsert(job_id: str) -> Upsert:
    return Upsert(
        job=StoredJob(job_id=job_id, task_name="t", trigger="push", next_run_at=T0, arguments=b"{}")
    )


class InCaller(MemoryStorage):
    """Records each batch, the task that applied it, and whether two ever overlapped."""

    _commit_in_caller = True

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[tuple[list[Write], object]] = []
        self.active = 0
        self.overlapped = False

    async def apply(self, writes: Sequence[Write], /) -> None:
        self.active += 1
        self.overlapped |= self.active > 1
        try:
            self.batches.append((list(writes), trio.lowlevel.current_task()))
            await trio.sleep(0.001)  # a commit's round trip
            await super().apply(writes)
        finally:
            self.active -= 1


async def test_a_sequential_caller_commits_in_its_own_task_taking_unwatched_writes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    storage = InCaller()
    writer = StorageWriter(storage)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        me = trio.lowlevel.current_task()
        for i in range(20):
            await writer.write(upsert(f"j{i}"))
            writer.write_nowait(Delete(job_id=f"j{i}"))  # a job that ended meanwhile
        await trio.sleep(0.01)  # the last delete: nobody comes, committed after the linger
        nursery.cancel_scope.cancel()
    assert not storage.overlapped
    assert writer.direct >= 19  # the first write of a task goes through the writer
    by_caller = [writes for writes, task in storage.batches if task is me]
    # each push commits its row alone while fewer than DELETES_PER_COMMIT deletes are
    # queued; the push that finds that many takes them all along, in order
    sizes = [len(writes) for writes in by_caller]  # the first push went through the writer
    assert sizes == [1] * 15 + [DELETES_PER_COMMIT + 1] + [1] * 3, sizes
    taken = by_caller[15]
    assert taken[:-1] == [Delete(job_id=f"j{i}") for i in range(16)]
    assert taken[-1] == upsert("j16")
    assert len(storage.batches) == 21  # 20 pushes, then the last deletes on their own
    assert storage.batches[-1][0] == [Delete(job_id=f"j{i}") for i in range(16, 20)]
    assert storage.rows == {}


async def test_unwatched_writes_alone_are_committed_after_the_linger(
    autojump_clock: trio.testing.MockClock,
) -> None:
    storage = InCaller()
    writer = StorageWriter(storage)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        writer.write_nowait(upsert("a"))
        start = trio.current_time()
        while not storage.batches:
            await trio.sleep(0.0001)
        assert trio.current_time() - start == pytest.approx(0.002, abs=0.0005)
        nursery.cancel_scope.cancel()


async def test_concurrent_callers_share_commits_that_never_overlap(
    autojump_clock: trio.testing.MockClock,
) -> None:
    storage = InCaller()
    writer = StorageWriter(storage)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)

        async def loop(name: str) -> None:
            for i in range(30):
                await writer.write(upsert(f"{name}{i}"))
                writer.write_nowait(Delete(job_id=f"{name}{i}"))

        async with trio.open_nursery() as callers:
            for name in "abcdef":
                callers.start_soon(loop, name)
        await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert not storage.overlapped
    assert storage.rows == {}
    assert len(storage.batches) < 6 * 30  # several callers' rows per commit


class Gated(InCaller):
    """An InCaller whose commits wait for ``gate`` while it is set."""

    def __init__(self) -> None:
        super().__init__()
        self.gate: trio.Event | None = None

    async def apply(self, writes: Sequence[Write], /) -> None:
        if self.gate is not None:
            await self.gate.wait()
        await super().apply(writes)


async def test_a_callers_own_row_alone_is_cancellable_and_a_batch_with_others_is_not(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A sequential caller's row committed alone (deletes of ended jobs left queued) is not
    shielded: cancelled in flight, the call raises and the queued deletes stay queued. A
    batch carrying other writes is finished whatever happens to the caller."""
    storage = Gated()
    writer = StorageWriter(storage)

    async def open_gate_at_5s(gate: trio.Event) -> None:
        await trio.sleep_until(5)
        gate.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        await writer.write(upsert("a"))
        await writer.write(upsert("b"))  # the second write of a task: in its own task
        writer.write_nowait(Delete(job_id="a"))
        storage.gate = gate = trio.Event()
        nursery.start_soon(open_gate_at_5s, gate)
        with trio.move_on_after(1) as scope:
            await writer.write(upsert("c"))  # alone: the delete of "a" stays queued
        assert scope.cancelled_caught
        assert "c" not in storage.rows
        assert "a" in storage.rows
        for i in range(DELETES_PER_COMMIT):
            writer.write_nowait(Delete(job_id=f"x{i}"))
        with trio.move_on_after(1) as scope:
            await writer.write(upsert("d"))  # takes the deletes along: shielded
        assert not scope.cancelled_caught  # cancelled at 2 s, committed at 5 s all the same
        assert trio.current_time() >= 5
        assert set(storage.rows) == {"b", "d"}
        nursery.cancel_scope.cancel()
