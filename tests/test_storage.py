"""SQLiteStorage, the storage writer (group commit), bad input, and the jobs CLI."""

from __future__ import annotations

import io
import pickle
import sqlite3
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import trio
from _helpers import START
from attrs import evolve

from jobify_trio import Jobify, storage
from jobify_trio._cli._jobs import jobs_main
from jobify_trio._storage._sqlite import SQLiteDatabase
from jobify_trio.storage import (
    Delete,
    SQLiteStorage,
    StorageError,
    StoredJob,
    StoredState,
    Trigger,
    Upsert,
)
from jobify_trio.testing import VirtualWallClock


def row(job_id: str, *, minutes: int = 0, task: str = "t") -> StoredJob:
    return StoredJob(
        job_id=job_id,
        task_name=task,
        trigger=Trigger.AT,
        next_run_at=START + timedelta(minutes=minutes),
        arguments=b'{"v":1,"args":[],"kwargs":{}}',
    )


def count_rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        (n,) = conn.execute("SELECT count(*) FROM jobify_jobs").fetchone()
    conn.close()
    return int(n)


# -- the store itself -------------------------------------------------------------------


async def test_apply_load_round_trip_in_wal_mode(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "s.db")
    await storage.startup()
    try:
        await storage.add(row("a", minutes=2), row("b", minutes=1))
        await storage.apply([Upsert(job=row("a", minutes=3)), Delete(job_id="b")])
        loaded = await storage.load()
    finally:
        await storage.shutdown()
    assert [job.job_id for job in loaded.jobs] == ["a"]
    assert loaded.jobs[0].next_run_at == START + timedelta(minutes=3)
    assert loaded.jobs[0].state is StoredState.SCHEDULED
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


def pushed(job_id: str, *, minutes: int = 0) -> StoredJob:
    return evolve(row(job_id, minutes=minutes), trigger=Trigger.PUSH)


async def test_a_row_written_alone_reads_back_the_same_whatever_its_optional_columns(
    tmp_path: Path,
) -> None:
    """A lone upsert of a row without cron, lease nor origin binds them as ``NULL``
    literals, and a pushed row at its first attempt also its trigger, attempt, state
    and paused (``row_values``); the others bind every column. All read back as written."""
    from datetime import UTC

    from jobify_trio._storage._sqlite_rows import row_values

    lease = START.astimezone(UTC) + timedelta(seconds=30)
    jobs = [
        pushed("pushed", minutes=1),
        row("plain", minutes=1),
        evolve(pushed("retrying"), attempt=2, state=StoredState.RETRYING),
        evolve(pushed("paused"), paused=True),
        evolve(row("cron", minutes=2), trigger=Trigger.CRON, cron='{"expression": "* * * * *"}'),
        evolve(row("leased", minutes=3), lease_owner="instance-1", lease_expires_at=lease),
        evolve(row("origin", minutes=4), origin="instance-2", paused=True),
    ]
    kinds = ["pushed", "plain", "plain", "plain", "upsert", "upsert", "upsert"]
    assert [row_values(job)[0] for job in jobs] == kinds
    storage = SQLiteStorage(tmp_path / "s.db")
    await storage.startup()
    try:
        for job in jobs:
            await storage.apply([Upsert(job=job)])
        loaded = await storage.load()
    finally:
        await storage.shutdown()
    assert sorted(loaded.jobs, key=jobs.index) == jobs
    with sqlite3.connect(tmp_path / "s.db") as conn:
        types = {kind for (kind,) in conn.execute("SELECT typeof(arguments) FROM jobify_jobs")}
    conn.close()
    assert types == {"blob"}


