"""What ``jobify-trio jobs`` prints, for SQLite and PostgreSQL alike, and how it judges
whether an app instance is live (pure: no I/O beyond asking whether a local pid runs).

An instance is judged from what the store holds, as the apps judge each other:

* on this host, an instance whose process no longer runs is **dead** (as an app started
  on the same host frees the rows of its crashed predecessor);
* an instance that holds leases is **live** while one of them has not expired: a lease
  runs ``lease`` seconds past the instance's last heartbeat, whatever ``lease`` it uses;
* an instance that holds no lease (a lone app on a SQLite file that is not shared) is
  **live** while its last heartbeat is under :data:`LIVE_WITHIN` old (the default lease).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, TextIO

import attrs

from .._sharing._options import host_name, pid_alive

__all__ = [
    "CLAIMS_HEADER",
    "INSTANCES_HEADER",
    "LIST_HEADER",
    "LIVE_WITHIN",
    "Instance",
    "cell",
    "instance_cells",
    "is_live",
    "print_table",
]

LIVE_WITHIN = timedelta(seconds=30)
"""An instance holding no lease is live while its last heartbeat is younger than this."""

LIST_HEADER = (
    "ID", "TASK", "TRIGGER", "NEXT RUN (UTC)", "STATE", "ATTEMPT", "OWNER", "LEASE UNTIL",
)  # fmt: skip
INSTANCES_HEADER = (
    "INSTANCE", "HOST", "PID", "STARTED (UTC)", "LAST HEARTBEAT (UTC)", "AGE", "STATUS",
)  # fmt: skip
CLAIMS_HEADER = ("JOB", "SLOT (UTC)", "OWNER", "CLAIMED AT (UTC)")


@attrs.frozen
class Instance:
    """An instance row, with the latest expiry of the leases it holds (None: none)."""

    instance_id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    lease_until: datetime | None


def is_live(
    instance: Instance, now: datetime, *, pid_runs: Callable[[int], bool] = pid_alive
) -> bool:
    """Whether ``instance`` is live at ``now`` (see the module docs)."""
    if instance.host == host_name() and not pid_runs(instance.pid):
        return False
    if instance.lease_until is not None:
        return instance.lease_until > now
    return now - instance.heartbeat_at < LIVE_WITHIN


def _status(instance: Instance, now: datetime) -> str:
    if instance.host == host_name() and not pid_alive(instance.pid):
        return "dead (no process)"
    return "live" if is_live(instance, now) else "dead"


def instance_cells(instances: Iterable[Instance], now: datetime) -> list[tuple[str, ...]]:
    """One line of the ``instances`` listing per instance."""
    return [
        (
            i.instance_id,
            i.host,
            str(i.pid),
            cell(i.started_at),
            cell(i.heartbeat_at),
            f"{(now - i.heartbeat_at).total_seconds():.1f} s",
            _status(i, now),
        )
        for i in instances
    ]


def cell(value: object) -> str:
    """A value as printed: None is ``-``, a time is ISO 8601 with microseconds."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    return str(value)


def print_table(
    header: Sequence[str], lines: Sequence[Sequence[str]], footer: str, out: TextIO
) -> None:
    """Left-aligned columns (the last one unpadded), then ``footer``."""
    table: list[Sequence[str]] = [header, *lines]
    widths = [max(len(line[i]) for line in table) for i in range(len(header) - 1)]
    for line in table:
        cells = [text.ljust(width) for text, width in zip(line, widths, strict=False)]
        print("  ".join([*cells, line[-1]]).rstrip(), file=out)
    print(footer, file=out)


def rows_as_cells(rows: Iterable[Sequence[Any]]) -> list[tuple[str, ...]]:
    """Each value of each row through :func:`cell`."""
    return [tuple(cell(value) for value in row) for row in rows]
