"""The storage writer's scheduling: writes nobody waits for are left to a sequential caller
(one commit per push in a loop, not two), and the callers of a committed batch are woken a
few per scheduler pass (the event loop is not held by all of them at once)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import trio
import trio.testing
from _helpers import new_app
from test_storage_failures import MemoryStorage

from jobify_trio._storage._writer import (
    DEFER_MAX_WRITES,
    DEFER_SECONDS,
    DELETES_PER_COMMIT,
    WAKE_AT_ONCE,
    StorageWriter,
)
from jobify_trio.storage import Delete, SQLiteStorage, StoredJob, Trigger, Upsert, Write


class Recording(MemoryStorage):
    """Records every batch; can commit inline like SQLite's inline connection."""

    def __init__(self, *, inline: bool = False) -> None:
        super().__init__()
        self.inline = inline
        self.batches: list[list[Write]] = []

    async def apply(self, writes: Sequence[Write], /) -> None:
        self.batches.append(list(writes))
        await super().apply(writes)

    def _apply_now(self, writes: Sequence[Write], /) -> bool:
        if not self.inline:
            return False
        self.batches.append(list(writes))
        for write in writes:
            if isinstance(write, Upsert):
                self.rows[write.job.job_id] = write.job
            elif isinstance(write, Delete):
                self.rows.pop(write.job_id, None)
        return True


def _upsert(job_id: str) -> Upsert:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    row = StoredJob(
        job_id=job_id, task_name="t", trigger=Trigger.PUSH, next_run_at=when, arguments=b""
    )
    return Upsert(job=row)


async def test_a_replaced_row_is_written_after_its_delete(autojump_clock: object) -> None:
    # a push that reuses the id of a job whose delete is queued commits both, in order
    storage = Recording(inline=True)
    writer = StorageWriter(storage)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        await writer.write(_upsert("a"))
        writer.write_nowait(Delete(job_id="a"))
        await writer.write(_upsert("a"))
        assert storage.batches[-1] == [Delete(job_id="a"), _upsert("a")]
        assert set(storage.rows) == {"a"}
        nursery.cancel_scope.cancel()


async def test_a_sequential_caller_takes_the_deletes_along(autojump_clock: object) -> None:
    storage = Recording(inline=True)
    writer = StorageWriter(storage)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        for i in range(50):
            await writer.write(_upsert(f"j{i}"))
            writer.write_nowait(Delete(job_id=f"j{i}"))  # the job ran and ended
            await trio.lowlevel.checkpoint()  # the writer may run: it must not commit it
        # one commit per push: the row alone, or with the deletes queued so far once
        # DELETES_PER_COMMIT of them are queued; the writer commits none of them
        per_commit = DELETES_PER_COMMIT + 1
        assert [len(batch) for batch in storage.batches] == [
            per_commit if i and i % DELETES_PER_COMMIT == 0 else 1 for i in range(50)
        ]
        assert storage.batches[16] == [Delete(job_id=f"j{i}") for i in range(16)] + [_upsert("j16")]
        await trio.sleep(DEFER_SECONDS * 3)  # nobody takes the last ones: committed alone
        assert storage.batches[-1] == [Delete(job_id="j48"), Delete(job_id="j49")]
        assert storage.rows == {}
        nursery.cancel_scope.cancel()


async def test_a_write_nobody_waits_for_is_committed_soon(autojump_clock: object) -> None:
    storage = Recording()
    writer = StorageWriter(storage)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        await writer.write(_upsert("a"))
        writer.write_nowait(Delete(job_id="a"))
        started = trio.current_time()
        while storage.rows:
            await trio.sleep(DEFER_SECONDS / 10)
        assert trio.current_time() - started <= DEFER_SECONDS * 2.5
        nursery.cancel_scope.cancel()


async def test_many_writes_nobody_waits_for_are_not_deferred(autojump_clock: object) -> None:
    storage = Recording()
    writer = StorageWriter(storage)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        for i in range(DEFER_MAX_WRITES):
            writer.write_nowait(_upsert(f"j{i}"))
        started = trio.current_time()
        await trio.testing.wait_all_tasks_blocked()
        assert trio.current_time() == started  # committed without waiting
        assert len(storage.rows) == DEFER_MAX_WRITES
        nursery.cancel_scope.cancel()


class _Passes(trio.abc.Instrument):
    """Counts the scheduler's passes (one I/O check each)."""

    def __init__(self) -> None:
        self.passes = 0

    def after_io_wait(self, timeout: float) -> None:
        self.passes += 1


async def test_the_callers_of_a_batch_wake_a_few_per_pass() -> None:
    storage = Recording()
    writer = StorageWriter(storage)
    passes = _Passes()
    woken: Counter[int] = Counter()

    async def caller(i: int) -> None:
        await writer.write(_upsert(f"j{i}"))
        woken[passes.passes] += 1

    trio.lowlevel.add_instrument(passes)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            async with trio.open_nursery() as callers:
                for i in range(64):
                    callers.start_soon(caller, i)
            nursery.cancel_scope.cancel()
    finally:
        trio.lowlevel.remove_instrument(passes)
    assert sum(woken.values()) == 64
    assert len(storage.batches) < 8  # still group commit
    assert max(woken.values()) <= WAKE_AT_ONCE


async def test_a_push_loop_commits_once_per_push(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "jobs.db")
    app = new_app(storage=storage)

    @app.task(name="t")
    async def t(i: int) -> None:
        return None

    async with app:
        writer = app._runtime.durability.writer  # type: ignore[union-attr]
        before = writer.batches
        for i in range(300):
            await t.push(i)
        await app.wait_all()
        # the deletes of ended jobs ride along with the next push's row
        assert writer.batches - before <= 300 + 300 // 10


async def test_callers_are_woken_even_if_the_writer_stops_while_waking_them() -> None:
    storage = Recording()
    writer = StorageWriter(storage)
    returned: list[int] = []

    async def caller(i: int) -> None:
        await writer.write(_upsert(f"j{i}"))
        returned.append(i)

    with trio.fail_after(10):  # a caller left parked would hang the nursery
        async with trio.open_nursery() as nursery, trio.open_nursery() as writer_scope:
            await writer_scope.start(writer.run)
            for i in range(40):
                nursery.start_soon(caller, i)
            while not storage.batches:  # committing; its callers are woken after
                await trio.lowlevel.checkpoint()
            writer_scope.cancel_scope.cancel()  # the writer stops while waking them
    assert sorted(returned) == list(range(40))
