"""What every PostgreSQL benchmark side shares: the server, and a schema of its own.

Standard library only at import time (psycopg is imported by the callers), so that any
benchmark interpreter can import it. The server is the one of issue 9: 127.0.0.1:5432,
user ``postgres``, database ``test`` (override with ``BENCH_PG_CONNINFO``). Each side
works in its own schema, created fresh and dropped afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from _common import Skipped

CONNINFO = os.environ.get("BENCH_PG_CONNINFO", "postgresql://postgres@127.0.0.1:5432/test")


def connect(psycopg: Any, **kwargs: Any) -> Any:
    """A psycopg connection to the benchmark server, or :class:`Skipped` saying why not."""
    try:
        return psycopg.connect(CONNINFO, connect_timeout=5, **kwargs)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise Skipped(f"PostgreSQL not reachable at {CONNINFO}: {first}") from exc


@contextmanager
def fresh_schema(psycopg: Any, name: str) -> Iterator[str]:
    """Create schema ``name`` (dropping any leftover), yield it, drop it afterwards."""
    with connect(psycopg, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield name
    finally:
        with connect(psycopg, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def server_settings(conn: Any) -> dict[str, str]:
    """The server settings that decide a commit's cost."""
    names = ("server_version", "fsync", "synchronous_commit")
    return {f"pg_{n}": str(conn.execute(f"SHOW {n}").fetchone()[0]) for n in names}
