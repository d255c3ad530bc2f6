"""Checks of a SQLite job table that already exists (for a caller that must not change it),
and the translation of ``sqlite3`` errors and unreadable text.

``jobify-trio jobs`` opens a file read-only and must not create a table; these checks tell
it, in one line, why a file is not a job store it can read: no such table (naming the
tables the file has), missing columns, or a schema version this release does not read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from ..storage import SCHEMA_VERSION, StorageError

__all__ = ["check_existing", "explain", "is_busy", "lenient_text", "readable", "version_error"]


def version_error(path: Path, table: str, found: object) -> StorageError:
    """The error for a job table written with another schema version."""
    return StorageError(
        f"job database {str(path)!r}, table {table!r}: schema version "
        f"{found!r} is not supported (this jobify_trio reads version {SCHEMA_VERSION}); "
        "use the jobify_trio release that wrote it, or another table_name"
    )


def check_existing(
    conn: sqlite3.Connection, path: Path, table: str, columns: Sequence[str]
) -> None:
    """Raise :class:`StorageError` unless ``table`` is a job table of this schema version.

    Reads only (``sqlite3`` errors propagate; the caller translates them).
    """
    tables = _first_column(
        conn, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
    )
    if table not in tables:
        shown = _user_tables(tables)
        found = ", ".join(shown) if shown else "none"
        raise StorageError(
            f"job database {str(path)!r} has no table {table!r} "
            f"(its tables: {found}; use --table NAME)"
        )
    present = _first_column(conn, f"SELECT name FROM pragma_table_info('{table}')")
    missing = [name for name in columns if name not in present]
    if missing:
        raise StorageError(
            f"job database {str(path)!r}: table {table!r} is not a jobify_trio "
            f"job table (it lacks the columns {', '.join(missing)})"
        )
    if f"{table}_meta" in tables:
        query = f"SELECT value FROM {table}_meta WHERE key='schema_version'"
        version = _first_column(conn, query)
        if version and version[0] not in ("1", "2", str(SCHEMA_VERSION)):  # read as they are
            raise version_error(path, table, version[0])


_SHARING_SUFFIXES = ("_instances", "_claims", "_results", "_commands", "_runs")


def _user_tables(tables: list[str]) -> list[str]:
    """Tables worth naming: not SQLite's own, not a job table's sharing tables."""
    names = set(tables)
    return [
        name
        for name in tables
        if not name.startswith("sqlite_")
        and not any(
            name.endswith(suffix) and name.removesuffix(suffix) in names
            for suffix in _SHARING_SUFFIXES
        )
    ]


def _first_column(conn: sqlite3.Connection, query: str) -> list[str]:
    return [str(row[0]) for row in conn.execute(query)]


def lenient_text(data: bytes) -> str | bytes:
    """UTF-8 text as ``str``; anything else stays ``bytes`` (the row is then corrupt)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


def readable(value: object) -> str:
    """A column value as text for a report, whatever it holds."""
    return value if type(value) is str else repr(value)[:200]


def explain(path: Path, action: str, exc: sqlite3.Error) -> str:
    text = str(exc)
    hint = ""
    lowered = text.lower()
    if "not a database" in lowered or "malformed" in lowered:
        hint = " (the file exists but is not a SQLite database, or it is damaged)"
    elif "unable to open" in lowered:
        hint = " (does the directory exist, and is it a directory you can write to?)"
    elif "readonly" in lowered or "read-only" in lowered:
        hint = " (the file or its directory is read-only; SQLite's WAL needs to write both)"
    elif "locked" in lowered or "busy" in lowered:
        hint = " (another process holds a lock on it)"
    return f"job database {str(path)!r}: cannot {action}: {text}{hint}"


def is_busy(exc: BaseException | None) -> bool:
    """Whether ``exc`` is ``SQLITE_BUSY`` or ``SQLITE_LOCKED``: another connection holds
    the write lock."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return "locked" in str(exc) or "busy" in str(exc)
    return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
