"""SQLite: the parameters each write binds, and how a batch of writes is grouped.

Used by ``_sqlite.py`` (``SQLiteDatabase.apply``); a row's column values come from
``_sqlite_rows.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Final

from ..storage import Delete, StorageError, Upsert, Write
from ._records import PruneRuns, PutResult, RecordRun, Release, SendCommand, SetPaused
from ._sqlite_rows import ROW_GROUPS, row_values, to_db_time
from ._sqlite_runs import run_params

__all__ = ["FLAT", "SMALL", "few_besides_deletes", "write_params", "write_runs"]

#: Batches with up to this many writes besides deletes are applied one statement per
#: write, consecutive deletes merged (``SQLiteDatabase._apply_small``).
SMALL = 4


def few_besides_deletes(writes: Sequence[Write]) -> bool:
    """At most :data:`SMALL` of ``writes`` are not deletes (``SQLiteDatabase._apply_small``)."""
    others = 0
    for write in writes:
        if type(write) is not Delete:
            others += 1
            if others > SMALL:
                return False
    return True


def write_runs(writes: Sequence[Write]) -> Iterator[tuple[str, list[Any]]]:
    """Maximal runs of consecutive writes of one kind: flat parameter lists for upserts
    (of each kind of :func:`row_values`) and deletes (multi-row statements), parameter
    tuples for the other kinds (executemany)."""
    values: list[Any] = []
    current = ""
    for write in writes:
        kind, params = row_values(write.job) if type(write) is Upsert else write_params(write)
        if kind != current and values:
            yield current, values
            values = []
        current = kind
        if kind in FLAT:
            values.extend(params)
        else:
            values.append(params)
    if values:
        yield current, values


#: The kinds of :func:`write_runs` bound as one flat list, with the values per row.
FLAT: Final = {kind: width for kind, (_, width) in ROW_GROUPS.items()} | {"delete": 1}


def write_params(write: Write) -> tuple[str, tuple[Any, ...]]:
    if isinstance(write, Upsert):
        return row_values(write.job)
    if isinstance(write, Delete):
        return "delete", (write.job_id,)
    if isinstance(write, PutResult):
        r = write.result
        values = (r.job_id, r.origin, r.status.value, r.value, r.error, to_db_time(r.finished_at))
        return "result", values
    if isinstance(write, Release):
        return "release", (write.job_id, write.owner)
    if isinstance(write, SendCommand):
        c = write.command
        return "command", (c.target, c.job_id, c.kind.value, c.payload, to_db_time(c.created_at))
    if isinstance(write, (RecordRun, SetPaused, PruneRuns)):  # (a tuple: faster than a union)
        return run_params(write)
    raise StorageError(f"SQLiteStorage cannot apply {type(write).__name__} writes")
