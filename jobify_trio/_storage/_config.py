"""Checking the ``storage=`` and ``serializer=`` arguments of ``Jobify(...)``."""

from __future__ import annotations

from ..serializers import ExtendedJSONSerializer, Serializer
from ..storage import SQLiteStorage, Storage

__all__ = ["check_storage"]


def check_storage(storage: object, serializer: object) -> tuple[Storage | None, Serializer]:
    """``(storage or None when disabled, serializer)``; clear errors for wrong values.

    ``storage=None`` means the default ``SQLiteStorage("jobify.db")`` (Jobify crashes on
    None); ``storage=False`` disables persistence.
    """
    if storage is False:
        chosen: Storage | None = None
    elif storage is None:
        chosen = SQLiteStorage("jobify.db")
    elif isinstance(storage, Storage):
        chosen = storage
    else:
        raise TypeError(
            f"storage must be a jobify_trio.storage.Storage, None (the default SQLite file) "
            f"or False (no persistence), got {storage!r}"
        )
    if serializer is None:
        return chosen, ExtendedJSONSerializer()
    if not isinstance(serializer, Serializer):
        raise TypeError(
            f"serializer must have dumpb(value) -> bytes and loadb(bytes) methods, "
            f"got {serializer!r}"
        )
    return chosen, serializer
