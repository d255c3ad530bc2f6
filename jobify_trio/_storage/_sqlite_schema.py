"""The SQLite table layout (schema version 3) and the migrations from versions 1 and 2.

Version 1 held one job table (``<table>``) and ``<table>_meta``. Version 2 adds the
``origin`` column and the tables of the sharing protocol: ``<table>_instances``,
``<table>_claims`` (cron slot claims), ``<table>_results`` and ``<table>_commands``.
Version 3 adds the ``paused`` column (a paused one-off job) and the run history,
``<table>_runs``. A version 1 or 2 file is migrated in place, in one ``BEGIN IMMEDIATE``
transaction, when a version 3 store opens it.

The index on ``lease_owner`` is partial (``WHERE lease_owner IS NOT NULL``): an unshared
store never sets a lease, and a full index would cost every insert and delete one more
B-tree page written to the WAL (about a quarter of a one-row commit) for nothing. Every
query on it (``lease_owner = ?``, ``lease_owner IS NOT NULL``) can use the partial index.
A file made before (a full index) gets the partial one when opened (:func:`_lease_index`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Final

from ..storage import SCHEMA_VERSION
from ._sqlite_checks import version_error

__all__ = ["create_or_migrate"]

_V1_JOBS: Final = """
CREATE TABLE IF NOT EXISTS {t} (
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
CREATE INDEX IF NOT EXISTS {t}_next_run_at ON {t} (next_run_at)
"""

_V2_ADDITIONS: Final = """
ALTER TABLE {t} ADD COLUMN origin TEXT;
CREATE INDEX IF NOT EXISTS {t}_lease_owner ON {t} (lease_owner) WHERE lease_owner IS NOT NULL;
CREATE TABLE IF NOT EXISTS {t}_instances (
    instance_id TEXT PRIMARY KEY NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS {t}_claims (
    job_id TEXT NOT NULL,
    slot TEXT NOT NULL,
    owner TEXT NOT NULL,
    claimed_at TEXT NOT NULL,
    PRIMARY KEY (job_id, slot)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS {t}_claims_claimed_at ON {t}_claims (claimed_at);
CREATE TABLE IF NOT EXISTS {t}_results (
    job_id TEXT PRIMARY KEY NOT NULL,
    origin TEXT,
    status TEXT NOT NULL,
    value BLOB,
    error TEXT,
    finished_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS {t}_commands (
    command_id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    job_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS {t}_commands_target ON {t}_commands (target)
"""

_V3_ADDITIONS: Final = """
ALTER TABLE {t} ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
CREATE TABLE IF NOT EXISTS {t}_runs (
    run_id INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL,
    task TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT,
    ended_at TEXT NOT NULL,
    error TEXT,
    retried INTEGER NOT NULL DEFAULT 0,
    instance TEXT
);
CREATE INDEX IF NOT EXISTS {t}_runs_job ON {t}_runs (job_id, run_id)
"""


def _run(conn: sqlite3.Connection, script: str, table: str) -> None:
    for statement in script.format(t=table).split(";"):
        if statement.strip():
            conn.execute(statement)


def create_or_migrate(conn: sqlite3.Connection, path: Path, table: str) -> None:
    """Create the version 3 tables, migrate a version 1 or 2 layout, or refuse another.

    Runs inside the caller's ``BEGIN IMMEDIATE`` transaction.
    """
    meta = f"{table}_meta"
    conn.execute(f"CREATE TABLE IF NOT EXISTS {meta} (key TEXT PRIMARY KEY, value TEXT)")
    row = conn.execute(f"SELECT value FROM {meta} WHERE key='schema_version'").fetchone()
    if row is not None and row[0] == str(SCHEMA_VERSION):
        _lease_index(conn, table)
        return
    if row is None:
        _run(conn, _V1_JOBS, table)
        conn.execute(
            f"INSERT INTO {meta} (key, value) VALUES ('schema_version', '1')",
        )
    elif row[0] not in ("1", "2"):
        raise version_error(path, table, row[0])
    if row is None or row[0] == "1":
        _run(conn, _V2_ADDITIONS, table)
    _run(conn, _V3_ADDITIONS, table)
    conn.execute(
        f"UPDATE {meta} SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
    )
    _lease_index(conn, table)


def _lease_index(conn: sqlite3.Connection, table: str) -> None:
    """Make the index on ``lease_owner`` partial if it is not (module docs)."""
    found = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (f"{table}_lease_owner",)
    ).fetchone()
    if found is not None and "WHERE" in str(found[0]).upper():
        return
    conn.execute(f"DROP INDEX IF EXISTS {table}_lease_owner")
    conn.execute(
        f"CREATE INDEX {table}_lease_owner ON {table} (lease_owner) WHERE lease_owner IS NOT NULL"
    )
