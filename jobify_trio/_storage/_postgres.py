""":class:`PostgresStorage`: durable jobs, shared by several app instances, on PostgreSQL.

Needs the ``postgres`` extra (``pip install "jobify_trio[postgres]"``: psycopg 3). psycopg
is imported when the store starts, so ``jobify_trio.storage`` imports without it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from ..storage import CorruptRow, LoadResult, Storage, StorageError, StoredJob, StoredRun, Write
from ._shared import Heartbeat, InstanceInfo, SlotClaim, StoredResult

if TYPE_CHECKING:
    import psycopg

    from ._postgres_conn import PGConnection
    from ._postgres_native import NativeConnection
    from ._postgres_schema import Names
    from ._postgres_thread import ListenerThread, WorkerThread

__all__ = ["PostgresStorage"]

T = TypeVar("T")


def _check_conninfo(conninfo: str) -> None:
    try:
        from psycopg import Error
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:  # reported by startup()
        return
    try:
        conninfo_to_dict(conninfo)
    except Error as exc:
        raise ValueError(f"PostgresStorage: invalid conninfo {conninfo!r}: {exc}") from None


class PostgresStorage(Storage):
    """Jobs in PostgreSQL tables ``<schema>.<table_prefix>_*``; several instances may share them.

    ``conninfo`` is a libpq connection string or URL (``postgresql://user@host/db``).
    :meth:`apply` (every scheduling call's commit) runs on a write connection driven
    non-blocking on the trio thread (``_postgres_native``: no thread hop); every other
    call runs on a second connection owned by a dedicated thread; a third one, in its own
    thread, ``LISTEN``\\ s for changes once :meth:`wait_changed` is first called. Every
    call is bounded: ``connect_timeout``, ``statement_timeout`` and ``lock_timeout``
    (seconds). A lost connection fails the call that found it with :class:`StorageError`;
    the next call reconnects.
    """

    _commit_in_caller = True  # apply() runs on the trio thread (_postgres_native)

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str = "public",
        table_prefix: str = "jobify",
        connect_timeout: float = 5.0,
        statement_timeout: float = 30.0,
        lock_timeout: float = 10.0,
    ) -> None:
        from ._postgres_schema import Names

        if not isinstance(conninfo, str) or not conninfo:
            raise TypeError(f"PostgresStorage conninfo must be a non-empty str, got {conninfo!r}")
        for name, value in (
            ("connect_timeout", connect_timeout),
            ("statement_timeout", statement_timeout),
            ("lock_timeout", lock_timeout),
        ):
            if not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"PostgresStorage {name} must be > 0 seconds, got {value!r}")
        _check_conninfo(conninfo)
        self.conninfo = conninfo
        self.names: Names = Names(schema, table_prefix)
        self.schema = schema
        self.table_prefix = table_prefix
        self._timeouts = (float(connect_timeout), float(statement_timeout), float(lock_timeout))
        self._worker: WorkerThread | None = None
        self._pg: PGConnection | None = None
        self._listener: ListenerThread | None = None
        self._writes: NativeConnection | None = None
        self._compile: Callable[..., tuple[str, dict[str, Any]]] | None = None  # set by startup

    # -- opening and closing -----------------------------------------------------------

    async def startup(self) -> None:
        """Start the connection's thread, connect, create or check the tables."""
        try:
            from ._postgres_conn import PGConnection, PGTimeouts
            from ._postgres_native import NativeConnection
            from ._postgres_schema import create_or_check
            from ._postgres_thread import WorkerThread
            from ._postgres_writes import compile_batch
        except ImportError as exc:
            raise StorageError(
                f"PostgresStorage needs psycopg 3: pip install 'jobify_trio[postgres]' ({exc})"
            ) from exc
        if self._worker is not None:
            raise StorageError(f"{self!r} is already open")
        connect, statement, lock = self._timeouts
        timeouts = PGTimeouts(connect=connect, statement=statement, lock=lock)
        names = self.names
        pg = PGConnection(
            self.conninfo,
            timeouts=timeouts,
            setup=lambda conn: create_or_check(conn, names, pg.where),
        )
        worker = WorkerThread(f"jobify-pg:{pg.where}")
        try:
            await worker.call(lambda: pg.run("open", lambda conn: None))
        except BaseException:
            worker.stop()
            raise
        self._worker, self._pg = worker, pg
        self._writes = NativeConnection(pg.connect_plain, pg.where)
        self._compile = compile_batch  # (imported here, not at each apply)

    async def shutdown(self) -> None:
        """Stop listening, close the connections and end their threads."""
        listener, self._listener = self._listener, None
        worker, self._worker = self._worker, None
        pg, self._pg = self._pg, None
        writes, self._writes = self._writes, None
        if listener is not None:
            await listener.stop()
        if writes is not None:
            await writes.aclose()
        if worker is not None and pg is not None:
            try:
                await worker.call(pg.close)
            finally:
                worker.stop()

    async def _call(
        self, action: str, fn: Callable[[psycopg.Connection[Any]], T], *, urgent: bool = False
    ) -> T:
        worker, pg = self._worker, self._pg
        if worker is None or pg is None:
            raise StorageError(f"{self!r} is not open; call startup() first")
        return await worker.call(lambda: pg.run(action, fn), urgent=urgent)

    # -- the single-instance interface -------------------------------------------------

    async def load(self) -> LoadResult:
        """Every stored row (rows with an unknown trigger or state as :class:`CorruptRow`)."""
        from ._postgres_writes import COLUMNS, row_to_job

        jobs_table = self.names.jobs
        rows = await self._call(
            "read",
            lambda conn: conn.execute(
                f"SELECT {COLUMNS} FROM {jobs_table} ORDER BY next_run_at, job_id"
            ).fetchall(),
        )
        jobs: list[StoredJob] = []
        corrupt: list[CorruptRow] = []
        for raw in rows:
            try:
                jobs.append(row_to_job(raw))
            except (ValueError, TypeError) as exc:
                corrupt.append(CorruptRow(job_id=raw[0], task_name=raw[1], reason=str(exc)))
        return LoadResult(jobs=jobs, corrupt=corrupt)

    async def apply(self, writes: Sequence[Write], /) -> None:
        """Apply the writes in one statement (see ``_postgres_writes``), on the write
        connection driven from the trio thread (``_postgres_native``)."""
        connection, compile_batch = self._writes, self._compile
        if connection is None or compile_batch is None:
            raise StorageError(f"{self!r} is not open; call startup() first")
        if not writes:
            return
        sql, params = compile_batch(self.names, writes)
        try:
            await connection.execute("write", sql, params)
        except StorageError as exc:
            from psycopg.errors import UniqueViolation

            if not isinstance(exc.__cause__, UniqueViolation):
                raise
            # A generated id that is stored after all (Upsert.new): upsert as usual.
            again, params = compile_batch(self.names, writes, insert_new=False)
            if again == sql:
                raise
            await connection.execute("write", again, params)

    @property
    def keeps_runs(self) -> bool:
        """True: runs are kept in ``<table_prefix>_runs``."""
        return True

    @property
    def stores_paused(self) -> bool:
        """True: in the ``paused`` column."""
        return True

    async def load_runs(
        self, *, since: datetime, per_job: int, job_id: str | None = None
    ) -> list[StoredRun]:
        """The stored runs that ended at or after ``since`` (see :meth:`Storage.load_runs`)."""
        from ._postgres_runs import load_runs_sql, row_to_run

        sql = load_runs_sql(self.names, one_job=job_id is not None)
        params = (since, per_job) if job_id is None else (since, job_id, per_job)
        rows = await self._call("read", lambda conn: conn.execute(sql, params).fetchall())
        return [row_to_run(row) for row in rows]

    async def release(self, *, owner: str, job_ids: Sequence[str]) -> None:
        """End ``owner``'s leases on ``job_ids``."""
        from ..storage import Release

        await self.apply([Release(job_id=job_id, owner=owner) for job_id in job_ids])

    # -- sharing -----------------------------------------------------------------------

    @property
    def can_share(self) -> bool:
        """True: several app instances may share the tables."""
        return True

    async def register_instance(self, info: InstanceInfo, /) -> None:
        """Add (or replace) the instance's row."""
        from ._postgres_share import register_instance

        names = self.names
        await self._call("register instance", lambda c: register_instance(c, names, info))

    async def heartbeat(
        self, *, instance_id: str, now: datetime, lease_until: datetime
    ) -> Heartbeat:
        """Renew the instance and its leases; take its commands (one transaction, run
        ahead of queued calls)."""
        from ._postgres_share import heartbeat

        names = self.names
        return await self._call(
            "heartbeat",
            lambda c: heartbeat(
                c, names, instance_id=instance_id, now=now, lease_until=lease_until
            ),
            urgent=True,  # ahead of queued write batches (see ``_thread``)
        )

    async def instances(self) -> list[InstanceInfo]:
        """Every instance row."""
        from ._postgres_share import instances

        names = self.names
        return await self._call("read instances", lambda c: instances(c, names))

    async def unregister_instance(self, *, instance_id: str) -> None:
        """Delete the instance's row and end its leases."""
        from ._postgres_share import unregister_instance

        names = self.names
        await self._call(
            "unregister instance",
            lambda c: unregister_instance(c, names, instance_id=instance_id),
        )

    async def claim_due(
        self, *, owner: str, now: datetime, lease: timedelta, limit: int
    ) -> list[StoredJob]:
        """Lease due, unowned one-off rows to ``owner`` (``FOR UPDATE SKIP LOCKED``)."""
        from ._postgres_share import claim_due

        names = self.names
        return await self._call(
            "claim",
            lambda c: claim_due(c, names, owner=owner, now=now, lease=lease, limit=limit),
        )

    async def adopt_orphans(
        self, *, owner: str, now: datetime, lease: timedelta, limit: int
    ) -> list[StoredJob]:
        """Lease rows whose lease expired (and unowned cron rows) to ``owner``."""
        from ._postgres_share import adopt_orphans

        names = self.names
        return await self._call(
            "adopt",
            lambda c: adopt_orphans(c, names, owner=owner, now=now, lease=lease, limit=limit),
        )

    async def next_due_at(self, *, now: datetime) -> datetime | None:
        """The earliest run of a claimable one-off row."""
        from ._postgres_share import next_due_at

        names = self.names
        return await self._call("read", lambda c: next_due_at(c, names, now=now))

    async def next_lease_expiry(self, *, owner: str, now: datetime) -> datetime | None:
        """The earliest future lease expiry of a row leased to another instance."""
        from ._postgres_share import next_lease_expiry

        names = self.names
        return await self._call("read", lambda c: next_lease_expiry(c, names, owner=owner, now=now))

    async def claim_cron_slots(
        self, claims: Sequence[SlotClaim], /, *, now: datetime, lease: timedelta
    ) -> set[str]:
        """Commit the slot claims that still hold, in one transaction."""
        from ._postgres_share import claim_cron_slots

        if not claims:
            return set()
        names = self.names
        return await self._call(
            "claim cron slots",
            lambda c: claim_cron_slots(c, names, claims, now=now, lease=lease),
        )

    async def try_take(self, job: StoredJob, /, *, now: datetime) -> str | None:
        """Upsert ``job`` unless another live instance owns the row."""
        from ._postgres_share import try_take

        names = self.names
        return await self._call("take", lambda c: try_take(c, names, job, now=now))

    async def try_delete(self, job_id: str, /, *, owner: str, now: datetime) -> str | None:
        """Delete the row unless another live instance owns it."""
        from ._postgres_share import try_delete

        names = self.names
        return await self._call(
            "delete", lambda c: try_delete(c, names, job_id, owner=owner, now=now)
        )

    async def get_job(self, job_id: str, /) -> StoredJob | None:
        """The row with its lease columns and origin, or None."""
        from ._postgres_share import get_job

        names = self.names
        return await self._call("read", lambda c: get_job(c, names, job_id))

    async def fetch_results(self, job_ids: Sequence[str], /) -> list[StoredResult]:
        """The stored results of these jobs."""
        from ._postgres_share import fetch_results

        if not job_ids:
            return []
        names = self.names
        return await self._call("read results", lambda c: fetch_results(c, names, job_ids))

    async def prune(
        self, *, results_before: datetime, claims_before: datetime, instances_before: datetime
    ) -> None:
        """Delete old results, slot claims and instance rows."""
        from ._postgres_share import prune

        names = self.names
        await self._call(
            "prune",
            lambda c: prune(
                c,
                names,
                results_before=results_before,
                claims_before=claims_before,
                instances_before=instances_before,
            ),
        )

    async def wait_changed(self, *, poll_interval: float) -> bool:
        """Wait up to ``poll_interval`` s for a ``NOTIFY`` (insert, release, command...).

        The first call starts the listening connection and its thread; each time that
        connection (re)connects, one wake-up is reported, since notifications sent while it
        was away are lost. The caller polls anyway when this returns False.
        """
        if self._worker is None or self._pg is None:
            raise StorageError(f"{self!r} is not open; call startup() first")
        if self._listener is None:
            from ._postgres_thread import ListenerThread

            self._listener = ListenerThread(self._pg.connect_plain, self.names.channel)
        return await self._listener.wait(poll_interval)

    def __repr__(self) -> str:
        try:
            from ._postgres_conn import describe

            where = describe(self.conninfo)
        except ImportError:  # psycopg missing
            where = "?"
        return (
            f"PostgresStorage({where!r}, schema={self.schema!r}, "
            f"table_prefix={self.table_prefix!r})"
        )
