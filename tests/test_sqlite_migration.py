"""A version 1 SQLite job file (as jobify_trio wrote it before the sharing protocol) is
migrated in place to the current version (3) when opened, keeping every row. (The
migration from version 2, with data, is tested in test_sqlite_migration_v2.py.)"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from jobify_trio.storage import SCHEMA_VERSION, SQLiteStorage, StoredJob, Trigger

# The exact layout version 1 created (jobify_trio/_storage/_sqlite.py before schema v2).
V1_SCHEMA = """
CREATE TABLE jobify_jobs_meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS jobify_jobs (
    job_id TEXT PRIMARY KEY NOT NULL,
    task TEXT NOT NULL,
    trigger TEXT NOT NULL,
    next_run_at TEXT NOT NULL,
    arguments BLOB NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 1,
    state TEXT NOT NULL DEFAULT 'scheduled',
    cron TEXT,
    lease_owner TEXT,
    lease_expires_at TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS jobify_jobs_next_run_at ON jobify_jobs (next_run_at);
INSERT INTO jobify_jobs_meta (key, value) VALUES ('schema_version', '1');
INSERT INTO jobify_jobs VALUES ('one', 'send', 'at', '2026-01-01T00:00:05.000000+00:00',
    X'7B7D', 2, 'retrying', NULL, NULL, NULL);
INSERT INTO jobify_jobs VALUES ('tick', 'tick', 'cron', '2026-01-01T00:01:00.000000+00:00',
    X'7B7D', 1, 'scheduled', '{"expr":"* * * * *"}', 'old', '2026-01-01T00:00:30.000000+00:00');
"""


def make_v1_file(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(V1_SCHEMA)
    conn.commit()
    conn.close()


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    conn.close()
    return {row[0] for row in rows}


async def test_a_version_1_file_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    make_v1_file(path)
    assert SCHEMA_VERSION == 3
    storage = SQLiteStorage(path)
    await storage.startup()
    try:
        loaded = await storage.load()
        one = await storage.get_job("one")
        assert await storage.instances() == []  # the new tables exist
    finally:
        await storage.shutdown()
    assert loaded.corrupt == []
    assert [job.job_id for job in loaded.jobs] == ["one", "tick"]
    assert one == StoredJob(
        job_id="one",
        task_name="send",
        trigger=Trigger.AT,
        next_run_at=datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC),
        arguments=b"{}",
        attempt=2,
        state="retrying",
    )
    tick = loaded.jobs[1]
    assert (tick.lease_owner, tick.lease_expires_at, tick.origin) == (
        "old",
        datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC),
        None,
    )
    assert {
        "jobify_jobs_instances",
        "jobify_jobs_claims",
        "jobify_jobs_results",
        "jobify_jobs_commands",
        "jobify_jobs_runs",
    } <= tables(path)
    with sqlite3.connect(path) as conn:
        version = conn.execute(
            "SELECT value FROM jobify_jobs_meta WHERE key = 'schema_version'"
        ).fetchall()
    conn.close()
    assert version == [("3",)]
    reopened = SQLiteStorage(path)  # a second open finds version 3 and changes nothing
    await reopened.startup()
    try:
        assert [job.job_id for job in (await reopened.load()).jobs] == ["one", "tick"]
    finally:
        await reopened.shutdown()


def test_the_jobs_cli_reads_a_version_1_file_without_migrating_it(tmp_path: Path) -> None:
    import io

    from jobify_trio._cli._jobs import jobs_main

    path = tmp_path / "v1.db"
    make_v1_file(path)
    before = path.read_bytes()
    out = io.StringIO()
    assert jobs_main(["--db", str(path), "list"], out=out) == 0
    listing = out.getvalue()
    assert "one" in listing
    assert listing.rstrip().endswith("2 stored job(s)")
    assert "jobify_jobs_instances" not in tables(path)
    assert path.read_bytes() == before
