"""Cron expressions with Jobify's field layout, computed by croniter, plus our DST rule.

This module is the only place that imports croniter, so the engine can be swapped.

Field layouts (the meaning of Jobify's parser, the ``crontab`` package):

* 5 fields ``M H DoM Mon DoW`` (second 0, any year);
* 6 fields ``M H DoM Mon DoW Y`` (the sixth field is a **year**, second 0);
* 7 fields ``S M H DoM Mon DoW Y``.

Day-of-month and day-of-week are ANDed. croniter computes the local wall-clock
matches on naive datetimes; :class:`CronIterator` turns them into aware instants
with the DST rule documented in ``docs/cron.rst``.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Final

import attrs
from croniter import CroniterBadDateError, CroniterError, croniter

from jobify_trio._cron._fields import VALUE_NAMES, check_fields, problem_field
from jobify_trio.exceptions import BaseJobifyError, InvalidCronExpression

__all__ = ["CronExhausted", "CronExpression", "CronIterator"]

# Our field order (7-field layout): second, minute, hour, day of month, month, day of week, year.
_SEC, _MIN, _HOUR, _DOM, _MON, _DOW, _YEAR = range(7)
_ALIASES: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_RANGE_RE: Final = re.compile(r"^([a-z0-9]+)-([a-z0-9]+)(?:/\d+)?$", re.ASCII)
_HASH_RE: Final = re.compile(r"^h(?:\(|/|$)", re.ASCII)
_RANDOM_RE: Final = re.compile(r"^r(?:\(|/|$)", re.ASCII)
# The search horizon covers croniter's whole year range (1970..2099).
_MAX_YEARS: Final = 130
_EPOCH_PROBE: Final = datetime(1969, 12, 31, 23, 59, 59)


class CronExhausted(BaseJobifyError):
    """The expression has no fire time after the given instant (its years are over)."""

    def __init__(self, expression: str, after: datetime) -> None:
        super().__init__(f"cron expression {expression!r} has no fire time after {after}")
        self.expression = expression
        self.after = after


def _value(index: int, text: str) -> int | None:
    if text.isdigit():
        return int(text)
    return VALUE_NAMES.get(index, {}).get(text)


def _normalize_token(index: int, token: str) -> str:
    """Rewrite an equal range (``5-5``, ``7-0`` in DoW) to its single value.

    croniter expands a written equal range to the whole field; ``crontab`` (and
    common sense) reads it as that one value.
    """
    match = _RANGE_RE.match(token)
    if match is None:
        return token
    low, high = _value(index, match[1]), _value(index, match[2])
    if low is None or high is None:
        return token
    if index == _DOW and high == 0:
        high = 7  # crontab: a range ending on Sunday ends on 7 ("sat-sun", "sun-sun")
    return match[1] if low == high else token


def _to_seven_fields(expression: str) -> list[str]:
    text = expression.strip().lower()
    text = _ALIASES.get(text, text)
    fields = text.split()
    if len(fields) == 5:
        fields = ["0", *fields, "*"]
    elif len(fields) == 6:
        fields = ["0", *fields]
    elif len(fields) != 7:
        raise InvalidCronExpression(expression, f"expected 5, 6 or 7 fields, got {len(fields)}")
    if not all(field.isascii() for field in fields):
        raise InvalidCronExpression(expression, "fields must be ASCII")
    if any(_RANDOM_RE.match(field) for field in fields):
        raise InvalidCronExpression(expression, "'R' (random) is not supported")
    check_fields(expression, _user_fields(expression))
    fields = [
        ",".join(_normalize_token(i, token) for token in field.split(","))
        for i, field in enumerate(fields)
    ]
    # croniter collapses a day list of 31 entries to "*" when the other day field
    # is a literal "*", counting "L" as an entry ("2-31,L" became every day).
    # "?" means the same as "*" and turns that shortcut off.
    return [("?" if i in (_DOM, _DOW) and f == "*" else f) for i, f in enumerate(fields)]


def _user_fields(expression: str) -> list[str]:
    """The fields as the user wrote them (case kept), an alias spelled out."""
    text = expression.strip()
    return _ALIASES.get(text.lower(), text).split()


def _refused(expression: str, seed: str | None, error: Exception) -> InvalidCronExpression:
    """croniter refused the expression: name the field it refuses, in the user's terms."""

    def accepts(index: int, field: str) -> bool:
        fields = ["0", "*", "*", "?", "*", "?", "*"]
        fields[index] = field
        try:
            _engine(" ".join(fields), _EPOCH_PROBE, seed)
        except (CroniterError, ValueError, TypeError):
            return False
        return True

    refused = problem_field(expression, _user_fields(expression), accepts)
    if refused.field is None:
        return InvalidCronExpression(expression, str(error))
    return refused


def _engine(text: str, start: datetime, hash_id: str | None) -> croniter[datetime]:
    return croniter(
        text,
        start,
        ret_type=datetime,
        day_or=False,
        second_at_beginning=True,
        max_years_between_matches=_MAX_YEARS,
        hash_id=hash_id,
    )


def _is_single(values: object) -> bool:
    return isinstance(values, list) and len(values) == 1 and isinstance(values[0], int)


