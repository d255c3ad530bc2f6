"""Durable job storage: the :class:`Storage` interface and the default :class:`SQLiteStorage`.

A durable job is stored as one :class:`StoredJob` row: which task, which trigger, when it
runs next, its encoded arguments (see :mod:`jobify_trio.serializers`), the attempt it is
at, and for a cron job its schedule and counters. The app writes rows through a single
*storage writer* actor that groups the writes of many scheduling calls into one
transaction (group commit); a scheduling call returns once its own row is committed
(or, for a loop's push with a generated id on an unshared SQLite file, journaled: see
``docs/durability.rst``).

A store implements four coroutine methods: :meth:`Storage.startup`, :meth:`Storage.shutdown`,
:meth:`Storage.load` and :meth:`Storage.apply` (an ordered batch of upserts and deletes in
one transaction). The methods that let several app instances share one store (instances,
heartbeats, leases, claims, results) are optional: by default they raise
:class:`SharingNotSupportedError`. Keeping a run history (:attr:`Storage.keeps_runs`,
:meth:`Storage.load_runs`, the :class:`RecordRun` and :class:`PruneRuns` writes) is
optional too. ``add``, ``update`` and ``delete`` are conveniences built on ``apply``.
See ``docs/durability.rst``.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import trio

from ._storage._records import (
    CorruptRow,
    Delete,
    LoadResult,
    PruneRuns,
    PutResult,
    RecordRun,
    Release,
    SendCommand,
    SetPaused,
    StoredJob,
    StoredRun,
    StoredState,
    Trigger,
    Upsert,
    validate_table_name,
)
from ._storage._shared import (
    Command,
    CommandKind,
    Heartbeat,
    InstanceInfo,
    ResultStatus,
    SlotClaim,
    StoredResult,
)
from ._storage._sharing_api import SharingMethods
from ._storage._sqlite_sharing import SQLiteSharing
from .exceptions import BaseJobifyError

if TYPE_CHECKING:
    from ._storage._postgres import PostgresStorage
    from ._storage._records import PushedRow
    from ._storage._sqlite_folds import JournalFolds
    from ._storage._sqlite_inline import InlineCommits
    from ._storage._sqlite_thread import SQLiteThread

__all__ = [
    "SCHEMA_VERSION",
    "Command",
    "CommandKind",
    "CorruptRow",
    "Delete",
    "Heartbeat",
    "InstanceInfo",
    "PostgresStorage",
    "PruneRuns",
    "PutResult",
    "RecordRun",
    "Release",
    "ResultStatus",
    "SendCommand",
    "SetPaused",
    "SlotClaim",
    "StoredResult",
    "LoadResult",
    "RestoreWarning",
    "SQLiteStorage",
    "SharingNotSupportedError",
    "Storage",
    "StorageError",
    "StoredJob",
    "StoredRun",
    "StoredState",
    "Trigger",
    "Upsert",
    "Write",
    "validate_table_name",
]

#: Version of the table layout written by :class:`SQLiteStorage`.
SCHEMA_VERSION: Final = 3


class StorageError(BaseJobifyError):
    """The job store failed (cannot open, not a database, read-only, unknown schema...)."""


class SharingNotSupportedError(StorageError):
    """The backend cannot share a schedule between app instances (no leases)."""


class RestoreWarning(UserWarning):
    """Stored rows were kept but not restored (unknown task, undecodable arguments...)."""


Write: TypeAlias = (
    Upsert | Delete | PutResult | Release | SendCommand | SetPaused | RecordRun | PruneRuns
)
"""One write of a batch. Only a store whose :attr:`Storage.can_share` is True is ever
given :class:`PutResult`, :class:`Release` or :class:`SendCommand`; only one whose
:attr:`Storage.keeps_runs` is True :class:`RecordRun` or :class:`PruneRuns`; only one
whose :attr:`Storage.stores_paused` is True :class:`SetPaused`."""


class Storage(SharingMethods, abc.ABC):
    """Where durable jobs are kept. Subclass it to add a backend.

    The app calls :meth:`startup` once when it starts (before :meth:`load`, which the
    restore step calls once), :meth:`apply` from one storage-writer task at a time, and
    :meth:`shutdown` once when it stops, after the last :meth:`apply`. Errors should be
    raised as :class:`StorageError`.

    Sharing is optional: the methods inherited from the private base ``SharingMethods``
    (instances, heartbeats, leases, claims, results; listed below) let several app
    instances share one store. A backend that does not override them serves one
    instance; they raise
    :class:`SharingNotSupportedError` naming it. See ``docs/sharing.rst``.
    """

    @abc.abstractmethod
    async def startup(self) -> None:
        """Open the store (create tables, check the schema version)."""

    @abc.abstractmethod
    async def shutdown(self) -> None:
        """Close the store. Rows stay stored."""

    @abc.abstractmethod
    async def load(self) -> LoadResult:
        """Every stored row."""

    @abc.abstractmethod
    async def apply(self, writes: Sequence[Write], /) -> None:
        """Apply ``writes`` in order, in one transaction: all of them or none."""

    def _apply_now(self, writes: Sequence[Write], /) -> bool:
        """Apply ``writes`` like :meth:`apply`, synchronously, if the backend can without
        blocking the event loop; False if it did nothing (then :meth:`apply` is called).
        Private: the storage writer's fast path for a sequential caller."""
        return False

    def _push_now(self, row: PushedRow, /) -> bool:
        """:meth:`_apply_now` of one ``Upsert`` of ``row`` (a push at its first attempt:
        the other columns at their defaults), without building it; False if it did nothing.
        Private: the storage writer's fast path for a push loop (``StorageWriter.push_now``);
        a store that defines :meth:`_apply_now` may define it."""
        return False

    def _journal_push(self, row: PushedRow, /) -> bool:
        """Make a push's row (as :meth:`_push_now`, whose job id was generated) durable
        now without committing it: the store commits it with a later :meth:`apply`
        (SQLite's push journal). False if it did nothing. Private."""
        return False

    @property
    def keeps_runs(self) -> bool:
        """True if the store keeps a run history (:class:`RecordRun`, :meth:`load_runs`)."""
        return False

    @property
    def stores_paused(self) -> bool:
        """True if the store keeps a one-off job's paused state (:class:`SetPaused`,
        ``StoredJob.paused``); else such a job is restored unpaused after a restart."""
        return False

    async def load_runs(
        self, *, since: datetime, per_job: int, job_id: str | None = None
    ) -> list[StoredRun]:
        """The stored runs that ended at or after ``since``: the latest ``per_job`` of each
        job (of ``job_id`` only, if given), oldest first. A store that keeps no run history
        returns no run."""
        return []

    #: True if a sequential caller's write may be committed by :meth:`apply` in the
    #: caller's own task (an ``apply`` that runs on the trio thread, with no thread hop;
    #: it must pass a schedule point, as the caller's push then yields no more). Private.
    _commit_in_caller: bool = False

    async def add(self, *jobs: StoredJob) -> None:
        """Store new rows (an existing row with the same id is replaced)."""
        await self.apply([Upsert(job=job) for job in jobs])

    async def update(self, *jobs: StoredJob) -> None:
        """Replace stored rows (a missing row is inserted)."""
        await self.apply([Upsert(job=job) for job in jobs])

    async def delete(self, *job_ids: str) -> None:
        """Delete rows by id."""
        await self.apply([Delete(job_id=job_id) for job_id in job_ids])


