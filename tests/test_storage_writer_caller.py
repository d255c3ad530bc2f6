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
