"""Schema version 2 (SQLite) and version 1 (PostgreSQL), with data, are migrated in place
when opened: every row is kept, one-off rows come back not paused, and the new run
history works at once (issue 12)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trio
from _helpers import START
from _stores import PostgresBackend, pg_execute, require_postgres
from test_sqlite_migration import V1_SCHEMA, tables

from jobify_trio import Jobify, RunHistory
from jobify_trio.storage import SQLiteStorage, Storage, StoredJob, Trigger
from jobify_trio.testing import VirtualWallClock

EMPTY = b'{"v":1,"args":[],"kwargs":{}}'  # the encoded arguments of a call with none

# What version 2 added to version 1 (jobify_trio/_storage/_sqlite_schema.py before v3).
V2_ADDITIONS = """
ALTER TABLE jobify_jobs ADD COLUMN origin TEXT;
CREATE INDEX IF NOT EXISTS jobify_jobs_lease_owner ON jobify_jobs (lease_owner);
CREATE TABLE jobify_jobs_instances (instance_id TEXT PRIMARY KEY NOT NULL, host TEXT NOT NULL,
    pid INTEGER NOT NULL, started_at TEXT NOT NULL, heartbeat_at TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE jobify_jobs_claims (job_id TEXT NOT NULL, slot TEXT NOT NULL, owner TEXT NOT NULL,
    claimed_at TEXT NOT NULL, PRIMARY KEY (job_id, slot)) WITHOUT ROWID;
CREATE TABLE jobify_jobs_results (job_id TEXT PRIMARY KEY NOT NULL, origin TEXT,
    status TEXT NOT NULL, value BLOB, error TEXT, finished_at TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE jobify_jobs_commands (command_id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL, job_id TEXT NOT NULL, kind TEXT NOT NULL, payload BLOB NOT NULL,
    created_at TEXT NOT NULL);
UPDATE jobify_jobs_meta SET value = '2' WHERE key = 'schema_version';
UPDATE jobify_jobs SET origin = 'A', arguments = X'{empty}' WHERE job_id = 'one';
DELETE FROM jobify_jobs WHERE job_id = 'tick';
INSERT INTO jobify_jobs VALUES ('later', 'send', 'at', '2026-01-01T00:10:00.000000+00:00',
    X'{empty}', 1, 'scheduled', NULL, NULL, NULL, NULL);
""".replace("{empty}", EMPTY.hex())


def make_v2_file(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(V1_SCHEMA + V2_ADDITIONS)
    conn.commit()
    conn.close()


async def test_a_version_2_file_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    make_v2_file(path)
    storage = SQLiteStorage(path)
    await storage.startup()
    try:
        rows = {job.job_id: job for job in (await storage.load()).jobs}
        assert await storage.load_runs(since=START, per_job=5) == []  # the new table
    finally:
        await storage.shutdown()
    assert rows["one"] == StoredJob(
        job_id="one",
        task_name="send",
        trigger=Trigger.AT,
        next_run_at=datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC),
        arguments=EMPTY,
        attempt=2,
        state="retrying",
        origin="A",
    )
    assert not rows["later"].paused
    assert "jobify_jobs_runs" in tables(path)
    with sqlite3.connect(path) as conn:
        version = conn.execute(
            "SELECT value FROM jobify_jobs_meta WHERE key = 'schema_version'"
        ).fetchall()
    conn.close()
    assert version == [("3",)]


def _app(storage: Storage, clock: VirtualWallClock, sent: list[str]) -> Jobify:
    app = Jobify(storage=storage, wall_clock=clock)

    @app.task(name="send")
    async def send(arg: str = "") -> None:
        sent.append(arg)

    return app


async def test_an_app_runs_on_a_migrated_version_2_file(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    autojump_clock.autojump_threshold = 0.02  # SQLite commits run in a thread
    path, sent, clock = tmp_path / "v2.db", [], VirtualWallClock(START)
    make_v2_file(path)
    app = _app(SQLiteStorage(path), clock, sent)
    history = RunHistory(app)
    async with app:
        later = app.find_job("later")
        assert later is not None
        assert not later.paused
        await later.pause()
        one = app.find_job("one")
        assert one is not None
        await one.wait()
    assert sent == [""]
    app = _app(SQLiteStorage(path), clock, sent)
    history = RunHistory(app)
    async with app:
        later = app.find_job("later")
        assert later is not None
        assert later.paused  # stored in the new column
        assert [(r.job_id, r.attempt) for r in history.runs("one")] == [("one", 2)]


async def test_a_version_1_postgres_schema_is_migrated_and_keeps_its_rows() -> None:
    require_postgres()
    pg = PostgresBackend()
    try:
        store = await pg.open()
        await store.add(
            StoredJob(job_id="j", task_name="t", trigger=Trigger.AT,
                      next_run_at=START + timedelta(minutes=1), arguments=b"{}"),
        )  # fmt: skip
        await store.shutdown()
        pg.opened.remove(store)
        schema = f'"{pg.schema}"'
        pg_execute(f"ALTER TABLE {schema}.jobify_jobs DROP COLUMN paused")  # back to v1
        pg_execute(f"DROP TABLE {schema}.jobify_runs")
        pg.set_schema_version("1")
        store = await pg.open()
        rows = (await store.load()).jobs
        assert [(row.job_id, row.paused) for row in rows] == [("j", False)]
        assert await store.load_runs(since=START, per_job=5) == []
        version = pg_execute(f"SELECT value FROM {schema}.jobify_meta")
        assert version == [("2",)]
    finally:
        await pg.close()
