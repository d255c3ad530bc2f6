"""SQLiteStorage and several app instances: ``shared=False`` (the default) refuses a second
live instance on the file; ``shared=True`` lets them share it."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from jobify_trio import Jobify
from jobify_trio.storage import SQLiteStorage, StorageError


def test_sharing_is_opt_in() -> None:
    assert SQLiteStorage("x.db").can_share is False
    assert SQLiteStorage("x.db", shared=True).can_share is True
    with pytest.raises(TypeError, match="shared must be True or False, got 'yes'"):
        SQLiteStorage("x.db", shared="yes")  # type: ignore[arg-type]


async def test_a_second_instance_on_an_unshared_file_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    first = Jobify(storage=SQLiteStorage(db))
    with trio.fail_after(20):
        async with first:
            second = Jobify(storage=SQLiteStorage(db))
            with pytest.raises(StorageError, match=r"cannot share a schedule.*is running on it"):
                async with second:
                    pass
        async with Jobify(storage=SQLiteStorage(db)):  # the first one stopped cleanly
            pass


async def test_instances_share_a_file_opened_with_shared_true(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    ran: list[str] = []

    def app() -> Jobify:
        instance = Jobify(storage=SQLiteStorage(db, shared=True))

        @instance.task(name="rec")
        async def rec(value: str) -> None:
            ran.append(value)

        return instance

    first, second = app(), app()
    with trio.fail_after(20):
        async with first, second:
            job = await first.tasks["rec"].schedule("one").push()
            await job.wait()
    assert ran == ["one"]
