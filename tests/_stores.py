"""Backends for the storage contract suite: each opens several connections to one store.

A :class:`Backend` is one empty store (a SQLite file in a temp dir, a fresh PostgreSQL
schema with a unique name, dropped afterwards, or one :class:`MemoryStorage` object: the
reference the runtime's deterministic tests use, so it must agree with the real stores).
``await backend.open()`` returns a new, started connection to it (a second ``open()`` is
a second connection, as a second app instance would have). Adding a backend = one more
class and one more name in ``KINDS``.

PostgreSQL tests need a server at ``$JOBIFY_TEST_PG`` (default
``postgresql://postgres@127.0.0.1:5432/test``). Without one they skip, with a one-line
reason, unless ``CI=true``: then they fail.
"""

from __future__ import annotations

import abc
import os
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

from jobify_trio.storage import SQLiteStorage, Storage

PG_URL = os.environ.get("JOBIFY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
KINDS = ("sqlite", "postgres", "memory")


def require_postgres() -> None:
    """Skip (outside CI) or fail (in CI) unless a PostgreSQL server answers at PG_URL."""
    reason = _postgres_missing()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but PostgreSQL is not usable: {reason}")
    pytest.skip(f"no PostgreSQL server: {reason}")


def _postgres_missing() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[postgres]')"
    try:
        psycopg.connect(PG_URL, connect_timeout=2).close()
    except psycopg.Error as exc:
        return f"{PG_URL}: {str(exc).strip().splitlines()[0]}"
    return None


def pg_execute(sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Run one statement on a separate autocommit connection; its rows (if any)."""
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


class Backend(abc.ABC):
    """One empty store; :meth:`open` returns another started connection to it."""

    kind = ""

    def __init__(self) -> None:
        self.opened: list[Storage] = []

    @abc.abstractmethod
    def new(self) -> Storage:
        """A new (not yet started) connection to the store."""

    async def open(self) -> Storage:
        storage = self.new()
        await storage.startup()
        self.opened.append(storage)
        return storage

    async def close(self) -> None:
        for storage in self.opened:
            await storage.shutdown()

    @abc.abstractmethod
    def set_schema_version(self, version: str) -> None:
        """Overwrite the stored schema version (behind the stores' backs)."""


class SQLiteBackend(Backend):
    kind = "sqlite"

    def __init__(self, tmp_path: Path) -> None:
        super().__init__()
        self.path = tmp_path / "contract.db"

    def new(self) -> Storage:
        return SQLiteStorage(self.path, shared=True)

    def set_schema_version(self, version: str) -> None:
        with sqlite3.connect(self.path) as conn:
            conn.execute(
                "UPDATE jobify_jobs_meta SET value = ? WHERE key = 'schema_version'", (version,)
            )
        conn.close()


class PostgresBackend(Backend):
    kind = "postgres"

    def __init__(self) -> None:
        super().__init__()
        self.schema = f"jobify_test_{uuid.uuid4().hex[:12]}"
        self.app_name = self.schema  # lets fault tests terminate this store's connections only

    def conninfo(self) -> str:
        return f"{PG_URL}?application_name={self.app_name}"

    def new(self) -> Storage:
        from jobify_trio.storage import PostgresStorage

        return PostgresStorage(self.conninfo(), schema=self.schema, connect_timeout=2)

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            pg_execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    def set_schema_version(self, version: str) -> None:
        pg_execute(
            f'UPDATE "{self.schema}".jobify_meta SET value = %s WHERE key = %s',
            (version, "schema_version"),
        )

    def terminate(self) -> int:
        """``pg_terminate_backend`` every connection of this store; how many there were."""
        rows = pg_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (self.app_name,),
        )
        return len(rows)


class MemoryBackend(Backend):
    """Every "connection" is the same :class:`MemoryStorage` object (one process)."""

    kind = "memory"

    def __init__(self) -> None:
        super().__init__()
        from jobify_trio.testing import MemoryStorage

        self.store = MemoryStorage()

    def new(self) -> Storage:
        return self.store

    def set_schema_version(self, version: str) -> None:
        pytest.skip("MemoryStorage has no schema version")


def make_backend(kind: str, tmp_path: Path) -> Backend:
    if kind == "memory":
        return MemoryBackend()
    if kind == "postgres":
        require_postgres()
        return PostgresBackend()
    return SQLiteBackend(tmp_path)
