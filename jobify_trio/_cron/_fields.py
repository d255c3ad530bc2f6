"""Field-by-field checks of a cron expression, with errors in the user's own terms.

croniter reports errors on its internal seven-field text (``[0 61 * ? * ? *] is not
acceptable``). These checks run first, on the fields the user wrote, and name the field,
the value and what is allowed: ``minute '61' is out of range 0-59 in '61 * * * *'``.

Plain values, names, ranges, steps and lists are checked here. The extensions (``L``,
``W``, ``#``, ``H``) are checked for their numbers where they have one, and otherwise left
to croniter; :func:`engine_error` then finds the field croniter refused and names it.
Pure: no trio, no croniter import.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Final

from ..exceptions import InvalidCronExpression

__all__ = ["FIELD_NAMES", "VALUE_NAMES", "check_fields", "field_indexes", "problem_field"]

#: Field names in the seven-field order (second first, year last).
FIELD_NAMES: Final = (
    "second", "minute", "hour", "day of month", "month", "day of week", "year",
)  # fmt: skip
_SEC, _MIN, _HOUR, _DOM, _MON, _DOW, _YEAR = range(7)
_BOUNDS: Final = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 7), (1970, 2099))
#: The largest step: the field's maximum (as Jobify's parser), 129 years for the year.
_MAX_STEP: Final = (59, 59, 23, 31, 12, 7, 129)
_MONTHS: Final = (
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
)  # fmt: skip
_WEEKDAYS: Final = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
#: The names a field accepts for its values (months and weekdays), by seven-field index.
VALUE_NAMES: Final[dict[int, dict[str, int]]] = {
    _MON: {m: i for i, m in enumerate(_MONTHS, 1)},
    _DOW: {d: i for i, d in enumerate(_WEEKDAYS)},
}
_NEAREST_WEEKDAY: Final = re.compile(r"^(\d+)w$", re.ASCII)
_NTH_WEEKDAY: Final = re.compile(r"^([a-z0-9]+)#(.*)$", re.ASCII)


def field_indexes(count: int) -> tuple[int, ...]:
    """The seven-field indexes of the fields of a 5-, 6- or 7-field expression."""
    return {5: (1, 2, 3, 4, 5), 6: (1, 2, 3, 4, 5, 6)}.get(count, tuple(range(7)))


def check_fields(expression: str, fields: Sequence[str]) -> None:
    """Raise :class:`InvalidCronExpression` naming the first bad value of ``fields``.

    ``fields`` are the user's 5, 6 or 7 fields, as written (ASCII).
    """
    for index, field in zip(field_indexes(len(fields)), fields, strict=True):
        for token in field.split(","):
            problem = _token_problem(index, token)
            if problem is not None:
                raise InvalidCronExpression(expression, problem, field=FIELD_NAMES[index])


def problem_field(
    expression: str, fields: Sequence[str], accepts: Callable[[int, str], bool]
) -> InvalidCronExpression:
    """The error for an expression the engine refused: the first field it refuses alone.

    ``accepts(index, field)`` tells whether the engine takes ``field`` at the seven-field
    ``index`` with every other field left at its default.
    """
    for index, field in zip(field_indexes(len(fields)), fields, strict=True):
        if not accepts(index, field.lower()):
            low, high = _BOUNDS[index]
            reason = f"{field!r} is not valid (values {low}-{high}{_SYNTAX.get(index, '')})"
            return InvalidCronExpression(expression, reason, field=FIELD_NAMES[index])
    return InvalidCronExpression(expression, "the engine refused it")


_SYNTAX: Final = {
    _MON: ", or jan-dec",
    _DOM: ", 'L' for the last day, '15W' for the weekday nearest the 15th",
    _DOW: ", or sun-sat; 'L5' for the last Friday, 'mon#2' for the second Monday",
}


def _token_problem(index: int, token: str) -> str | None:
    """What is wrong with one list item of a field (``None``: fine, or croniter's part)."""
    lowered = token.lower()
    if lowered.startswith("h") or (lowered == "?" and index in (_DOM, _DOW)):
        return None  # H(ash) forms: croniter checks them
    special = _special_problem(index, token, lowered)
    if special is not None:
        return special or None
    base, slash, step = token.partition("/")
    if slash:
        top = _MAX_STEP[index]
        if not step.isdigit() or not 1 <= int(step) <= top:
            return f"step {step!r} of {token!r} is not a number in 1-{top}"
    if base == "*":
        return None
    return _range_problem(index, base)


def _special_problem(index: int, token: str, lowered: str) -> str | None:
    """Checks of the ``W``/``#``/``L`` extensions: a problem, ``""`` if fine, ``None`` if n/a."""
    if index == _DOM and (match := _NEAREST_WEEKDAY.match(lowered)):
        return _value_problem(index, token[: len(match[1])]) or ""
    if index == _DOW and (match := _NTH_WEEKDAY.match(lowered)):
        weekday = _value_problem(index, token[: len(match[1])])
        if weekday is not None:
            return weekday
        nth = match[2]
        ok = nth.isdigit() and 1 <= int(nth) <= 5
        return "" if ok else f"{token!r}: week number {nth!r} is out of range 1-5"
    if "l" in lowered and index in (_DOM, _DOW):
        return ""  # last day / last weekday: croniter checks them
    return None


def _range_problem(index: int, base: str) -> str | None:
    first, dash, last = base.partition("-")
    if not dash:
        return _value_problem(index, base)
    if not first or not last:
        low, high = _BOUNDS[index]
        return f"{base!r} is not a number in {low}-{high} or a range a-b"
    problem = _value_problem(index, first) or _value_problem(index, last)
    if problem is not None:
        return problem
    start, end = _number(index, first), _number(index, last)
    if index == _DOW and end == 0:
        end = 7  # a range ending on Sunday ends on 7 ("sat-sun")
    if start > end:
        return f"range {base!r} runs backwards ({start} > {end}, ranges do not wrap around)"
    return None


def _value_problem(index: int, text: str) -> str | None:
    low, high = _BOUNDS[index]
    if text.isdigit():
        return None if low <= int(text) <= high else f"{text!r} is out of range {low}-{high}"
    names = VALUE_NAMES.get(index)
    if names is None:
        return f"{text!r} is not a number in {low}-{high}"
    if text.lower() in names:
        return None
    first, last = next(iter(names)), next(reversed(names))
    return f"{text!r} is not a number in {low}-{high} or a name {first}-{last}"


def _number(index: int, text: str) -> int:
    return int(text) if text.isdigit() else VALUE_NAMES[index][text.lower()]
