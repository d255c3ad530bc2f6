"""One synchronous psycopg connection that reconnects, and PostgreSQL error translation.

:class:`PGConnection` is used by one thread at a time (its dedicated thread, see
:mod:`jobify_trio._storage._postgres_thread`). Every psycopg error becomes a
:class:`~jobify_trio.storage.StorageError` here, naming host, port, database and a hint.
A lost connection (server restart, ``pg_terminate_backend``, network) fails the call that
found it, promptly; the next call opens a new connection. Timeouts keep every call
bounded: ``connect_timeout`` for connecting, ``statement_timeout`` and ``lock_timeout``
for statements, TCP keepalives and ``tcp_user_timeout`` for a peer that went silent.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import psycopg
from psycopg.conninfo import conninfo_to_dict

from ..storage import StorageError

__all__ = ["PGConnection", "PGTimeouts", "describe", "explain"]

T = TypeVar("T")


@attrs.frozen(kw_only=True)
class PGTimeouts:
    """Bounds of every call (seconds)."""

    connect: float = 5.0
    statement: float = 30.0
    lock: float = 10.0


def describe(conninfo: str) -> str:
    """``host:port/database`` of a conninfo string or URL (defaults as libpq's)."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error:
        return "<unparsable conninfo>"
    host = str(params.get("host") or os.environ.get("PGHOST") or "local socket")
    port = str(params.get("port") or os.environ.get("PGPORT") or "5432")
    user = str(params.get("user") or os.environ.get("PGUSER") or "")
    dbname = str(params.get("dbname") or os.environ.get("PGDATABASE") or user or "?")
    return f"{host}:{port}/{dbname}"


def _hint(exc: BaseException) -> str:
    text = str(exc).lower()
    state = getattr(exc, "sqlstate", None)
    if state == "3D000" or ("database" in text and "does not exist" in text):
        return "the database is missing: create it (createdb) or fix the conninfo"
    if state in ("28P01", "28000") or "authentication" in text or "role" in text:
        return "authentication refused: check user, password and pg_hba.conf"
    if "refused" in text or "timeout expired" in text or "could not connect" in text:
        return "is the server running and accepting TCP/IP connections there?"
    if state == "57014":
        return "the statement timed out (statement_timeout): the server is overloaded or stuck"
    if state == "55P03":
        return "a row lock was not granted in time (lock_timeout)"
    if state in ("57P01", "57P02", "57P03") or "closed" in text or "terminat" in text:
        return "the connection was lost (server restart, terminated backend); next call reconnects"
    if state == "42501":
        return "permission denied: the user may not create or use these tables"
    return "see the PostgreSQL server log"


def explain(where: str, action: str, exc: BaseException) -> str:
    """The message of the StorageError raised for ``exc``."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"PostgreSQL job store {where}: cannot {action}: {first} ({_hint(exc)})"


class PGConnection:
    """A psycopg connection that is (re)opened on demand by the call that needs it."""

    def __init__(
        self,
        conninfo: str,
        *,
        timeouts: PGTimeouts,
        setup: Callable[[psycopg.Connection[Any]], None],
    ) -> None:
        self.conninfo = conninfo
        self.where = describe(conninfo)
        self.timeouts = timeouts
        self._setup = setup
        self._conn: psycopg.Connection[Any] | None = None
        given = conninfo_to_dict(conninfo)
        self._defaults: dict[str, Any] = (
            {} if "application_name" in given else {"application_name": "jobify_trio"}
        )

    def connect_plain(self) -> psycopg.Connection[Any]:
        """A new autocommit connection with the store's timeouts (tables not checked)."""
        options = (
            f"-c statement_timeout={int(self.timeouts.statement * 1000)} "
            f"-c lock_timeout={int(self.timeouts.lock * 1000)} -c TimeZone=UTC"
        )
        return psycopg.connect(
            self.conninfo,
            autocommit=True,
            connect_timeout=max(1, round(self.timeouts.connect)),
            options=options,
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
            tcp_user_timeout=int((self.timeouts.statement + 5) * 1000),
            **self._defaults,
        )

    def _connect(self) -> psycopg.Connection[Any]:
        conn = self.connect_plain()
        try:
            self._setup(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def run(self, action: str, fn: Callable[[psycopg.Connection[Any]], T]) -> T:
        """``fn(connection)``, connecting first if needed; errors become StorageError."""
        try:
            conn = self._conn
            if conn is None or conn.closed:
                conn = self._conn = self._connect()
            return fn(conn)
        except psycopg.Error as exc:
            self._drop_if_broken()
            raise StorageError(explain(self.where, action, exc)) from exc
        except StorageError:
            self._drop_if_broken()
            raise

    def _drop_if_broken(self) -> None:
        conn = self._conn
        if conn is not None and (conn.closed or conn.broken):
            self._conn = None
            conn.close()

    def close(self) -> None:
        """Close the connection (if open)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
