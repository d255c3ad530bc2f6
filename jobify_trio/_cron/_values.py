"""Public cron values: :class:`Cron`, :class:`MisfirePolicy` and :class:`GracePolicy`.

Pure values (no trio). The live trigger actor consumes them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from jobify_trio._cron._expression import CronExhausted, CronExpression
from jobify_trio.exceptions import InvalidCronExpression

__all__ = ["AnyMisfirePolicy", "Cron", "GracePolicy", "MisfirePolicy"]


def _positive_timedelta(_: object, __: attrs.Attribute[timedelta], value: timedelta) -> None:
    if not isinstance(value, timedelta):
        raise TypeError(f"a grace period must be a timedelta, got {value!r}")
    if value < timedelta(0):  # zero is accepted as in Jobify: it skips every missed slot
        raise ValueError(f"a grace period must be >= 0, got {value!r}")


@attrs.frozen
class GracePolicy:
    """Run missed slots no older than ``value`` (back to back); skip older ones.

    Spelled as in Jobify: ``MisfirePolicy.GRACE(timedelta(minutes=5))``, field ``value``.
    """

    #: How late a missed slot may still run (``timedelta(0)`` skips them all, like SKIP).
    value: timedelta = attrs.field(validator=_positive_timedelta)

    @property
    def grace(self) -> timedelta:
        """Alias of :attr:`GracePolicy.value`."""
        return self.value

    def __str__(self) -> str:
        return f"<GracePolicy value={self.value}>"


class MisfirePolicy(enum.StrEnum):
    """What a cron job does about slots it missed (see ``docs/cron.rst``)."""

    ALL = "all"  # run every missed slot, back to back
    SKIP = "skip"  # run nothing now; wait for the next slot after now
    ONCE = "once"  # run once now, however many slots were missed

    @staticmethod
    def GRACE(value: timedelta, /) -> GracePolicy:  # Jobify spells it GRACE
        """Run the missed slots no older than ``value``; skip older ones."""
        return GracePolicy(value)


AnyMisfirePolicy: TypeAlias = MisfirePolicy | GracePolicy


def _to_policy(value: object) -> AnyMisfirePolicy:
    if isinstance(value, MisfirePolicy | GracePolicy):
        return value
    if isinstance(value, str):
        try:
            return MisfirePolicy(value)
        except ValueError:
            pass
    raise TypeError(f"misfire_policy must be a MisfirePolicy or GracePolicy, got {value!r}")


def _to_args(value: object) -> tuple[Any, ...]:
    if isinstance(value, tuple | list):
        return tuple(value)
    raise TypeError(f"args must be a tuple or list, got {value!r}")


def _to_kwargs(value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"kwargs must be a mapping, got {value!r}")
    for key in value:
        if not isinstance(key, str):
            raise TypeError(f"kwargs keys must be str, got {key!r}")
    return MappingProxyType(dict(value))


def _check_expression(_: object, __: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str):
        raise TypeError(f"a cron expression must be a str, got {value!r}")


def _check_count(minimum: int) -> Any:
    def check(_: object, attribute: attrs.Attribute[int | None], value: int | None) -> None:
        if value is None and attribute.name == "max_runs":
            return
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{attribute.name} must be an int, got {value!r}")
        if value < minimum:
            raise ValueError(f"{attribute.name} must be >= {minimum}, got {value!r}")

    return check


def _check_start(_: object, __: attrs.Attribute[datetime | None], value: object) -> None:
    if value is not None and not isinstance(value, datetime):
        raise TypeError(f"start_date must be a datetime or None, got {value!r}")


def _to_zone(value: object) -> ZoneInfo | None:
    """A ``Cron(tz=...)``: a ``ZoneInfo`` as is, a ``str`` looked up; anything else is an
    error naming the value."""
    if value is None:
        return None
    if isinstance(value, ZoneInfo):
        if value.key is None:
            raise ValueError(
                f"Cron tz: {value!r} has no IANA key (from_file?): it cannot be stored"
            )
        return value
    if not isinstance(value, str):
        raise TypeError(f"Cron tz must be a str or a zoneinfo.ZoneInfo, got {value!r}")
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"Cron tz: unknown time zone {value!r} (expected an IANA name such as 'Europe/Berlin')"
        ) from None


_ANY_TZ = timedelta(days=2)  # more than the widest gap between two zones' wall times


def _check_fires_from(parsed: CronExpression, start_date: datetime) -> None:
    """``InvalidCronExpression`` if ``parsed`` has no fire time after ``start_date``.

    The app's time zone is not known yet: the wall time of ``start_date`` is compared with
    the expression's, with ``_ANY_TZ`` of slack (the runtime checks exactly).
    """
    try:
        wall = start_date.replace(tzinfo=None) - _ANY_TZ
        parsed.next_after(wall.replace(tzinfo=UTC))
    except CronExhausted:
        raise InvalidCronExpression(
            parsed.expression,
            f"it never fires on or after its start_date {start_date.isoformat()} "
            "(its last fire time is earlier)",
        ) from None
    except OverflowError:  # a start_date within two days of year 1: nothing to check
        pass


@attrs.frozen
class Cron:
    """A cron schedule for a task: ``Cron("*/5 * * * *", max_runs=3)``.

    Validated at construction: a bad expression raises ``InvalidCronExpression``
    naming it, and so does a ``start_date`` after the expression's last fire time;
    ``max_runs``/``max_failures`` below 1 raise ``ValueError``.
    ``start_date`` may be naive (the app's time zone is applied by the runtime).
    Two crons with equal options are equal. See :doc:`/cron`.

    :param expression: The cron expression: 5, 6 or 7 fields, read as Jobify reads them.
    :param max_runs: Run at most this many times (``>= 1``), then end; ``None`` (the
        default): no limit.
    :param max_failures: End the job ``PERMANENTLY_FAILED`` after this many consecutive
        runs that did not succeed (``>= 1``, default 10).
    :param misfire_policy: What to do with runs missed while the app was stopped or late:
        :attr:`MisfirePolicy.ONCE` (the default), ``SKIP``, ``ALL`` or
        ``MisfirePolicy.GRACE(timedelta)``.
    :param start_date: No run before this time; a naive value is in the schedule's time
        zone. Default: none.
    :param tz: The time zone of this schedule (an IANA name such as ``"Europe/Berlin"`` or
        a ``ZoneInfo``), with the same DST rules as the app's; default: the app's
        ``tz``. An unknown name raises ``ValueError`` naming it.
    :param args: Positional arguments of every run.
    :param kwargs: Keyword arguments of every run.
    """

    expression: str = attrs.field(validator=_check_expression)
    max_runs: int | None = attrs.field(default=None, kw_only=True, validator=_check_count(1))
    max_failures: int = attrs.field(default=10, kw_only=True, validator=_check_count(1))
    misfire_policy: AnyMisfirePolicy = attrs.field(
        default=MisfirePolicy.ONCE, kw_only=True, converter=_to_policy
    )
    start_date: datetime | None = attrs.field(default=None, kw_only=True, validator=_check_start)
    tz: ZoneInfo | None = attrs.field(default=None, kw_only=True, converter=_to_zone)
    args: tuple[Any, ...] = attrs.field(default=(), kw_only=True, converter=_to_args, hash=False)
    kwargs: Mapping[str, Any] = attrs.field(
        factory=dict, kw_only=True, converter=_to_kwargs, hash=False
    )
    _parsed: CronExpression = attrs.field(init=False, eq=False, repr=False, hash=False)

    def __attrs_post_init__(self) -> None:
        parsed = CronExpression.parse(self.expression)
        object.__setattr__(self, "_parsed", parsed)
        if self.start_date is not None:
            _check_fires_from(parsed, self.start_date)

    @classmethod
    def coerce(cls, value: str | Cron) -> Cron:
        """``Cron`` as is; a ``str`` becomes ``Cron(value)``; anything else is a TypeError."""
        if isinstance(value, Cron):
            return value
        if isinstance(value, str):
            return cls(value)
        raise TypeError(f"cron must be a str or Cron, got {value!r}")

    @property
    def parsed(self) -> CronExpression:
        """The parsed expression (``H`` fields seeded by the expression text)."""
        return self._parsed

    def compile(self, *, hash_id: str | None = None) -> CronExpression:
        """The parsed expression; ``hash_id`` (the job id) seeds ``H`` fields if any."""
        if hash_id is None or not self._parsed.uses_hash:
            return self._parsed
        return CronExpression.parse(self.expression, hash_id=hash_id)
