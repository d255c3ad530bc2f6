"""The push journal of an unshared SQLite store: a durable push for one ``write`` call.

A sequential loop of durable pushes paid one SQLite commit per push: a WAL transaction
takes and drops three file locks (six ``fcntl`` calls), writes two or more pages and
updates the WAL index, whatever the row's size. A sequential caller's push (concurrent
callers share commits already) whose job id was generated (so no other row can have it)
is instead appended to a journal file next to the database
(``<file>-<table>-journal``), in one ``write`` call, and the call returns: the record is
then as safe as a commit in WAL mode with ``synchronous=NORMAL`` (neither syncs the
disk: both survive a crash of the process, kill -9 included, and either may lose its
last writes to a power loss).

The rows reach the table in *folds*. Every transaction the store commits (the writer's
batches: ended jobs, retries, cron state, run history) first inserts the journaled rows
not yet in the table, and records the last folded sequence number in the ``_meta``
table; then the journal is emptied (``ftruncate``). A row whose job ended before its
fold is never written at all: its delete in the same batch cancels both, so a short job's
whole life (push, run, delete) costs one ``write`` and a share of a later commit. If
every journaled row is cancelled and nothing else is queued, the fold commits nothing
and only empties the journal. No push is journaled while a commit is in flight, so the
journal holds nothing a commit has not seen when it is emptied.

At startup the store replays the journal left by a crash before anything else reads the
table: the records after the recorded sequence number are inserted in one transaction
(the others were folded, or cancelled by a delete, before the crash) and the journal is
emptied. A record cut short or damaged ends the replay; the bytes from there are kept in
``<journal>.damaged`` and named in a warning. Each record's CRC is seeded with a random
salt kept in the ``_meta`` table, so a journal beside a database it does not belong to
reads as damaged. The journal is locked (``flock``) by the store that owns it, from
startup to shutdown (a forked child closes its copy): a second process (a second
instance, which the store refuses anyway, or a shared store) neither replays nor
appends to a live journal. A shared store (``shared=True``) replays a journal
left by an unshared one, and journals nothing itself (its rows carry leases other
instances must see at once). Windows has no ``flock``: no journal there.

Folds happen with the writer's batches, so the table trails the journal by a few
milliseconds in a push loop; a job whose row is only journaled (it is still running and
nothing has been committed since) reaches the table at the next commit or at shutdown.
``jobify-trio jobs`` lists journaled rows too.
"""

from __future__ import annotations

import os
import secrets
import sys
import warnings
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

import attrs

from ..storage import Delete, StorageError, Upsert, Write
from ._journal_format import Decoded, JournalRecord, decode, encode
from ._records import PushedRow
from ._sqlite_rows import to_db_time

if TYPE_CHECKING:
    from ._sqlite import SQLiteDatabase

if sys.platform != "win32":
    import fcntl

__all__ = [
    "JOURNAL_MAX_BYTES",
    "SUPPORTED",
    "JournalFold",
    "PushJournal",
    "journal_folded",
    "journal_path",
    "journaled_rows",
    "replay_journal",
]

#: A journal this long takes no more pushes (they commit to the table, as without one)
#: until the next fold empties it.
JOURNAL_MAX_BYTES: Final = 8 << 20

Row = tuple[str, str, str, bytes]


#: Whether this platform has the ``flock`` the journal needs (not Windows: there every
#: push commits its row).
SUPPORTED: Final = sys.platform != "win32"
_FOLDED: Final = "journal_folded"  # keys of the table's _meta rows
_SALT: Final = "journal_salt"
_OPEN: weakref.WeakSet[PushJournal] = weakref.WeakSet()  # closed in a forked child


def journal_path(database: Path, table: str) -> Path:
    """The journal of ``table`` in the SQLite file ``database`` (its real path: SQLite
    resolves symbolic links for the database's own files too)."""
    real = Path(os.path.realpath(database))
    return real.with_name(f"{real.name}-{table}-journal")


def _meta(db: SQLiteDatabase, key: str) -> int | None:
    with db._errors("read"):
        row = db._conn.execute(f"SELECT value FROM {db.meta} WHERE key = ?", (key,)).fetchone()
    return None if row is None else int(row[0])


