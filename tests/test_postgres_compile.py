"""PostgreSQL batches of upserts and deletes only (each push, each ended job) take a fast
path whose SQL is built once per shape: it must compile exactly as the general path."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from jobify_trio._storage._postgres_schema import Names
from jobify_trio._storage._postgres_writes import _compile_any, compile_batch
from jobify_trio._storage._records import StoredState, Trigger
from jobify_trio.storage import Delete, StoredJob, Upsert, Write

NAMES = Names("s", "jobify")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _row(job_id: str, owner: str | None) -> StoredJob:
    return StoredJob(
        job_id=job_id,
        task_name="t",
        trigger=Trigger.PUSH,
        next_run_at=T0,
        arguments=b"{}",
        state=StoredState.SCHEDULED,
        lease_owner=owner,
        lease_expires_at=None if owner is None else T0,
    )


_writes = st.lists(
    st.one_of(
        st.builds(Delete, job_id=st.sampled_from("abcd")),
        st.builds(
            lambda job_id, owner: Upsert(job=_row(job_id, owner)),
            st.sampled_from("abcd"),
            st.sampled_from([None, "me"]),
        ),
    ),
    min_size=1,
    max_size=8,
)


@given(_writes)
def test_upserts_and_deletes_compile_as_the_general_path(writes: list[Write]) -> None:
    assert compile_batch(NAMES, writes) == _compile_any(NAMES, writes)


@given(_writes)
def test_new_rows_are_inserted_without_on_conflict_only_if_every_upsert_is_new(
    writes: list[Write],
) -> None:
    """``Upsert.new`` (generated ids): a plain INSERT when every upsert of the batch is
    new, with the same parameters; ``insert_new=False`` (the retry after a unique
    violation) compiles as the general path."""
    new = [Upsert(job=w.job, new=True) if isinstance(w, Upsert) else w for w in writes]
    sql, params = compile_batch(NAMES, new)
    general_sql, general_params = _compile_any(NAMES, writes)
    assert params == general_params
    assert ("ON CONFLICT" in sql) is False
    assert ("INSERT" in sql) is ("INSERT" in general_sql)
    assert compile_batch(NAMES, new, insert_new=False) == (general_sql, general_params)
    mixed = [*new, Upsert(job=_row("z", "me"))]
    assert "ON CONFLICT" in compile_batch(NAMES, mixed)[0]


def test_a_push_after_an_ended_job_is_one_statement_without_notify() -> None:
    sql, params = compile_batch(NAMES, [Delete(job_id="a"), Upsert(job=_row("b", "me"))])
    assert sql.startswith('WITH w0 AS (INSERT INTO "s"."jobify_jobs"')
    assert "DELETE" in sql
    assert "pg_notify" not in sql
    assert params["d"] == ["a"]
    assert params["u0"] == "b"


def test_an_unowned_row_sends_a_notify() -> None:
    sql, params = compile_batch(NAMES, [Upsert(job=_row("b", None))])
    assert sql.endswith("SELECT pg_notify(%(channel)s, '')")
    assert params["channel"] == NAMES.channel_name
