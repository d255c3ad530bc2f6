"""A push loop's rows committed without building them (``StorageWriter.push_now``): the
same rows as the general path writes, and only when the general path would commit the
row alone, synchronously. (Without the push journal, which takes such rows by default:
see test_push_journal.py.)"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import trio
from _helpers import new_app

from jobify_trio import Jobify
from jobify_trio._storage._writer import DELETES_PER_COMMIT
from jobify_trio.storage import SQLiteStorage


def _rows(path: Path) -> dict[str, tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT * FROM jobify_jobs").fetchall()
    finally:
        conn.close()
    return {row[0]: row[1:] for row in rows}


class _Counted(SQLiteStorage):
    """Counts the rows committed by ``_push_now``."""

    pushed = 0

    def _push_now(self, row: Any, /) -> bool:
        done = super()._push_now(row)
        self.pushed += done
        return done


async def test_a_push_loop_writes_the_general_paths_rows(tmp_path: Path) -> None:
    storage = _Counted(tmp_path / "jobs.db", push_journal=False)
    app = new_app(storage=storage)
    release = trio.Event()

    @app.task(name="t")
    async def t(i: int, text: str = "") -> None:
        await release.wait()

    async with app:
        writer = app._runtime.durability.writer  # type: ignore[union-attr]
        jobs = [await t.push(i, "é\x00") for i in range(10)]
        # the first call has no previous caller: the writer commits its row
        assert writer.direct == storage.pushed == 9
        rows = _rows(tmp_path / "jobs.db")  # committed when each call returned
        assert len(rows) == 10
        codec = app._runtime.durability.codec  # type: ignore[union-attr]
        first = rows[jobs[0].id]  # (task, trigger, next_run_at, arguments, attempt, ...)
        for i, job in enumerate(jobs):
            row = rows[job.id]
            assert row[2] == job.exec_at.astimezone(UTC).isoformat(timespec="microseconds")
            assert row[3] == codec.encode("t", (i, "é\x00"), {})
            assert (
                row[:2] + row[4:]
                == first[:2] + first[4:]
                == ("t", "push", 1, "scheduled", None, None, None, None, 0)
            )
        release.set()


async def test_a_push_leaves_fewer_queued_deletes_than_it_takes_along(tmp_path: Path) -> None:
    # the rows of ended jobs are deleted DELETES_PER_COMMIT at a time, by the general path
    storage = _Counted(tmp_path / "jobs.db", push_journal=False)
    app = new_app(storage=storage)

    @app.task(name="quick")
    async def quick(i: int) -> None:
        return None

    async with app:
        writer = app._runtime.durability.writer  # type: ignore[union-attr]
        for i in range(100):
            job = await quick.push(i)
            # taken along once DELETES_PER_COMMIT are queued (jobs end in bursts: a few more)
            assert len(writer._open.writes) < 2 * DELETES_PER_COMMIT
            if i % 10 == 0:  # committed when the call returns (the job runs after)
                assert job.id in _rows(tmp_path / "jobs.db")
        assert writer.direct == 99  # the first call has no previous caller
        assert 80 <= storage.pushed <= 99  # (the pushes that take deletes along: not)
        await app.wait_all()
    assert _rows(tmp_path / "jobs.db") == {}


async def test_a_queued_delete_of_the_same_id_is_committed_first(tmp_path: Path) -> None:
    # the first job with id "x" ended: its delete is queued (left to a later push); a new
    # job with that id must not be committed before it (the delete would remove its row)
    storage = _Counted(tmp_path / "jobs.db", push_journal=False)
    app = new_app(storage=storage)
    release = trio.Event()

    @app.task(name="quick")
    async def quick() -> None:
        return None

    @app.task(name="slow")
    async def slow() -> None:
        await release.wait()

    async with app:
        writer = app._runtime.durability.writer  # type: ignore[union-attr]
        await quick.push()
        await quick.push()  # the same task calls next: a sequential caller
        await app.wait_all()
        await quick.schedule().push(job_id="x")
        await app.wait_all()
        assert "x" in writer._open.deleting
        pushed = storage.pushed
        await slow.schedule().push(job_id="x")
        assert storage.pushed == pushed  # the general path: the delete, then the row
        assert not writer._open.writes
        assert "x" in _rows(tmp_path / "jobs.db")
        await trio.sleep(0.05)  # (the writer had nothing left to commit)
        assert "x" in _rows(tmp_path / "jobs.db")
        release.set()


class _SetClock:
    """A wall clock that reads what the test sets."""

    def __init__(self, now: datetime) -> None:
        self.value = now

    def now(self) -> datetime:
        return self.value


async def test_a_row_that_cannot_be_stored_fails_only_its_call_in_a_push_loop(
    tmp_path: Path,
) -> None:
    # a push loop's row is not checked before it is committed: an id that is not text or a
    # run time out of UTC's range falls back to the general path, which names the value
    east = timezone(timedelta(hours=5))
    clock = _SetClock(datetime(2026, 1, 1, tzinfo=east))
    storage = _Counted(tmp_path / "jobs.db", push_journal=False)
    app = Jobify(storage=storage, wall_clock=clock, tz=east)
    runs: list[int] = []
    task = app.task(name="t")(runs.append)
    async with app:
        await task.push(0)
        await task.push(1)
        assert storage.pushed == 1
        clock.value = datetime(1, 1, 1, tzinfo=east)  # year 1 here is before year 1 in UTC
        with pytest.raises(ValueError, match="out of the range of dates in UTC"):
            await task.push(2)
        clock.value = datetime(2026, 1, 1, tzinfo=east)
        with pytest.raises(ValueError, match="job_id '\\\\ud800' cannot be stored"):
            await task.schedule(3).push(job_id="\ud800")
        await task.push(4)
        assert storage.pushed == 2
        await app.wait_all()
    assert sorted(runs) == [0, 1, 4]
