"""Which job store the command line opens: ``--db`` or the ``JOBIFY_DB`` environment variable.

A value starting with ``postgresql://`` or ``postgres://`` is a PostgreSQL URL
(:class:`~jobify_trio.storage.PostgresStorage`); anything else is a SQLite file path.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..storage import SQLiteStorage, Storage

__all__ = ["ENV_VAR", "is_postgres_url", "postgres_url", "storage_for"]

#: The environment variable naming the job store when ``--db`` is not given.
ENV_VAR = "JOBIFY_DB"


def is_postgres_url(value: str | None) -> bool:
    return value is not None and value.startswith(("postgresql://", "postgres://"))


def _db_argument(argv: Sequence[str]) -> str | None:
    for index, arg in enumerate(argv):
        if arg == "--db" and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--db="):
            return arg.split("=", 1)[1]
    return None


def postgres_url(argv: Sequence[str]) -> str | None:
    """The PostgreSQL URL ``argv`` (``--db``) or ``$JOBIFY_DB`` names, or None."""
    value = _db_argument(argv)
    if value is None:
        value = os.environ.get(ENV_VAR)
    return value if is_postgres_url(value) else None


def storage_for(
    value: str, *, schema: str = "public", table_prefix: str = "jobify", shared: bool = False
) -> Storage:
    """The store a ``--db`` value names. ``shared`` lets several processes share a SQLite
    file (``SQLiteStorage(shared=True)``); a PostgreSQL store always shares."""
    if is_postgres_url(value):
        from ..storage import PostgresStorage

        return PostgresStorage(value, schema=schema, table_prefix=table_prefix)
    return SQLiteStorage(value, shared=shared)
