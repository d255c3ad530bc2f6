"""The push journal of an unshared SQLite store (``jobify_trio/_storage/_journal.py``).

The record format is property-tested; the store is tested on a real file: what a push
loop leaves in the journal and the table, folds (cancelled, replaced, paused rows; folds
too big for the inline connection), the replay of a journal a crash left, a damaged
tail, the lock, and a shared store replaying an unshared one's journal.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import trio
from _helpers import new_app
from hypothesis import given
from hypothesis import strategies as st

from jobify_trio._storage._journal import journal_path
from jobify_trio._storage._journal_format import JournalRecord, decode, encode
from jobify_trio._storage._sqlite_inline import INLINE_MAX_WRITES
from jobify_trio._storage._sqlite_rows import to_db_time
from jobify_trio.serializers import ExtendedJSONSerializer, encode_call_arguments
from jobify_trio.storage import Delete, SetPaused, SQLiteStorage, StoredJob, Trigger, Upsert

_text = st.text(max_size=40)
_records = st.lists(
    st.builds(
        JournalRecord,
        seq=st.integers(1, 2**63),
        job_id=_text,
        task_name=_text,
        run_at=_text,
        arguments=st.binary(max_size=200),
    ),
    max_size=8,
)


SALT = 0x5A17


def _encoded(records: list[JournalRecord], salt: int = SALT) -> bytes:
    return b"".join(
        encode(r.seq, r.job_id, r.task_name, r.run_at, r.arguments, salt=salt) for r in records
    )


@given(_records)
def test_records_decode_to_what_was_encoded(records: list[JournalRecord]) -> None:
    data = _encoded(records)
    decoded = decode(data, salt=SALT)
    assert decoded.records == records
    assert decoded.end == decoded.size == len(data)
    assert decoded.damaged == 0


@given(_records, st.data())
def test_a_cut_journal_decodes_to_the_whole_records_before_the_cut(
    records: list[JournalRecord], data: st.DataObject
) -> None:
    raw = _encoded(records)
    cut = data.draw(st.integers(0, len(raw)))
    decoded = decode(raw[:cut], salt=SALT)
    ends = [len(_encoded(records[: i + 1])) for i in range(len(records))]
    whole = sum(1 for end in ends if end <= cut)
    assert decoded.records == records[:whole]
    assert decoded.end == (ends[whole - 1] if whole else 0)
    assert decoded.damaged == cut - decoded.end


@given(_records.filter(bool), st.data())
def test_a_damaged_byte_ends_the_good_prefix_at_its_record(
    records: list[JournalRecord], data: st.DataObject
) -> None:
    raw = bytearray(_encoded(records))
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= data.draw(st.integers(1, 255))
    ends = [len(_encoded(records[: i + 1])) for i in range(len(records))]
    hit = next(i for i, end in enumerate(ends) if index < end)
    decoded = decode(bytes(raw), salt=SALT)
    assert decoded.records == records[:hit]  # (CRC-32 catches every one-byte change)


def test_a_field_too_long_is_a_value_error_naming_the_job() -> None:
    with pytest.raises(ValueError, match="'j'"):
        encode(1, "j", "t" * 70_000, "at", b"", salt=SALT)


@given(_records.filter(bool), st.integers(0, 2**32 - 1))
def test_another_databases_journal_reads_as_damaged(
    records: list[JournalRecord], salt: int
) -> None:
    data = _encoded(records, salt)
    decoded = decode(data, salt=salt ^ 1)
    assert decoded.records == []
    assert decoded.damaged == len(data)


def _table(path: Path) -> dict[str, tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return {row[0]: row[1:] for row in conn.execute("SELECT * FROM jobify_jobs")}
    finally:
        conn.close()


def _folded(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute(
            "SELECT value FROM jobify_jobs_meta WHERE key = 'journal_folded'"
        ).fetchone()
    finally:
        conn.close()
    return 0 if row is None else int(row[0])


async def test_a_push_loop_is_journaled_and_leaves_nothing_behind(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    storage = SQLiteStorage(db)
    app = new_app(storage=storage)
    ran: list[int] = []

    @app.task(name="t")
    async def t(i: int) -> None:
        ran.append(i)

    async with app:
        writer = app._runtime.durability.writer  # type: ignore[union-attr]
        for i in range(500):
            await t.push(i)
        journal = storage._folds.journal if storage._folds else None
        assert journal is not None
        assert journal.path == journal_path(db, "jobify_jobs")
        assert journal.path.exists()
        await app.wait_all()
        # every push but the first (no previous caller: the writer commits its row)
        assert writer.journaled == journal.appended == 499
        assert journal.folds >= 1
    assert sorted(ran) == list(range(500))
    assert _table(db) == {}
    assert not journal.path.exists()  # removed, empty, at shutdown


async def test_pushes_with_ids_of_their_own_are_committed_not_journaled(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "jobs.db")
    app = new_app(storage=storage)
    release = trio.Event()

    @app.task(name="t")
    async def t(i: int) -> None:
        await release.wait()

    async with app:
        for i in range(5):
            await t.schedule(i).push(job_id=f"mine-{i}")
        assert storage._folds is not None
        assert storage._folds.journal.appended == 0
        assert sorted(_table(tmp_path / "jobs.db")) == [f"mine-{i}" for i in range(5)]
        release.set()


async def _journal_rows(storage: SQLiteStorage, ids: list[str]) -> None:
    at = datetime(2030, 1, 1, tzinfo=UTC)
    for job_id in ids:
        assert storage._journal_push((job_id, "t", at, b'{"args":[1]}'))


def _stored(job_id: str, attempt: int) -> StoredJob:
    return StoredJob(
        job_id=job_id, task_name="t", trigger=Trigger.PUSH, arguments=b"{}",
        next_run_at=datetime(2031, 1, 1, tzinfo=UTC), attempt=attempt,
    )  # fmt: skip


async def test_a_fold_cancels_deleted_rows_and_takes_newer_ones(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    storage = SQLiteStorage(db)
    await storage.startup()
    try:
        await _journal_rows(storage, ["gone", "kept", "retried", "paused", "back"])
        commits = storage._inline.commits  # type: ignore[union-attr]
        await storage.apply(
            [
                Delete(job_id="gone"),
                Upsert(job=_stored("retried", 2)),
                SetPaused(job_id="paused", paused=True),
                Upsert(job=_stored("back", 3)),
                Delete(job_id="back"),  # after an upsert of its own: the row goes
            ]
        )
        assert storage._inline.commits == commits + 1  # type: ignore[union-attr]
        rows = _table(db)
        assert sorted(rows) == ["kept", "paused", "retried"]
        assert rows["kept"][:2] == ("t", "push")
        assert rows["kept"][3] == b'{"args":[1]}'
        assert rows["retried"][4] == 2  # attempt: the upsert's row, not the journal's
        assert rows["paused"][-1] == 1
        assert storage._folds is not None
        assert storage._folds.journal.pending == 0
        assert journal_path(db, "jobify_jobs").stat().st_size == 0
        assert _folded(db) == 5
        await _journal_rows(storage, ["short"])
        await storage.apply([Delete(job_id="short")])  # cancelled: nothing to commit
        assert storage._inline.commits == commits + 1  # type: ignore[union-attr]
        assert journal_path(db, "jobify_jobs").stat().st_size == 0
    finally:
        await storage.shutdown()
    assert sorted(_table(db)) == ["kept", "paused", "retried"]


async def test_a_fold_too_big_to_commit_inline_goes_to_the_thread(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    storage = SQLiteStorage(db)
    await storage.startup()
    try:
        ids = [f"j{i}" for i in range(INLINE_MAX_WRITES + 5)]
        await _journal_rows(storage, ids)
        commits = storage._inline.commits  # type: ignore[union-attr]
        await storage.apply([Delete(job_id="j0")])
        assert storage._inline.commits == commits  # type: ignore[union-attr]
        assert sorted(_table(db)) == sorted(ids[1:])
        assert journal_path(db, "jobify_jobs").stat().st_size == 0
    finally:
        await storage.shutdown()


async def test_rows_still_journaled_at_shutdown_are_folded(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    storage = SQLiteStorage(db)
    await storage.startup()
    await _journal_rows(storage, ["a", "b"])
    assert _table(db) == {}
    await storage.shutdown()
    assert sorted(_table(db)) == ["a", "b"]
    assert not journal_path(db, "jobify_jobs").exists()


def _write_journal(db: Path, records: list[tuple[int, str]], tail: bytes = b"") -> Path:
    at = to_db_time(datetime(2020, 1, 1, tzinfo=UTC))
    arguments = encode_call_arguments(ExtendedJSONSerializer(), task_name="t", args=(7,), kwargs={})
    conn = sqlite3.connect(db)
    (salt,) = conn.execute(
        "SELECT value FROM jobify_jobs_meta WHERE key = 'journal_salt'"
    ).fetchone()
    conn.close()
    path = journal_path(db, "jobify_jobs")
    path.write_bytes(
        b"".join(encode(seq, job_id, "t", at, arguments, salt=int(salt)) for seq, job_id in records)
        + tail
    )
    return path


async def _make_store(db: Path, *, folded: int = 0) -> None:
    storage = SQLiteStorage(db)
    await storage.startup()
    await storage.shutdown()
    if folded:
        conn = sqlite3.connect(db)
        conn.execute(
            "INSERT INTO jobify_jobs_meta (key, value) VALUES ('journal_folded', ?)",
            (str(folded),),
        )
        conn.commit()
        conn.close()


async def test_a_crashs_journal_is_replayed_after_the_folded_number(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    await _make_store(db, folded=2)
    _write_journal(db, [(1, "old-1"), (2, "old-2"), (3, "new-3"), (4, "new-4")])
    app = new_app(storage=SQLiteStorage(db))
    ran: list[str] = []

    @app.task(name="t")
    async def t(i: int) -> None:
        ran.append(f"{i}")

    async with app:
        await app.wait_all()
        restored = sorted(ran)
    assert restored == ["7", "7"]  # new-3 and new-4, each with its arguments
    assert _table(db) == {}
    assert _folded(db) == 4
    assert not journal_path(db, "jobify_jobs").exists()


async def test_a_damaged_tail_is_kept_aside_and_warned_about(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    await _make_store(db)
    path = _write_journal(db, [(1, "a"), (2, "b")], tail=b"\x07" * 30)
    storage = SQLiteStorage(db)
    with pytest.warns(RuntimeWarning, match="30 damaged byte"):
        await storage.startup()
    try:
        assert sorted(_table(db)) == ["a", "b"]
        assert path.with_name(path.name + ".damaged").read_bytes() == b"\x07" * 30
        assert path.stat().st_size == 0
    finally:
        await storage.shutdown()


async def test_a_live_journal_is_neither_replayed_nor_shared(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    first = SQLiteStorage(db)
    await first.startup()
    try:
        await _journal_rows(first, ["live"])
        second = SQLiteStorage(db, shared=True)
        await second.startup()  # the lock is held: nothing replayed, nothing journaled
        try:
            assert second._folds is None
            assert _table(db) == {}
            assert not second._journal_push(("x", "t", datetime.now(UTC), b"{}"))
        finally:
            await second.shutdown()
        assert journal_path(db, "jobify_jobs").stat().st_size > 0
    finally:
        await first.shutdown()
    assert sorted(_table(db)) == ["live"]


async def test_a_shared_store_replays_an_unshared_ones_journal(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    await _make_store(db)
    _write_journal(db, [(1, "left")])
    storage = SQLiteStorage(db, shared=True)
    await storage.startup()
    try:
        assert storage._folds is None  # it journals nothing itself
        assert sorted(_table(db)) == ["left"]
        assert not journal_path(db, "jobify_jobs").exists()
    finally:
        await storage.shutdown()


async def test_a_full_disk_leaves_no_torn_record(tmp_path: Path, monkeypatch: Any) -> None:
    db = tmp_path / "jobs.db"
    storage = SQLiteStorage(db)
    await storage.startup()
    try:
        await _journal_rows(storage, ["a"])
        size = journal_path(db, "jobify_jobs").stat().st_size
        real_write = os.write

        def short_write(fd: int, data: bytes) -> int:
            return real_write(fd, data[:10])

        monkeypatch.setattr(os, "write", short_write)
        with pytest.raises(Exception, match="'b' was not saved"):
            storage._journal_push(("b", "t", datetime.now(UTC), b"{}"))
        monkeypatch.undo()
        assert journal_path(db, "jobify_jobs").stat().st_size == size
        await _journal_rows(storage, ["c"])
    finally:
        await storage.shutdown()
    assert sorted(_table(db)) == ["a", "c"]


async def test_the_cli_lists_journaled_rows_not_folded_yet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from jobify_trio.__main__ import main

    db = tmp_path / "jobs.db"
    await _make_store(db, folded=1)
    _write_journal(db, [(1, "folded-before"), (2, "waiting")])
    assert main(["jobs", "--db", str(db), "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[:3] == ["waiting", "t", "push"]
    assert out[1].split()[4] == "journaled"
    assert out[-1] == "1 stored job(s), 1 of them journaled (not in the table yet)"
    assert journal_path(db, "jobify_jobs").stat().st_size > 0  # the CLI changes nothing


async def test_a_push_loop_goes_on_under_a_held_write_lock_and_folds_later(
    tmp_path: Path,
) -> None:
    # another connection holds the write lock: the pushes are journaled at once; the
    # fold (the rows of the jobs still running, after the ended ones' deletes) waits on
    # the thread without blocking the event loop, and lands once the lock is released
    import contextlib

    from test_sqlite_inline import LONGEST_GAP, Canary, _lock

    db = tmp_path / "jobs.db"
    storage = SQLiteStorage(db)
    app = new_app(storage=storage)
    hold = trio.Event()

    @app.task(name="t")
    async def t(i: int) -> None:
        if i % 2 == 0:
            await hold.wait()

    canary = Canary()
    async with app, trio.open_nursery() as nursery:
        nursery.start_soon(canary.run)
        jobs = [await t.push(0)]  # committed: the next pushes are a sequential caller's
        with contextlib.closing(_lock(db)) as other:
            started = trio.current_time()
            jobs += [await t.push(i) for i in range(1, 50)]
            assert trio.current_time() - started < 0.25  # not held up by the lock
            await trio.sleep(0.2)  # the odd jobs end: a fold is due, and waits
            assert list(_table(db)) == [jobs[0].id]
            assert storage._inline is not None
            assert storage._inline.busy >= 1
            other.rollback()
        with trio.fail_after(10):
            while len(_table(db)) < 25:  # the 24 journaled even jobs, and job 0
                await trio.sleep(0.02)
        assert sorted(_table(db)) == sorted(job.id for job in jobs[::2])  # (and push 0)
        hold.set()
        await app.wait_all()
        nursery.cancel_scope.cancel()
    assert _table(db) == {}
    assert canary.ticks >= 10
    assert canary.longest < LONGEST_GAP


async def test_a_journal_left_beside_another_database_is_not_replayed(tmp_path: Path) -> None:
    db, other = tmp_path / "jobs.db", tmp_path / "other" / "jobs.db"
    other.parent.mkdir()
    await _make_store(db)
    await _make_store(other)
    path = _write_journal(other, [(1, "theirs")])
    path.rename(journal_path(db, "jobify_jobs"))  # beside a database it does not belong to
    storage = SQLiteStorage(db)
    with pytest.warns(RuntimeWarning, match="another database's journal"):
        await storage.startup()
    await storage.shutdown()
    assert _table(db) == {}


def test_the_journal_is_named_after_the_real_path(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert journal_path(tmp_path / "link" / "jobs.db", "t") == journal_path(
        tmp_path / "real" / "jobs.db", "t"
    )
    assert journal_path(tmp_path / "real" / "jobs.db", "t").name == "jobs.db-t-journal"


async def test_a_forked_child_does_not_keep_the_journal_locked(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "jobs.db")
    await storage.startup()
    try:
        assert storage._folds is not None
        fd = storage._folds.journal._fd
        pid = os.fork()
        if pid == 0:  # the child: the inherited descriptor must be closed
            try:
                os.fstat(fd)
            except OSError:
                os._exit(0)
            os._exit(1)
        _, status = os.waitpid(pid, 0)  # noqa: ASYNC222 (the child exits at once)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        await storage.shutdown()
