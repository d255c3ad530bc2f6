"""Multi-row statements: mixed, repeated and large batches apply in order, as single rows would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from jobify_trio._storage._sqlite import SQLiteDatabase
from jobify_trio.storage import Delete, StoredJob, Upsert, Write

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _job(key: int, version: int) -> StoredJob:
    return StoredJob(
        job_id=f"j{key}",
        task_name="t",
        trigger="at",
        next_run_at=T0 + timedelta(seconds=version),
        arguments=b"{}",
        attempt=1 + version % 3,
    )


def _writes(ops: list[tuple[bool, int, int]], model: dict[str, StoredJob]) -> list[Write]:
    """The writes ``ops`` stand for, applied to ``model`` (the rows expected after them)."""
    writes: list[Write] = []
    for delete, key, version in ops:
        if delete:
            writes.append(Delete(job_id=f"j{key}"))
            model.pop(f"j{key}", None)
        else:
            job = _job(key, version)
            writes.append(Upsert(job=job))
            model[job.job_id] = job
    return writes


ops = st.lists(st.tuples(st.booleans(), st.integers(0, 20), st.integers(0, 5)), max_size=120)


@settings(max_examples=40, deadline=None)
@given(ops=ops, tail=st.integers(0, 700))
def test_batch_matches_row_by_row_model(
    tmp_path_factory: object, ops: list[tuple[bool, int, int]], tail: int
) -> None:
    path = Path(tmp_path_factory.mktemp("db")) / "jobs.db"  # type: ignore[attr-defined]
    db = SQLiteDatabase(path, "jobs")
    try:
        model: dict[str, StoredJob] = {}
        writes = _writes(ops, model)
        for key in range(100, 100 + tail):  # a long run of one kind crosses chunk sizes
            job = _job(key, 0)
            writes.append(Upsert(job=job))
            model[job.job_id] = job
        db.apply(writes)
        loaded = db.load()
        assert not loaded.corrupt
        assert {job.job_id: job for job in loaded.jobs} == model
        db.apply([Delete(job_id=job_id) for job_id in model])
        assert db.load().jobs == []
    finally:
        db.close()


#: Mostly deletes: batches with a few upserts take the one-statement-per-write path, with
#: consecutive deletes merged into one statement (a push loop's ended jobs and its row).
delete_heavy = st.lists(
    st.tuples(st.integers(0, 7).map(bool), st.integers(0, 20), st.integers(0, 5)), max_size=60
)


@settings(max_examples=60, deadline=None)
@given(ops=delete_heavy)
def test_delete_heavy_batch_matches_row_by_row_model(
    tmp_path_factory: object, ops: list[tuple[bool, int, int]]
) -> None:
    path = Path(tmp_path_factory.mktemp("db")) / "jobs.db"  # type: ignore[attr-defined]
    db = SQLiteDatabase(path, "jobs")
    try:
        db.apply([Upsert(job=_job(key, 0)) for key in range(0, 21, 2)])  # some rows to delete
        model = {job.job_id: job for job in db.load().jobs}
        db.apply(_writes(ops, model))
        assert {job.job_id: job for job in db.load().jobs} == model
    finally:
        db.close()
