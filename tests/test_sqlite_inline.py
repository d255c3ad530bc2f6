"""Commits made inline on the trio thread: used when the write lock is free, never waiting
for it on the event loop (another connection holding it sends the commit to the thread,
which waits up to ``busy_timeout``)."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import trio
from _helpers import new_app

from jobify_trio import Jobify
from jobify_trio.storage import SQLiteStorage, StorageError

LOCK_SECONDS = 0.3
#: A loaded machine may be slow, but an event loop blocked by the lock misses whole
#: busy timeouts (0.3 s); a responsive one never stops for this long.
LONGEST_GAP = 0.15


class Canary:
    """Counts 1 ms sleeps and the longest gap between two wake-ups (real time)."""

    def __init__(self) -> None:
        self.ticks = 0
        self.longest = 0.0

    async def run(self) -> None:
        last = trio.current_time()
        while True:
            await trio.sleep(0.001)
            now = trio.current_time()
            self.ticks += 1
            self.longest = max(self.longest, now - last)
            last = now


def _app(path: Path, busy_timeout: float) -> tuple[Jobify, Any, SQLiteStorage]:
    """An app whose pushes commit their rows (no push journal: test_push_journal.py)."""
    storage = SQLiteStorage(path, busy_timeout=busy_timeout, push_journal=False)
    app = new_app(storage=storage)

    @app.task(name="t")
    async def t(i: int) -> None:
        return None

    return app, t, storage


def _lock(path: Path) -> sqlite3.Connection:
    """Another connection, holding the write lock."""
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    other.execute("BEGIN IMMEDIATE")
    return other


def _rows(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        (count,) = conn.execute("SELECT count(*) FROM jobify_jobs").fetchone()
    finally:
        conn.close()
    return int(count)


async def test_sequential_pushes_commit_inline(tmp_path: Path) -> None:
    app, t, storage = _app(tmp_path / "jobs.db", busy_timeout=5.0)
    async with app:
        for i in range(20):
            await t.schedule(i).delay(timedelta(hours=1))
        inline = storage._inline
        assert inline is not None
        assert (inline.commits, inline.busy) == (20, 0)
    assert _rows(tmp_path / "jobs.db") == 20


async def test_a_sequential_caller_commits_its_own_row(tmp_path: Path) -> None:
    # the second push on is committed by the pushing task itself, not the writer task,
    # and the row is committed when the call returns
    app, t, storage = _app(tmp_path / "jobs.db", busy_timeout=5.0)
    async with app:
        writer = app._runtime.durability.writer  # type: ignore[union-attr]
        for i in range(30):
            await t.schedule(i).delay(timedelta(hours=1))
            assert _rows(tmp_path / "jobs.db") == i + 1
        assert writer.direct >= 29
        assert storage._inline is not None
        assert storage._inline.commits == 30


async def test_concurrent_callers_still_share_commits(tmp_path: Path) -> None:
    app, t, _ = _app(tmp_path / "jobs.db", busy_timeout=5.0)
    async with app:
        writer = app._runtime.durability.writer  # type: ignore[union-attr]
        before = writer.batches
        async with trio.open_nursery() as nursery:
            for i in range(50):
                nursery.start_soon(t.push, i)
        await app.wait_all()
        assert writer.batches - before < 25
    assert _rows(tmp_path / "jobs.db") == 0


async def test_locked_commit_fails_without_blocking_the_event_loop(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    app, t, storage = _app(path, busy_timeout=LOCK_SECONDS)
    canary = Canary()
    async with app, trio.open_nursery() as nursery:
        nursery.start_soon(canary.run)
        other = _lock(path)
        try:
            with pytest.raises(StorageError, match="locked"):
                await t.schedule(1).delay(timedelta(hours=1))
        finally:
            other.rollback()
            other.close()
        nursery.cancel_scope.cancel()
        assert app.get_active_jobs() == []
        assert storage._inline is not None
        assert storage._inline.busy >= 1
    assert canary.ticks >= 10
    assert canary.longest < LONGEST_GAP


async def test_locked_commit_succeeds_once_the_lock_is_released(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    app, t, storage = _app(path, busy_timeout=5.0)
    canary = Canary()
    other = None

    async def release_later() -> None:
        await trio.sleep(LOCK_SECONDS)
        assert other is not None
        other.rollback()

    async with app, trio.open_nursery() as nursery:
        nursery.start_soon(canary.run)
        other = _lock(path)
        try:
            nursery.start_soon(release_later)
            started = trio.current_time()
            job = await t.schedule(1).delay(timedelta(hours=1))
            assert trio.current_time() - started >= LOCK_SECONDS * 0.9
        finally:
            other.close()
        nursery.cancel_scope.cancel()
        assert job.id in {active.id for active in app.get_active_jobs()}
        assert storage._inline is not None
        assert storage._inline.busy >= 1
    assert canary.ticks >= 10
    assert canary.longest < LONGEST_GAP
    assert _rows(path) == 1


async def _release_later(other: sqlite3.Connection) -> None:
    await trio.sleep(LOCK_SECONDS)
    other.rollback()


async def test_a_locked_push_loop_commit_waits_on_the_thread(tmp_path: Path) -> None:
    # a sequential push's row (StorageWriter.push_now) finds the write lock taken: it is
    # committed on the thread once the lock is released, the event loop never blocked
    path = tmp_path / "jobs.db"
    app, t, storage = _app(path, busy_timeout=5.0)
    canary = Canary()
    async with app, trio.open_nursery() as nursery:
        nursery.start_soon(canary.run)
        await t.push(0)  # the next push is a sequential caller's
        assert storage._inline is not None
        commits, started = storage._inline.commits, trio.current_time()
        with contextlib.closing(_lock(path)) as other:
            nursery.start_soon(_release_later, other)
            await t.push(1)
        assert trio.current_time() - started >= LOCK_SECONDS * 0.9
        await t.push(2)  # inline again
        nursery.cancel_scope.cancel()
        assert storage._inline.busy >= 1
        assert storage._inline.commits == commits + 1
    assert canary.ticks >= 10
    assert canary.longest < LONGEST_GAP


async def test_the_wal_stays_bounded_during_a_stream_of_inline_commits(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    app, t, storage = _app(path, busy_timeout=5.0)
    async with app:
        for i in range(1500):  # each job runs at once: its row is inserted, then deleted
            await t.push(i)
        await app.wait_all()
        assert storage._inline is not None
        assert storage._inline.commits > 1000
        wal = path.with_name(path.name + "-wal").stat().st_size
    assert wal < 6 * 1024 * 1024  # without whole checkpoints: ~12 KB per job, ~18 MB


async def test_the_commit_after_a_checkpoint_starts_the_wal_over_on_the_thread(
    tmp_path: Path,
) -> None:
    """The batch that goes to the thread with a checkpoint is committed after it, so that
    commit starts the WAL file over (and syncs its new header) on the thread, not the next
    inline commit on the event loop: right after it, the WAL holds only its frames."""
    from jobify_trio._storage._sqlite_inline import CHECKPOINT_EVERY

    path = tmp_path / "jobs.db"
    app, t, storage = _app(path, busy_timeout=5.0)
    async with app:
        inline = storage._inline
        assert inline is not None
        while inline._since_checkpoint < CHECKPOINT_EVERY:
            await t.schedule(inline.commits).delay(timedelta(hours=1))
        await t.schedule(-1).delay(timedelta(hours=1))  # on the thread, with the checkpoint
        assert inline._since_checkpoint == 0
        frames = _wal_frames(path)
    assert 0 < frames <= 8  # before, the WAL still held every inline commit (1,000s)


def _wal_frames(path: Path) -> int:
    """The frames in the WAL (as a passive checkpoint reports them)."""
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        _busy, frames, _done = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    finally:
        other.close()
    return int(frames)
