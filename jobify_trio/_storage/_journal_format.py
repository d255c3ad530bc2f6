"""The push journal's record format: pure encoding and decoding (no I/O, no trio).

A record is one push's row, as the "pushed" kind of the SQLite table stores it: the job's
id, task name, run time (the table's text form) and encoded arguments, with a sequence
number. Its layout, little-endian::

    crc32   u32   of every byte after this field
    length  u32   of the body
    seq     u64
    id_len  u16,  task_len u16,  at_len u16
    body    id + task + at (UTF-8) + arguments (the rest of the body)

:func:`decode` reads records up to the first that is cut short or does not check out (its
CRC, its lengths, its text): a record written by one ``write`` call that the process did
not finish (a crash of the machine, or a kill arriving in the middle of a large ``write``:
that push had not returned) ends the good prefix. Everything after it is reported as
damaged, never guessed at. The CRC is seeded with a salt of the database's own.
"""

from __future__ import annotations

import struct
import zlib
from typing import Final

import attrs

__all__ = ["HEADER_SIZE", "MAX_FIELD", "Decoded", "JournalRecord", "decode", "encode"]

_HEADER: Final = struct.Struct("<IIQHHH")
_AFTER_CRC: Final = struct.Struct("<IQHHH")  # the header without its CRC field
HEADER_SIZE: Final = _HEADER.size
#: The longest id, task name or run time a record holds (bytes, UTF-8).
MAX_FIELD: Final = 0xFFFF
_CRC_SKIP: Final = 4  # the CRC covers the header after its own field, and the body


@attrs.frozen(kw_only=True)
class JournalRecord:
    """One journaled push: its sequence number and its row's values."""

    seq: int = attrs.field(validator=attrs.validators.ge(1))
    job_id: str
    task_name: str
    run_at: str  # the table's text form of the run time (``to_db_time``)
    arguments: bytes

    def row(self) -> tuple[str, str, str, bytes]:
        """The parameters of the table's "pushed" insert."""
        return (self.job_id, self.task_name, self.run_at, self.arguments)


@attrs.frozen(kw_only=True)
class Decoded:
    """What :func:`decode` read: the good records, in order, and where they end."""

    records: list[JournalRecord]
    end: int  # offset just after the last good record
    size: int  # bytes read; ``size - end`` of them are damaged

    @property
    def damaged(self) -> int:
        return self.size - self.end


def encode(
    seq: int, job_id: str, task_name: str, run_at: str, arguments: bytes, *, salt: int
) -> bytes:
    """One record; ``ValueError`` if a text field is longer than :data:`MAX_FIELD` bytes.
    ``salt`` (32 bits, the database's own) seeds the CRC: a journal that belongs to
    another database (a file restored from a backup beside it) reads as damaged."""
    ident, task, at = job_id.encode(), task_name.encode(), run_at.encode()
    length = len(ident) + len(task) + len(at) + len(arguments)
    try:
        rest = b"".join(
            (_AFTER_CRC.pack(length, seq, len(ident), len(task), len(at)), ident, task, at,
             arguments)
        )  # fmt: skip
    except struct.error as exc:
        raise ValueError(f"job {job_id!r} does not fit a journal record: {exc}") from exc
    return zlib.crc32(rest, salt).to_bytes(4, "little") + rest


def decode(data: bytes, *, salt: int) -> Decoded:
    """The good records at the start of ``data``, written with ``salt`` (module docs)."""
    records: list[JournalRecord] = []
    offset, size = 0, len(data)
    while True:
        record, end = _record_at(data, offset, salt)
        if record is None:
            return Decoded(records=records, end=offset, size=size)
        records.append(record)
        offset = end


def _record_at(data: bytes, offset: int, salt: int) -> tuple[JournalRecord | None, int]:
    if len(data) - offset < HEADER_SIZE:
        return None, offset
    crc, length, seq, id_len, task_len, at_len = _HEADER.unpack_from(data, offset)
    start = offset + HEADER_SIZE
    end = start + length
    texts = id_len + task_len + at_len
    if end > len(data) or texts > length or seq < 1:
        return None, offset
    if zlib.crc32(data[offset + _CRC_SKIP : end], salt) != crc:
        return None, offset
    try:
        ident = data[start : start + id_len].decode()
        task = data[start + id_len : start + id_len + task_len].decode()
        at = data[start + id_len + task_len : start + texts].decode()
    except UnicodeDecodeError:
        return None, offset
    arguments = bytes(data[start + texts : end])
    record = JournalRecord(seq=seq, job_id=ident, task_name=task, run_at=at, arguments=arguments)
    return record, end
