"""``jobify-trio jobs`` and ``run`` with a PostgreSQL URL (``--db`` or ``$JOBIFY_DB``)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
import trio
from _stores import PG_URL, PostgresBackend, pg_execute, require_postgres
from test_storage_contract import LEASE, at, job
from test_storage_contract_sharing import instance, slot

from jobify_trio._cli._db import postgres_url, storage_for
from jobify_trio._cli._jobs import jobs_main
from jobify_trio.storage import SQLiteStorage, Trigger


@pytest.fixture
async def pg() -> AsyncIterator[PostgresBackend]:
    require_postgres()
    backend = PostgresBackend()
    try:
        yield backend
    finally:
        await backend.close()


def _jobs(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    code = jobs_main(argv, out=out)
    return code, out.getvalue()


async def test_jobs_lists_rows_leases_instances_and_claims(pg: PostgresBackend) -> None:
    store = await pg.open()
    await store.register_instance(instance("host-1-ab", 5))
    await store.add(job("one", at=3, owner="host-1-ab", until=40), job("two", at=9))
    await store.add(job("tick", at=1, trigger=Trigger.CRON))
    await store.claim_cron_slots([slot("tick", 1, owner="host-1-ab")], now=at(1), lease=LEASE)
    base = ["--db", PG_URL, "--schema", pg.schema]
    code, listing = await trio.to_thread.run_sync(_jobs, base)
    assert code == 0
    lines = listing.splitlines()
    assert lines[0].split()[-4:] == ["ATTEMPT", "OWNER", "LEASE", "UNTIL"]
    assert lines[1].split()[0] == "tick"
    assert "one" in lines[2]
    assert "host-1-ab" in lines[2]
    assert "2026-01-01T00:00:40" in lines[2]
    assert lines[-1] == "3 stored job(s)"
    code, listing = await trio.to_thread.run_sync(_jobs, [*base, "instances"])
    assert code == 0
    assert "host-1-ab" in listing
    assert listing.rstrip().endswith("1 instance(s)")
    code, listing = await trio.to_thread.run_sync(_jobs, [*base, "claims"])
    assert code == 0
    assert "tick" in listing.splitlines()[1]
    assert listing.rstrip().endswith("1 slot claim(s)")


async def test_jobs_takes_the_url_from_the_environment_and_never_creates_tables(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    require_postgres()
    monkeypatch.setenv("JOBIFY_DB", PG_URL)
    code, _ = await trio.to_thread.run_sync(_jobs, ["--schema", "jobify_no_such_schema_x"])
    assert code == 2
    assert "has no job tables" in capsys.readouterr().err
    schemas = pg_execute(
        "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s",
        ("jobify_no_such_schema_x",),
    )
    assert schemas == []


async def test_jobs_runs_in_a_read_only_transaction(
    pg: PostgresBackend, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from jobify_trio._cli import _jobs_pg

    store = await pg.open()
    await store.add(job("kept"))
    writing = (  # what a bug in a query could do: the session must refuse it
        "WITH gone AS (DELETE FROM {jobs} RETURNING 1) SELECT job_id, task, trigger, "
        "next_run_at, state, attempt, lease_owner, lease_expires_at FROM {jobs}"
    )
    monkeypatch.setitem(_jobs_pg._QUERIES, "list", writing)
    code, _ = await trio.to_thread.run_sync(_jobs, ["--db", PG_URL, "--schema", pg.schema])
    assert code == 2
    assert "read-only transaction" in capsys.readouterr().err
    assert [j.job_id for j in (await store.load()).jobs] == ["kept"]


def test_db_values_choose_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    from jobify_trio.storage import PostgresStorage

    monkeypatch.delenv("JOBIFY_DB", raising=False)
    assert postgres_url(["--db", "jobify.db"]) is None
    assert postgres_url(["--db=postgresql://u@h/d"]) == "postgresql://u@h/d"
    monkeypatch.setenv("JOBIFY_DB", "postgres://u@h/d")
    assert postgres_url(["list"]) == "postgres://u@h/d"
    assert isinstance(storage_for("postgresql://u@h/d"), PostgresStorage)
    assert isinstance(storage_for("x.db"), SQLiteStorage)
    sqlite = storage_for("x.db", shared=True)
    assert isinstance(sqlite, SQLiteStorage)
    assert sqlite.shared
    assert not SQLiteStorage("x.db").shared
    pg = storage_for("postgresql://u@h/d", schema="jobs")
    assert isinstance(pg, PostgresStorage)
    assert pg.schema == "jobs"