@attrs.frozen(kw_only=True)
class CronExpression:
    """A parsed, validated cron expression. Build it with :meth:`parse`."""

    expression: str
    hash_id: str | None
    fixed_time: bool  # second, minute and hour are each one fixed value
    uses_hash: bool
    _text: str = attrs.field(alias="text", repr=False)  # croniter text, seconds first

    @classmethod
    def parse(cls, expression: str, *, hash_id: str | None = None) -> CronExpression:
        """Parse ``expression``; raise :class:`InvalidCronExpression` naming it if invalid.

        ``hash_id`` seeds ``H`` fields; without it the expression text is the seed.
        """
        if not isinstance(expression, str):
            raise TypeError(f"a cron expression must be a str, got {expression!r}")
        fields = _to_seven_fields(expression)
        uses_hash = any(_HASH_RE.match(field) for field in fields)
        seed = (expression if hash_id is None else hash_id) if uses_hash else None
        text = " ".join(fields)
        try:
            engine = _engine(text, _EPOCH_PROBE, seed)
            engine.get_next()
        except CroniterBadDateError as e:
            raise InvalidCronExpression(expression, "it never matches any date") from e
        except (CroniterError, ValueError, TypeError) as e:
            raise _refused(expression, seed, e) from e
        # croniter keeps fields as minute, hour, dom, month, dow, second, year.
        expanded: list[object] = list(engine.expanded)
        fixed = _is_single(expanded[0]) and _is_single(expanded[1]) and _is_single(expanded[5])
        return cls(
            expression=expression,
            hash_id=hash_id if uses_hash else None,
            fixed_time=fixed,
            uses_hash=uses_hash,
            text=text,
        )

    def iterate(self, start: datetime) -> CronIterator:
        """Fire times strictly after the aware instant ``start``, in ``start``'s tzinfo."""
        return CronIterator(self, start)

    def next_after(self, moment: datetime) -> datetime:
        """The first fire time strictly after ``moment``; raises :class:`CronExhausted`."""
        return CronIterator(self, moment).next()

    def _naive_engine(self, start: datetime) -> croniter[datetime]:
        return _engine(self._text, start, self.hash_id or self.expression)

    def __str__(self) -> str:
        return self.expression


def _classify(naive: datetime, tz: tzinfo) -> tuple[datetime, datetime | None]:
    """The instant(s) of a local wall time: (first, second fold of an overlap or None).

    A wall time inside a spring gap maps to the end of the gap.
    """
    first = naive.replace(tzinfo=tz)
    second = naive.replace(tzinfo=tz, fold=1)
    off0, off1 = _offset(first), _offset(second)
    if off0 == off1:
        return first, None
    if off0 > off1:  # fall overlap: the wall time happens twice
        return first, second
    return _gap_end(naive, tz, off0, off1), None


def _offset(moment: datetime) -> timedelta:
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError(f"time zone {moment.tzinfo!r} gave no UTC offset for {moment!r}")
    return offset


def _gap_end(naive: datetime, tz: tzinfo, before: timedelta, after: timedelta) -> datetime:
    """The instant a spring gap containing ``naive`` ends (first wall time after it)."""
    low = int((naive - after).replace(tzinfo=UTC).timestamp())  # before the transition
    high = int((naive - before).replace(tzinfo=UTC).timestamp())  # after it
    while high - low > 1:
        mid = (low + high) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == after:
            high = mid
        else:
            low = mid
    return datetime.fromtimestamp(high, tz)


class CronIterator:
    """Successive fire times of one expression; keeps one croniter engine.

    Returned instants are aware, in the start's tzinfo, strictly increasing in UTC.
    Note: compare them in UTC (``.timestamp()``); Python compares two datetimes that
    share a tzinfo by wall time, ignoring ``fold``.
    """

    __slots__ = ("_engine", "_expr", "_last", "_pending", "_replay", "_simple", "_tz")

    def __init__(self, expr: CronExpression, start: datetime) -> None:
        tz = start.tzinfo
        if tz is None or start.utcoffset() is None:
            raise ValueError(f"start must be an aware datetime, got {start!r}")
        if hasattr(tz, "localize"):
            raise TypeError(f"pytz time zones are not supported, use zoneinfo: {tz!r}")
        self._expr = expr
        self._tz: tzinfo = tz
        self._simple = isinstance(tz, timezone)
        self._last = start.timestamp()
        self._pending: deque[datetime] = deque()
        self._replay: list[datetime] = []  # second folds of an overlap, in order
        self._engine = expr._naive_engine(self._naive_start(start))

    def _naive_start(self, start: datetime) -> datetime:
        local = start.astimezone(self._tz)
        wall = local.replace(tzinfo=None, fold=0)
        if not self._simple:
            first, second = _classify(wall, self._tz)
            if second is not None:  # inside an overlap: later folds may come after start
                wall -= _offset(first) - _offset(second)
        return wall

    def __iter__(self) -> Iterator[datetime]:
        return self

    def __next__(self) -> datetime:
        try:
            return self.next()
        except CronExhausted:
            raise StopIteration from None

    def next(self) -> datetime:
        """The next fire time; raises :class:`CronExhausted` when there is none."""
        while True:
            candidate = self._candidate()
            stamp = candidate.timestamp()
            if stamp > self._last:
                self._last = stamp
                return candidate

    def _source(self) -> datetime | None:
        try:
            return self._engine.get_next()
        except CroniterBadDateError:
            return None

    def _candidate(self) -> datetime:
        if self._pending:
            return self._pending.popleft()
        naive = self._source()
        if naive is None:
            if not self._replay:
                raise CronExhausted(self._expr.expression, self._last_datetime())
            self._flush()
            return self._pending.popleft()
        if self._simple:
            return naive.replace(tzinfo=self._tz)
        first, second = _classify(naive, self._tz)
        if self._replay and (second is None or first.timestamp() > self._replay[0].timestamp()):
            self._flush()  # past the overlap: its second folds come before ``first``
        if second is not None and not self._expr.fixed_time:
            self._replay.append(second)
        if self._pending:
            self._pending.append(first)
            return self._pending.popleft()
        return first

    def _flush(self) -> None:
        self._pending.extend(self._replay)
        self._replay.clear()

    def _last_datetime(self) -> datetime:
        return datetime.fromtimestamp(self._last, self._tz)
