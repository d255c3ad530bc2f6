"""A libpq connection driven non-blocking on the trio thread: the store's write path.

psycopg's asyncio API does not run under trio, but its low-level libpq wrapper
(:class:`psycopg.pq.PGconn`) does: in non-blocking mode the trio thread sends a statement
(``send_query_prepared``), flushes it, and waits for the socket with
``trio.lowlevel.wait_readable`` while other tasks run. A write then costs no thread hop
(about 185 us each way through a worker thread) and the event loop stays responsive
however long the server takes (a lock held elsewhere, ``statement_timeout``).

:class:`NativeConnection` serves :meth:`PostgresStorage.apply
<jobify_trio.storage.PostgresStorage.apply>` only; every other call keeps the store's
thread and its synchronous connection (:mod:`._postgres_thread`). Connecting stays on a
thread (``trio.to_thread``). Each statement shape is prepared once per connection (keyed
by its SQL and the types of its parameters, as psycopg does) and its parameters are dumped
by psycopg's :class:`~psycopg.adapt.Transformer`. Calls are serialized by a lock.

Faults: a psycopg error becomes :class:`~jobify_trio.storage.StorageError` (naming host,
database and a hint, as :mod:`._postgres_conn` does). A lost connection fails the call
that found it; the next call reconnects. A call cancelled (or interrupted) while its
statement is in flight sends the server a cancel request, from a short-lived thread, and
closes the connection: whether that statement committed is unknown to the caller, as for
any interrupted commit, but the connection is never reused in an unknown state.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

import psycopg
import trio
from psycopg import pq
from psycopg.abc import Transformer
from psycopg.adapt import PyFormat
from psycopg.adapt import Transformer as make_transformer
from psycopg.errors import error_from_result

from ..storage import StorageError
from ._locks import QuickLock
from ._postgres_conn import explain

__all__ = ["NativeConnection"]

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
#: Arrays are dumped in binary (about 8x cheaper than psycopg's text arrays: no quoting).
_BINARY, _AUTO = PyFormat.BINARY, PyFormat.AUTO
#: Statement shapes prepared per connection at most (a batch compiles to a few shapes).
_MAX_PREPARED = 64


class _Shape:
    """A ``%(name)s`` statement rewritten with ``$n`` placeholders."""

    __slots__ = ("names", "query")

    def __init__(self, sql: str) -> None:
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        self.query = _PLACEHOLDER.sub(number, sql).encode()
        self.names = tuple(names)


class NativeConnection:
    """One autocommit connection whose statements run on the trio thread."""

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]], where: str) -> None:
        self._connect = connect
        self.where = where
        self._conn: psycopg.Connection[Any] | None = None
        self._tx: Transformer | None = None
        self._prepared: dict[tuple[str, tuple[int, ...]], bytes] = {}
        self._shapes: dict[str, _Shape] = {}
        self._lock = QuickLock()
        self.statements = 0  # statements run (for tests)

    async def execute(self, action: str, sql: str, params: Mapping[str, Any]) -> None:
        """Run one statement (its own transaction); StorageError if it fails.

        Always a schedule point, and only while the statement is in flight: a free lock is
        taken without yielding (``_locks.QuickLock``), so the tasks that are ready run
        during the round trip, not before the statement is sent."""
        lock = self._lock
        await lock.acquire()
        try:
            conn = self._conn if self._conn is not None else await self._open()
            await self._execute(conn, sql, params)
        except psycopg.Error as exc:
            self._drop_if_broken()
            raise StorageError(explain(self.where, action, exc)) from exc
        except BaseException:  # Cancelled, KeyboardInterrupt, a value that cannot be dumped
            self._abandon()
            raise
        finally:
            lock.release()

    def _connect_for_writes(self) -> psycopg.Connection[Any]:
        conn = self._connect()
        try:
            # Every statement here addresses rows by job_id. The planner's statistics of a
            # queue table are often stale (it was small when last analyzed), and a generic
            # plan of "job_id = ANY($1)" then scans the whole table, dead rows included:
            # measured 0.5-1 ms per push in a loop after a burst, against ~0.05 ms indexed.
            conn.execute("SET enable_seqscan = off")
        except BaseException:
            conn.close()
            raise
        return conn

    async def _open(self) -> psycopg.Connection[Any]:
        conn = await trio.to_thread.run_sync(self._connect_for_writes, abandon_on_cancel=False)
        conn.pgconn.nonblocking = 1
        self._conn, self._tx = conn, make_transformer(conn)
        self._prepared.clear()
        return conn

    async def _execute(
        self, conn: psycopg.Connection[Any], sql: str, params: Mapping[str, Any]
    ) -> None:
        shape = self._shapes.get(sql)
        if shape is None:
            if len(self._shapes) >= _MAX_PREPARED:
                self._shapes.clear()
            shape = self._shapes[sql] = _Shape(sql)
        tx = self._tx
        assert tx is not None
        args = [params[name] for name in shape.names]
        values = tx.dump_sequence(args, [_BINARY if type(a) is list else _AUTO for a in args])
        types, formats = tx.types or (), tx.formats
        key = (sql, types)
        pgconn = conn.pgconn
        name = self._prepared.get(key)
        if name is None and len(self._prepared) < _MAX_PREPARED:
            name = f"jobify_{len(self._prepared)}".encode()
            pgconn.send_prepare(name, shape.query, param_types=types)
            await self._result(pgconn)
            self._prepared[key] = name
        if name is None:
            pgconn.send_query_params(shape.query, values, param_types=types, param_formats=formats)
        else:
            pgconn.send_query_prepared(name, values, param_formats=formats)
        self.statements += 1
        await self._result(pgconn)

    async def _result(self, pgconn: pq.abc.PGconn) -> None:
        """Flush what was sent and read every result; raise the first error.

        The answer takes a round trip at least, so the socket is waited for before it is
        first read (no read that can only find it empty); that wait is the call's
        schedule point."""
        fd = pgconn.socket
        while pgconn.flush():
            await trio.lowlevel.wait_writable(fd)
        error: psycopg.Error | None = None
        while True:
            await trio.lowlevel.wait_readable(fd)
            pgconn.consume_input()
            while not pgconn.is_busy():
                result = pgconn.get_result()
                if result is None:
                    if error is not None:
                        raise error
                    return
                if error is None and result.status == pq.ExecStatus.FATAL_ERROR:
                    error = error_from_result(result, encoding=self._encoding(pgconn))

    @staticmethod
    def _encoding(pgconn: pq.abc.PGconn) -> str:
        return "utf-8" if pgconn.parameter_status(b"client_encoding") == b"UTF8" else "ascii"

    def _drop_if_broken(self) -> None:
        conn = self._conn
        if conn is not None and conn.pgconn.status != pq.ConnStatus.OK:
            self._close()

    def _abandon(self) -> None:
        """After an interruption: if a statement is in flight, ask the server to cancel it
        (from a short-lived thread: the request needs a new connection) and close this one,
        whose state is then unknown; an idle connection is kept."""
        conn = self._conn
        if conn is None:
            return
        pgconn = conn.pgconn
        if pgconn.status == pq.ConnStatus.OK:
            if pgconn.transaction_status == pq.TransactionStatus.IDLE:
                return  # nothing was sent (a value that could not be dumped)
            with contextlib.suppress(psycopg.Error):
                cancel = pgconn.get_cancel()
                threading.Thread(target=_cancel, args=(cancel,), daemon=True).start()
        self._close()

    def _close(self) -> None:
        conn, self._conn, self._tx = self._conn, None, None
        self._prepared.clear()
        if conn is not None:
            conn.close()

    async def aclose(self) -> None:
        """Close the connection (waiting for a statement in flight first)."""
        with trio.CancelScope(shield=True):
            async with self._lock:
                self._close()


def _cancel(cancel: pq.abc.PGcancel) -> None:
    with contextlib.suppress(psycopg.Error):  # the server is gone: nothing to cancel
        cancel.cancel()