def journal_folded(db: SQLiteDatabase) -> int:
    """The last sequence number of the push journal folded into the table (0: none)."""
    return _meta(db, _FOLDED) or 0


def _salt(db: SQLiteDatabase, *, create: bool) -> int | None:
    """The database's journal salt (made and committed if ``create`` and missing)."""
    salt = _meta(db, _SALT)
    if salt is None and create:
        salt = secrets.randbits(32)
        with db._transaction("write") as conn:
            conn.execute(f"INSERT INTO {db.meta} (key, value) VALUES (?, ?)", (_SALT, str(salt)))
    return salt


@attrs.frozen(kw_only=True)
class JournalFold:
    """The journaled rows a transaction inserts first, and the sequence number it folds
    up to (every record up to it is then in the table, or was cancelled)."""

    rows: tuple[Row, ...]
    upto: int = attrs.field(validator=attrs.validators.ge(1))


class PushJournal:
    """The open, locked journal of one store (see the module docs). Not thread-safe:
    appends and folds happen on the trio thread (a fold's commit may run on the store's
    thread, but no push is journaled meanwhile)."""

    def __init__(self, fd: int, path: Path, *, seq: int, salt: int) -> None:
        self.path = path
        self._fd = fd
        self._salt = salt
        self._seq = seq  # the last sequence number given
        self._size = 0
        self._pending: dict[str, tuple[int, Row]] = {}  # job id -> its record, not folded
        self.appended = 0  # records written (for tests and benchmarks)
        self.folds = 0  # folds that emptied the journal (for tests and benchmarks)
        _OPEN.add(self)

    def append(self, row: PushedRow) -> bool:
        """Journal a push's row; False (nothing written) if the journal is full."""
        if self._size >= JOURNAL_MAX_BYTES:
            return False
        job_id, task_name, run_at, arguments = row
        values = (job_id, task_name, to_db_time(run_at), bytes(arguments))
        seq = self._seq + 1
        record = encode(seq, *values, salt=self._salt)
        try:
            written = os.write(self._fd, record)
            if written != len(record):  # a full disk: the record cannot count
                raise StorageError(f"job {job_id!r} was not saved: {self.path} is full")
        except BaseException:  # a torn record would end a replay: cut it off
            os.ftruncate(self._fd, self._size)
            raise
        self._seq = seq
        self._size += written
        self._pending[job_id] = (seq, values)
        self.appended += 1
        return True

    @property
    def pending(self) -> int:
        """Rows journaled and not folded yet."""
        return len(self._pending)

    def fold(self, writes: Sequence[Write]) -> tuple[Sequence[Write], JournalFold | None]:
        """The ``writes`` a transaction applies after the fold, and the fold (None if
        nothing is journaled): a delete of a journaled row cancels both, an upsert of one
        replaces it (module docs). Changes nothing: see :meth:`folded`."""
        pending = self._pending
        if not pending:
            return writes, None
        cancelled: set[str] = set()
        upserted: set[str] = set()
        kept: list[Write] = []
        for write in writes:
            if type(write) is Delete and write.job_id in pending:
                cancelled.add(write.job_id)
                if write.job_id not in upserted:
                    continue  # the id was generated: no older row has it
            elif type(write) is Upsert and write.job.job_id in pending:
                cancelled.add(write.job.job_id)
                upserted.add(write.job.job_id)
            kept.append(write)
        rows = tuple(row for job_id, (_, row) in pending.items() if job_id not in cancelled)
        return kept, JournalFold(rows=rows, upto=self._seq)

    def folded(self, fold: JournalFold) -> None:
        """``fold`` was committed (or had nothing to commit): forget its records, and
        empty the journal if nothing was journaled since."""
        upto = fold.upto
        self._pending = {k: v for k, v in self._pending.items() if v[0] > upto}
        if not self._pending and self._seq == upto:
            try:
                os.ftruncate(self._fd, 0)
            except OSError as exc:  # its records are folded: a replay skips them
                warnings.warn(f"could not empty {self.path}: {exc}", RuntimeWarning, stacklevel=1)
                return
            self._size = 0
            self.folds += 1

    def close(self) -> None:
        """Remove the file if it is empty, release the lock and close it."""
        _OPEN.discard(self)
        try:
            if self._size == 0 and not self._pending:
                self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)

    def _forget_in_child(self) -> None:
        """In a forked child: close the inherited descriptor, so that the lock (held by
        the open file, shared with the parent) ends with the parent."""
        os.close(self._fd)