def test_a_big_batch_writes_rows_of_each_kind_apart_and_in_order(tmp_path: Path) -> None:
    """In a batch too big for one statement per write, consecutive rows of one kind of
    ``row_values`` go out as one multi-row statement with literals for the columns that
    kind leaves out, the others in statements of their own; the writes keep their order
    (the last row of an id wins) and read back as written."""
    jobs = [pushed(f"p{i}", minutes=i) for i in range(4)]
    at = row("p2", minutes=7)  # no cron, lease nor origin, but not a push
    cron = evolve(row("p0", minutes=9), trigger=Trigger.CRON, cron='{"expression": "* * * * *"}')
    again = pushed("p1", minutes=8)  # pushed again, after rows that are not
    db = SQLiteDatabase(tmp_path / "s.db", "jobify_jobs")
    bound: list[tuple[str, int]] = []  # each statement's verb and number of values

    class Recording:
        def __init__(self, cursor: sqlite3.Cursor) -> None:
            self.cursor = cursor

        def execute(self, sql: str, values: Any = ()) -> sqlite3.Cursor:
            bound.append((sql.split()[0], len(values)))
            return self.cursor.execute(sql, values)

    db._cursor = Recording(db._cursor)  # type: ignore[assignment]
    try:
        db.apply([*(Upsert(job=job) for job in (*jobs, at, cron, again))])
        db.apply([Delete(job_id="p3")])
        loaded = db.load()
    finally:
        db.close()
    # 4 values per pushed row, 8 per plain row, all 12 for the others
    assert bound == [("INSERT", 16), ("INSERT", 8), ("INSERT", 12), ("INSERT", 4), ("DELETE", 1)]
    assert sorted(loaded.jobs, key=lambda job: job.job_id) == [cron, again, at]


def test_the_writes_built_through_their_slots_equal_the_constructed_ones() -> None:
    import attrs

    from jobify_trio._storage._records import delete_of, upsert_of

    job = row("a")
    for new in (False, True):
        assert upsert_of(job, new) == Upsert(job=job, new=new)
        assert hash(upsert_of(job, new)) == hash(Upsert(job=job, new=new))
    assert delete_of("a") == Delete(job_id="a") != delete_of("b")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        delete_of("a").job_id = "b"  # type: ignore[misc]


def test_stored_times_are_isoformat_text_in_utc() -> None:
    """``to_db_time`` reuses the text of the second it wrote last: still ``isoformat``."""
    import random
    from datetime import UTC, datetime, timezone

    from jobify_trio._storage._sqlite_rows import to_db_time

    rng = random.Random(7)
    start = datetime(1, 1, 2, tzinfo=UTC)
    moments = [START, START + timedelta(microseconds=1), START + timedelta(seconds=1)]
    for _ in range(3000):
        moment = start + timedelta(microseconds=rng.randrange(315_000_000_000_000_000))
        zone = timezone(timedelta(hours=rng.randint(-12, 12)))
        moments += [moment, moment + timedelta(microseconds=rng.randrange(2_000_000))]
        moments.append(moment.astimezone(zone))
        odd = timezone(
            timedelta(minutes=rng.randint(-600, 600), microseconds=rng.randrange(1, 10**6))
        )
        moments.append(moment.astimezone(odd))  # an offset with microseconds
    lowest, highest = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    moments += [lowest, highest, highest, highest - timedelta(seconds=1), highest, lowest]
    for moment in moments:
        assert to_db_time(moment) == moment.astimezone(UTC).isoformat(timespec="microseconds")


async def test_claim_due_leases_rows_until_the_lease_expires(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "s.db")
    await storage.startup()
    try:
        await storage.add(row("due", minutes=0), row("later", minutes=10))
        lease = timedelta(seconds=30)
        first = await storage.claim_due(owner="A", now=START, lease=lease, limit=10)
        assert [(j.job_id, j.lease_owner) for j in first] == [("due", "A")]
        assert await storage.claim_due(owner="B", now=START, lease=lease, limit=10) == []
        expired = START + timedelta(minutes=1)
        stolen = await storage.claim_due(owner="B", now=expired, lease=lease, limit=10)
        assert [j.job_id for j in stolen] == ["due"]
        await storage.release(owner="B", job_ids=["due"])
        again = await storage.claim_due(owner="C", now=expired, lease=lease, limit=10)
        assert [j.job_id for j in again] == ["due"]
    finally:
        await storage.shutdown()