class SQLiteStorage(SQLiteSharing, Storage):
    """Jobs in a SQLite file (the default: ``jobify.db`` in the working directory).

    One connection, opened and used by one dedicated thread; every call from trio hands
    work to that thread and waits without blocking the event loop. A second connection
    commits small batches of writes right on the trio thread when the write lock is free
    (it never waits for it: then the thread commits them; see :doc:`/durability`). The
    database runs in WAL mode with ``synchronous=NORMAL``: a commit survives a crash of the
    process (kill -9); after a power loss the last commits may be lost. ``table_name`` is
    validated;
    a second table ``<table_name>_meta`` holds the schema version (3) and the push
    journal's salt and folded sequence number, the sharing
    protocol's tables are ``<table_name>_instances``, ``_claims``, ``_results`` and
    ``_commands``, and the run history (:class:`~jobify_trio.RunHistory`) is kept in
    ``<table_name>_runs``; a version 1 or 2 file is migrated when opened.

    ``shared=True`` lets several app instances (processes) share the file (``can_share``):
    leases, claims, exactly-once cron slots. By default (``shared=False``) the store only
    records which instance runs on it, so a second live instance is refused at startup
    instead of running every job twice.

    An unshared store journals the rows of a sequential caller's pushes with a generated
    id instead of committing each one (one ``write`` call, folded into the table with the
    next commit; see :doc:`/durability`); ``push_journal=False`` commits each row instead,
    so that the table is always current for readers of the file other than
    ``jobify-trio jobs``.
    """

    def __init__(
        self,
        path: str | Path = "jobify.db",
        *,
        table_name: str = "jobify_jobs",
        busy_timeout: float = 5.0,
        shared: bool = False,
        push_journal: bool = True,
    ) -> None:
        if not isinstance(path, str | Path) or not str(path):
            raise TypeError(f"SQLiteStorage path must be a non-empty str or Path, got {path!r}")
        for name, flag in (("shared", shared), ("push_journal", push_journal)):
            if not isinstance(flag, bool):
                raise TypeError(f"SQLiteStorage {name} must be True or False, got {flag!r}")
        self.shared = shared
        self.push_journal = push_journal
        self.path = Path(path)
        self.table_name = validate_table_name(table_name)
        self.busy_timeout = float(busy_timeout)
        self._thread: SQLiteThread | None = None
        self._inline: InlineCommits | None = None
        self._folds: JournalFolds | None = None  # the push journal (_sqlite_folds.py)

    async def startup(self) -> None:
        """Start the connection's thread, open the file, create or check the tables."""
        from ._storage._sqlite_inline import InlineCommits
        from ._storage._sqlite_thread import SQLiteThread

        if self._thread is not None:
            raise StorageError(f"{self!r} is already open")
        thread = SQLiteThread(self.path, self.table_name, busy_timeout=self.busy_timeout)
        await thread.open()
        try:
            self._inline = await InlineCommits.open(thread, self.path, self.table_name)
            if self._inline is not None:  # a file: fold a journal a crash left (_journal.py)
                keep = self.push_journal and not self.shared
                self._folds = await _open_journal(thread, self._inline, keep)
        except BaseException:
            inline, self._inline = self._inline, None
            if inline is not None:
                await inline.close()
            await thread.close()
            raise
        self._thread = thread
        self._data_version = await thread.call(lambda db: db.data_version())

    async def shutdown(self) -> None:
        """Close the connection and stop its thread (after every queued write)."""
        thread, self._thread = self._thread, None
        inline, self._inline = self._inline, None
        folds, self._folds = self._folds, None
        if thread is not None:
            try:
                try:
                    if folds is not None:
                        await folds.close(self)
                finally:
                    if inline is not None:
                        await inline.close()
            finally:
                await thread.close()

    def _open_thread(self) -> SQLiteThread:
        if self._thread is None:
            raise StorageError(f"{self!r} is not open; call startup() first")
        return self._thread

    async def load(self) -> LoadResult:
        """Every stored row (unreadable rows come back as :class:`CorruptRow`)."""
        thread = self._open_thread()
        return await thread.call(lambda db: db.load())

    async def apply(self, writes: Sequence[Write], /) -> None:
        """Apply the writes in one transaction (inline if small and the lock is free)."""
        if writes:
            thread = self._open_thread()
            if self._folds is not None:  # the journaled rows go first (_sqlite_folds.py)
                await self._folds.apply(writes)
            elif self._inline is not None:
                await self._inline.apply(writes)
            else:
                await thread.call(lambda db: db.apply(writes))

    def _apply_now(self, writes: Sequence[Write], /) -> bool:
        """Commit ``writes`` on the inline connection if it can (see _sqlite_inline.py)."""
        if self._thread is None:
            return False
        if self._folds is not None:
            return self._folds.apply_now(writes)
        return self._inline is not None and self._inline.try_apply(writes)

    def _push_now(self, row: PushedRow, /) -> bool:
        """:meth:`_apply_now` of a push's row, without building it (see _sqlite_inline.py)."""
        inline = self._inline
        return inline is not None and self._thread is not None and inline.try_push(row)

    def _journal_push(self, row: PushedRow, /) -> bool:
        """Journal a push's row (see _journal.py); False if the store keeps no journal
        (shared, ``:memory:``, not started) or it is full."""
        folds = self._folds
        return folds is not None and self._thread is not None and folds.push(row)

    @property
    def keeps_runs(self) -> bool:
        """True: runs are kept in ``<table_name>_runs``."""
        return True

    @property
    def stores_paused(self) -> bool:
        """True: in the ``paused`` column."""
        return True

    async def load_runs(
        self, *, since: datetime, per_job: int, job_id: str | None = None
    ) -> list[StoredRun]:
        """The stored runs that ended at or after ``since`` (see :meth:`Storage.load_runs`)."""
        thread = self._open_thread()
        return await thread.call(
            lambda db: db.load_runs(since=since, per_job=per_job, job_id=job_id)
        )

    async def release(self, *, owner: str, job_ids: Sequence[str]) -> None:
        """End ``owner``'s leases on ``job_ids``."""
        thread = self._open_thread()
        await thread.call(lambda db: db.release(owner=owner, job_ids=job_ids))

    def __repr__(self) -> str:
        return f"SQLiteStorage({str(self.path)!r}, table_name={self.table_name!r})"


async def _open_journal(
    thread: SQLiteThread, inline: InlineCommits, keep: bool
) -> JournalFolds | None:
    """Replay the push journal a crash left (on the thread, shielded: a journal opened
    and locked there must reach its store); its folds if ``keep``."""
    from ._storage._journal import replay_journal
    from ._storage._sqlite_folds import JournalFolds

    with trio.CancelScope(shield=True):
        journal = await thread.call(lambda db: replay_journal(db, keep_open=keep))
    return None if journal is None else JournalFolds(journal, inline, thread)


def __getattr__(name: str) -> Any:
    # PostgresStorage is imported on first use: its module needs this one (and, at startup,
    # psycopg, which only the ``postgres`` extra installs).
    if name == "PostgresStorage":
        from ._storage._postgres import PostgresStorage

        return PostgresStorage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
