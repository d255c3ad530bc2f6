"""The SQLite file layout that keeps a one-row commit small (issue 11).

A new file has 2 KB pages (an older file keeps its own). The index on ``lease_owner`` is
partial (``WHERE lease_owner IS NOT NULL``): an unshared store sets no lease, so its rows
cost that index nothing (one WAL page fewer per commit). A file made with the full index
gets the partial one when opened, and the sharing protocol's queries still use it."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import trio
from test_sqlite_migration_v2 import make_v2_file

from jobify_trio._storage._sqlite import PAGE_SIZE
from jobify_trio.storage import SQLiteStorage, StoredJob, Trigger

INDEX = "jobify_jobs_lease_owner"


def index_sql(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (INDEX,)).fetchone()
    conn.close()
    assert row is not None
    return str(row[0])


async def open_and_close(path: Path) -> None:
    storage = SQLiteStorage(path)
    await storage.startup()
    await storage.shutdown()


async def test_a_new_file_has_a_partial_lease_index(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    await open_and_close(path)
    assert index_sql(path).endswith("WHERE lease_owner IS NOT NULL")


async def test_a_full_lease_index_is_made_partial_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    await open_and_close(path)
    with sqlite3.connect(path) as conn:  # as version 3 files were made before
        conn.execute(f"DROP INDEX {INDEX}")
        conn.execute(f"CREATE INDEX {INDEX} ON jobify_jobs (lease_owner)")
    conn.close()
    await open_and_close(path)
    assert index_sql(path).endswith("WHERE lease_owner IS NOT NULL")
    await open_and_close(path)  # already partial: left as it is
    assert index_sql(path).endswith("WHERE lease_owner IS NOT NULL")


async def test_a_migrated_version_2_file_gets_the_partial_index(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    make_v2_file(path)
    await open_and_close(path)
    assert index_sql(path).endswith("WHERE lease_owner IS NOT NULL")


def test_the_sharing_queries_use_the_partial_index(tmp_path: Path) -> None:
    path = tmp_path / "plan.db"
    trio.run(open_and_close, path)
    queries = (
        "SELECT job_id FROM jobify_jobs WHERE lease_owner = ?",
        "UPDATE jobify_jobs SET lease_expires_at = ? WHERE lease_owner = ?",
        "SELECT min(lease_expires_at) FROM jobify_jobs WHERE lease_owner IS NOT NULL "
        "AND lease_owner != ? AND lease_expires_at > ?",
    )
    with sqlite3.connect(path) as conn:
        for query in queries:
            params = ("x",) * query.count("?")
            plan = conn.execute(f"EXPLAIN QUERY PLAN {query}", params).fetchall()
            assert any(INDEX in str(step) for step in plan), (query, plan)
    conn.close()


def page_size(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        row = conn.execute("PRAGMA page_size").fetchone()
    conn.close()
    return int(row[0])


async def test_a_new_file_has_2_kb_pages_and_an_older_file_keeps_its_own(
    tmp_path: Path,
) -> None:
    new = tmp_path / "new.db"
    await open_and_close(new)
    assert page_size(new) == PAGE_SIZE == 2048
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as conn:  # made with SQLite's default page size
        conn.execute("PRAGMA page_size=4096")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE other (x)")
    conn.close()
    storage = SQLiteStorage(old)
    await storage.startup()
    try:
        await storage.add(StoredJob(job_id="a", task_name="t", trigger=Trigger.AT,
                                    next_run_at=datetime(2026, 1, 1, tzinfo=UTC),
                                    arguments=b"x" * 3000))  # fmt: skip
        assert [job.job_id for job in (await storage.load()).jobs] == ["a"]
    finally:
        await storage.shutdown()
    assert page_size(old) == 4096