@pytest.mark.parametrize("operation", ["delete", "release", "apply"])
def test_a_failed_write_rolls_back_and_leaves_the_file_unlocked(
    tmp_path: Path, operation: str
) -> None:
    db = SQLiteDatabase(tmp_path / "s.db", "jobify_jobs")
    other = SQLiteDatabase(tmp_path / "s.db", "jobify_jobs", busy_timeout=0.05)
    try:
        db.apply([Upsert(job=row("a")), Upsert(job=row("b"))])
        unbindable: Any = object()  # sqlite3 cannot bind it: fails inside the transaction
        with pytest.raises(StorageError, match=r"cannot (write|release)"):
            if operation == "delete":
                db.delete(["a", unbindable])
            elif operation == "release":
                db.release(owner="me", job_ids=["a", unbindable])
            else:
                db.apply([Delete(job_id="a"), Delete(job_id=unbindable)])
        assert not db._conn.in_transaction
        other.apply([Upsert(job=row("c"))])  # no lock left behind
        assert db.delete(["a"]) == 1  # and the failed write changed nothing
        assert [raw[0] for raw in db.rows()] == ["b", "c"]
    finally:
        other.close()
        db.close()


def test_table_names_are_validated() -> None:
    for bad in ("", "1abc", "jobs; DROP TABLE x", "a-b", "x" * 64):
        with pytest.raises(ValueError, match="invalid table name"):
            SQLiteStorage("x.db", table_name=bad)
    assert SQLiteStorage("x.db", table_name="my_jobs_2").table_name == "my_jobs_2"


def test_storage_records_live_at_their_public_home() -> None:
    # defined in a private module; named, pickled and documented as jobify_trio.storage.X
    for name in storage.__all__:
        obj = getattr(storage, name)
        if not callable(obj) or name == "PostgresStorage":
            continue  # SCHEMA_VERSION, Write; PostgresStorage lives in _storage._postgres
        if obj.__module__ == "jobify_trio._storage._shared":
            continue  # the sharing values keep their own module (as before)
        assert obj.__module__ == "jobify_trio.storage", name
    job = row("a")
    writes = [Upsert(job=job), Delete(job_id="a"), Trigger.CRON, StoredState.RETRYING]
    assert pickle.loads(pickle.dumps(writes)) == writes
    assert repr(Delete(job_id="a")) == "Delete(job_id='a')"