def _after_fork_in_child() -> None:
    for journal in list(_OPEN):
        journal._forget_in_child()
    _OPEN.clear()


if SUPPORTED:
    os.register_at_fork(after_in_child=_after_fork_in_child)


def replay_journal(db: SQLiteDatabase, *, keep_open: bool) -> PushJournal | None:
    """Lock the journal of ``db``'s table, fold what a crash left in it, and empty it
    (module docs); the open journal if ``keep_open``, else None (it is closed, and
    removed). None as well if another process holds it (this store then commits every
    push), and on a platform without ``flock``. Runs on the store's thread."""
    path = journal_path(db.path, db.table)
    if not SUPPORTED or (not keep_open and not path.exists()):
        return None
    fd = _lock(path)
    if fd is None:  # its live owner restores its rows itself
        return None
    try:
        salt = _salt(db, create=keep_open)
        seq = _fold_left(db, fd, path, salt)
    except BaseException:
        os.close(fd)
        raise
    if keep_open and salt is not None:
        return PushJournal(fd, path, seq=seq, salt=salt)
    path.unlink(missing_ok=True)
    os.close(fd)
    return None


def _lock(path: Path) -> int | None:
    """The journal at ``path``, opened (created if needed) and locked; None if another
    process holds the lock. A file removed by its owner's shutdown between our ``open``
    and our lock is opened again: a lock on a removed file would guard nothing."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held, named = os.fstat(fd), os.stat(path)
            if (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino):
                return fd
        except BlockingIOError:
            os.close(fd)
            return None
        except FileNotFoundError:
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def _fold_left(db: SQLiteDatabase, fd: int, path: Path, salt: int | None) -> int:
    """Insert the records after the folded sequence number, then empty the journal; the
    last sequence number used. With no salt (the database never had a journal) any
    record is another database's: kept aside as damaged."""
    data = _read_all(fd)
    if salt is None:
        decoded = Decoded(records=[], end=0, size=len(data))
    else:
        decoded = decode(data, salt=salt)
    folded = journal_folded(db)
    todo = [record for record in decoded.records if record.seq > folded]
    last = max([folded, *(record.seq for record in decoded.records)])
    if todo:
        db.apply_folding([], JournalFold(rows=tuple(r.row() for r in todo), upto=last))
    if len(data) > decoded.end:
        _keep_damaged(path, data[decoded.end :], len(decoded.records))
    os.ftruncate(fd, 0)
    return last


def _keep_damaged(path: Path, damaged: bytes, good: int) -> None:
    """Append the bytes a replay could not read to ``<journal>.damaged``, and warn."""
    kept = path.with_name(path.name + ".damaged")
    try:
        with kept.open("ab") as file:
            file.write(damaged)
        where = f"they are kept in {kept}"
    except OSError as exc:
        where = f"they could not be kept ({exc})"
    warnings.warn(
        f"the push journal {path} ends with {len(damaged)} damaged byte(s) after {good} "
        f"good record(s) (cut short, or another database's journal); {where}",
        RuntimeWarning,
        stacklevel=1,
    )


def journaled_rows(db: SQLiteDatabase) -> list[JournalRecord]:
    """The journal's records not folded yet, read without the lock (the CLI's view: a
    live app's journal may also hold jobs that ended since). Call it before reading the
    table: a fold in between then shows its rows in the table, not nowhere."""
    try:
        data = journal_path(db.path, db.table).read_bytes()
    except FileNotFoundError:
        return []
    salt = _meta(db, _SALT)
    folded = journal_folded(db)
    if salt is None:
        return []
    return [record for record in decode(data, salt=salt).records if record.seq > folded]


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)
