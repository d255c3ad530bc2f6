""":class:`SharingOptions` and the identity of one app instance."""

from __future__ import annotations

import os
import socket

import attrs

__all__ = ["SharingOptions", "host_name", "new_instance_id", "pid_alive"]


def _positive(_: object, attribute: attrs.Attribute[float], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"SharingOptions.{attribute.name} must be a number > 0, got {value!r}")


def _optional_positive(_: object, attribute: attrs.Attribute[float | None], value: object) -> None:
    if value is not None:
        _positive(_, attribute, value)  # type: ignore[arg-type]


def _lead(_: object, attribute: attrs.Attribute[float], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"SharingOptions.{attribute.name} must be a number >= 0, got {value!r}")


def _instance_id(_: object, attribute: attrs.Attribute[str | None], value: object) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ValueError(f"SharingOptions.instance_id must be a non-empty str, got {value!r}")


@attrs.frozen(kw_only=True)
class SharingOptions:
    """How an app instance takes part in a schedule shared with other instances.

    Times are in seconds. ``lease``: how long a claim (and an instance) lives without a
    heartbeat: the window of at-least-once delivery after an instance dies.
    ``heartbeat_interval`` (default ``lease / 3``) must be shorter than ``lease``.
    ``poll_interval``: how often the store is polled for due rows, results and
    commands when it sends no notification. ``result_retention`` and
    ``slot_claim_retention``: how long results across instances and cron slot claims
    are kept. ``slot_claim_lead``: how long before a cron slot its claim is committed
    (0: at the slot), so that the slot fires on time without waiting for the store; it
    must be shorter than the lease. ``instance_id``: default ``"{host}-{pid}-{random}"``.
    """

    lease: float = attrs.field(default=30.0, validator=_positive)
    heartbeat_interval: float | None = attrs.field(default=None, validator=_optional_positive)
    poll_interval: float = attrs.field(default=1.0, validator=_positive)
    result_retention: float = attrs.field(default=86_400.0, validator=_positive)
    slot_claim_retention: float = attrs.field(default=7 * 86_400.0, validator=_positive)
    slot_claim_lead: float = attrs.field(default=0.5, validator=_lead)
    instance_id: str | None = attrs.field(default=None, validator=_instance_id)

    def __attrs_post_init__(self) -> None:
        if self.heartbeat_interval is not None and self.heartbeat_interval >= self.lease:
            raise ValueError(
                f"SharingOptions.heartbeat_interval ({self.heartbeat_interval!r} s) must be "
                f"shorter than the lease ({self.lease!r} s)"
            )
        if self.slot_claim_lead >= self.lease:
            raise ValueError(
                f"SharingOptions.slot_claim_lead ({self.slot_claim_lead!r} s) must be "
                f"shorter than the lease ({self.lease!r} s)"
            )
        if self.slot_claim_retention <= self.lease:
            raise ValueError(
                "SharingOptions.slot_claim_retention must be longer than the lease, got "
                f"{self.slot_claim_retention!r} s"
            )

    @property
    def beat(self) -> float:
        """The heartbeat interval in effect."""
        return self.lease / 3 if self.heartbeat_interval is None else self.heartbeat_interval


def host_name() -> str:
    """This host's name (as stored in the instance row)."""
    return socket.gethostname() or "localhost"


def new_instance_id(options: SharingOptions) -> str:
    """The configured id, else ``"{host}-{pid}-{8 random hex digits}"``."""
    if options.instance_id is not None:
        return options.instance_id
    return f"{host_name()}-{os.getpid()}-{os.urandom(4).hex()}"


def pid_alive(pid: int) -> bool:
    """True if a process with this id runs on this host (or we may not ask)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists
        return True
    return True