async def test_unknown_schema_version_is_a_clear_error_and_keeps_rows(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    storage = SQLiteStorage(db)
    await storage.startup()
    await storage.add(row("a"))
    await storage.shutdown()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE jobify_jobs_meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(StorageError, match=r"schema version '99' is not supported"):
        await SQLiteStorage(db).startup()
    assert count_rows(db) == 1


async def test_a_file_that_is_not_sqlite_is_a_clear_error_and_is_left_alone(
    tmp_path: Path,
) -> None:
    db = tmp_path / "notes.txt"
    content = b"these are my notes, not a database\n" * 200
    db.write_bytes(content)
    app = Jobify(storage=SQLiteStorage(db))
    with pytest.raises(StorageError, match=r"notes\.txt.*not a SQLite database"):
        async with app:
            pass
    assert db.read_bytes() == content
    assert not app.is_running


async def test_an_unwritable_directory_is_a_clear_error(tmp_path: Path) -> None:
    # Permission bits do not stop root, so the "directory" is a regular file: nothing can
    # be created under it, whoever runs the test.
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    app = Jobify(storage=SQLiteStorage(blocker / "jobs.db"))
    with pytest.raises(StorageError, match=r"cannot open.*directory"):
        async with app:
            pass
    assert blocker.read_text() == "x"


# -- the app and its writer ------------------------------------------------------------


async def test_unencodable_argument_names_task_and_argument_and_stores_nothing(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.db"
    app = Jobify(storage=SQLiteStorage(db))

    @app.task(name="send")
    async def send(to: str, payload: Any = None) -> None:
        return None

    async with app:
        with pytest.raises(TypeError, match=r"task 'send': argument 'payload'.*lock"):
            await send.push("a", payload=[1, threading.Lock()])
        with pytest.raises(TypeError, match=r"task 'send'"):
            await send.schedule("a", payload=object()).delay(5)
        assert app.get_active_jobs() == []
    assert count_rows(db) == 0


async def test_each_scheduling_call_returns_after_its_row_is_committed(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    app = Jobify(storage=SQLiteStorage(db), wall_clock=VirtualWallClock(START))
    seen: list[bool] = []

    @app.task(name="later")
    async def later(i: int) -> None:
        return None

    async def schedule_and_check(i: int) -> None:
        job = await later.schedule(i).delay(3600)
        with sqlite3.connect(db) as conn:  # another connection sees the committed row
            found = conn.execute("SELECT 1 FROM jobify_jobs WHERE job_id = ?", (job.id,))
            seen.append(found.fetchone() is not None)
        conn.close()

    async with app:
        writer = app._runtime.durability.writer  # type: ignore[union-attr]
        before = writer.batches
        async with trio.open_nursery() as nursery:
            for i in range(200):
                nursery.start_soon(schedule_and_check, i)
        batches = writer.batches - before
        for job in app.get_active_jobs():
            await job.cancel()
    assert seen == [True] * 200
    assert batches < 20, f"200 concurrent calls took {batches} commits (no group commit?)"
    assert count_rows(db) == 0


async def test_storage_none_means_the_default_sqlite_file_and_false_disables_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    default = Jobify(storage=None)
    assert isinstance(default._storage, SQLiteStorage)
    assert default._storage.path == Path("jobify.db")
    assert isinstance(Jobify()._storage, SQLiteStorage)
    disabled = Jobify(storage=False)
    assert disabled._storage is None
    async with disabled:
        pass
    assert not (tmp_path / "jobify.db").exists()
    async with default:
        pass
    assert (tmp_path / "jobify.db").exists()
    with pytest.raises(TypeError, match="storage must be"):
        Jobify(storage="jobify.db")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="serializer must"):
        Jobify(storage=False, serializer=42)  # type: ignore[arg-type]


# -- the CLI ---------------------------------------------------------------------------


async def _stored_world(db: Path) -> None:
    storage = SQLiteStorage(db)
    await storage.startup()
    await storage.add(row("j1", task="known", minutes=5), row("j2", task="gone", minutes=1))
    await storage.shutdown()


async def test_cli_lists_deletes_and_purges(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    await _stored_world(db)
    (tmp_path / "cliapp.py").write_text(
        "from jobify_trio import Jobify\n"
        "app = Jobify(storage=False)\n"
        "@app.task(name='known')\n"
        "async def known() -> None: ...\n"
    )
    out = io.StringIO()
    app_args = ["--app", "cliapp:app", "--app-dir", str(tmp_path)]
    assert jobs_main(["--db", str(db), *app_args], out=out) == 0
    listing = out.getvalue()
    assert "j2  gone" in listing
    assert "(unknown task)" in listing.splitlines()[1]
    assert listing.rstrip().endswith("2 stored job(s)")
    out = io.StringIO()
    assert jobs_main(["--db", str(db), *app_args, "purge-unknown"], out=out) == 0
    assert "deleting j2" in out.getvalue()
    assert count_rows(db) == 1
    out = io.StringIO()
    assert jobs_main(["--db", str(db), "delete", "j1", "nope"], out=out) == 1
    assert "deleted 1 of 2" in out.getvalue()
    assert count_rows(db) == 0


def test_cli_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert jobs_main(["--db", str(tmp_path / "missing.db")]) == 2
    assert "no database file" in capsys.readouterr().err
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"junk" * 1000)
    assert jobs_main(["--db", str(junk)]) == 2
    assert "not a SQLite database" in capsys.readouterr().err
    assert junk.read_bytes() == b"junk" * 1000
