"""CronExpression: Jobify's field layouts (differential vs `crontab`), extras, errors, DST rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from functools import cache
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from crontab import CronTab  # type: ignore[import-untyped]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobify_trio._cron._expression import CronExhausted, CronExpression
from jobify_trio.exceptions import InvalidCronExpression

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
DST_ZONES = [
    BERLIN,
    NEW_YORK,
    ZoneInfo("Australia/Lord_Howe"),  # 30-minute DST
    ZoneInfo("Australia/Sydney"),  # southern hemisphere
    ZoneInfo("America/Santiago"),  # transitions at midnight
]
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- Strategies: expressions in the grammar that both croniter and crontab accept ---

SEC, MIN, HOUR, DOM, MON, DOW, YEAR = range(7)
# (low, high, end_limit): crontab's ranges; day of week also accepts 7 (Sunday).
BOUNDS = {
    SEC: (0, 59, 59),
    MIN: (0, 59, 59),
    HOUR: (0, 23, 23),
    DOM: (1, 31, 31),
    MON: (1, 12, 12),
    DOW: (0, 6, 7),
    YEAR: (1970, 2099, 2099),
}
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


@st.composite
def spelled(draw: st.DrawFn, index: int, value: int) -> str:
    """A value as a number or, for months and weekdays, a name in random case."""
    names = MONTHS if index == MON else WEEKDAYS if index == DOW else None
    if names is None or value - (index == MON) >= len(names) or not draw(st.booleans()):
        return str(value)
    name = names[value - 1] if index == MON else names[value]
    return draw(st.sampled_from([name, name.upper(), name.capitalize()]))


@st.composite
def item(draw: st.DrawFn, index: int, years: tuple[int, int]) -> str:
    low, high, limit = BOUNDS[index]
    if index == YEAR:
        low, high, limit = years[0], years[1], years[1]
    top = limit if index == DOW else high
    kind = draw(st.sampled_from(["value", "range", "star_step", "start_step", "range_step"]))
    if kind == "value":
        return draw(spelled(index, draw(st.integers(low, top))))
    if kind == "star_step":
        return f"*/{draw(st.integers(1, max(1, limit - low)))}"
    start = draw(st.integers(low, top - 1 if top > low else low))
    if kind == "start_step":
        if start + 1 > limit:
            return str(start)
        return f"{start}/{draw(st.integers(1, limit - start))}"
    end = draw(st.integers(start, top))
    text = f"{draw(spelled(index, start))}-{draw(spelled(index, end))}"
    if kind == "range_step" and start + 1 <= limit:
        text += f"/{draw(st.integers(1, limit - start))}"
    return text


@st.composite
def field(draw: st.DrawFn, index: int, years: tuple[int, int]) -> str:
    if draw(st.integers(0, 3)) == 0:
        return "*"
    if index in (DOM, DOW) and draw(st.integers(0, 5)) == 0:
        return "?"
    if index == DOW and draw(st.integers(0, 6)) == 0:
        days = draw(st.lists(st.integers(0, 7), min_size=1, max_size=2, unique=True))
        return ",".join(f"L{d}" for d in days)
    items = draw(st.lists(item(index, years), min_size=1, max_size=3))
    if index == DOM and draw(st.integers(0, 6)) == 0:
        items.append(draw(st.sampled_from(["L", "l"])))
    return ",".join(items)


@st.composite
def expressions(draw: st.DrawFn, start_year: int) -> str:
    """A 5-, 6- or 7-field expression (Jobify layout), or an @alias."""
    if draw(st.integers(0, 15)) == 0:
        return draw(
            st.sampled_from(["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@hourly"])
        )
    years = (max(1970, start_year - 3), min(2099, start_year + 6))
    parts = {i: draw(field(i, years)) for i in range(7)}
    layout = draw(st.sampled_from([5, 6, 7]))
    order = {5: [MIN, HOUR, DOM, MON, DOW], 6: [MIN, HOUR, DOM, MON, DOW, YEAR]}.get(
        layout, list(range(7))
    )
    return " ".join(parts[i] for i in order)


def utc_instants(low: int = 1990, high: int = 2060) -> st.SearchStrategy[datetime]:
    base = datetime(low, 1, 1, tzinfo=UTC)
    span = int((datetime(high, 1, 1, tzinfo=UTC) - base).total_seconds())
    seconds = st.integers(0, span)
    micros = st.one_of(st.just(0), st.integers(0, 999_999))
    return st.builds(lambda s, us: base + timedelta(seconds=s, microseconds=us), seconds, micros)


def crontab(text: str) -> Any:
    """Jobify's parser (untyped)."""
    return CronTab(text)


def take(expr: CronExpression, start: datetime, n: int) -> list[datetime]:
    it = expr.iterate(start)
    out: list[datetime] = []
    for _ in range(n):
        try:
            out.append(it.next())
        except CronExhausted:
            break
    return out


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def is_gap_end(moment: datetime) -> bool:
    """True when a spring-forward transition happens exactly at ``moment``."""
    before = (utc(moment) - timedelta(seconds=1)).astimezone(moment.tzinfo)
    offset, previous = moment.utcoffset(), before.utcoffset()
    assert offset is not None
    assert previous is not None
    return previous < offset


def exists(moment: datetime) -> bool:
    back = utc(moment).astimezone(moment.tzinfo)
    return back.replace(tzinfo=None) == moment.replace(tzinfo=None, fold=0) and (
        back.utcoffset() == moment.utcoffset()
    )


@cache
def transitions(tz: tzinfo, year: int) -> tuple[datetime, ...]:
    """UTC instants (to the hour) just after each offset change of ``tz`` in ``year``."""
    moment = datetime(year, 1, 1, tzinfo=UTC)
    found: list[datetime] = []
    offset = moment.astimezone(tz).utcoffset()
    while moment.year == year:
        moment += timedelta(hours=1)
        current = moment.astimezone(tz).utcoffset()
        if current != offset:
            found.append(moment)
            offset = current
    return tuple(found)


near_transition = st.builds(
    lambda tz, year, index, shift: (
        tz,
        (transitions(tz, year)[index % len(transitions(tz, year))] + shift).astimezone(tz),
    ),
    st.sampled_from(DST_ZONES),
    st.integers(2024, 2028),
    st.integers(0, 1),
    st.timedeltas(-timedelta(hours=30), timedelta(hours=30)),
)


# --- Differential: our next 20 fire times equal those of `crontab` (Jobify's parser), UTC ---


@settings(SETTINGS, max_examples=150)
@given(data=st.data())
def test_next_times_equal_crontab(data: st.DataObject) -> None:
    start = data.draw(utc_instants())
    text = data.draw(expressions(start.year))
    reference = crontab(text)  # the strategy only builds expressions crontab accepts
    try:
        ours = CronExpression.parse(text).iterate(start)
    except InvalidCronExpression:
        # We reject only expressions that never match; crontab agrees.
        first = reference.next(now=datetime(1970, 1, 1, tzinfo=UTC), return_datetime=True)
        assert first is None
        return
    now = start
    for _ in range(20):
        theirs = reference.next(now=now, return_datetime=True, default_utc=True)
        try:
            mine: datetime | None = ours.next()
        except CronExhausted:
            mine = None
        if theirs is None:  # crontab stops at 2099 even without a year field
            assert mine is None or mine.year > 2099
            return
        assert mine == theirs
        now = theirs


@pytest.mark.parametrize(
    ("text", "start", "expected"),
    [
        # croniter alone reads a written equal range as the whole field.
        ("5-5 * * * *", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 0, 5, tzinfo=UTC)),
        ("0 0 * * 7-0", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 4, tzinfo=UTC)),
        # croniter alone counted "L" as a 31st day and read "2-31,L" as every day.
        ("0 9 2/1,L * *", datetime(1990, 1, 1, 1, tzinfo=UTC), datetime(1990, 1, 2, 9, tzinfo=UTC)),
        # 6 fields: the sixth is a year.
        ("0 12 1 1 * 2031", datetime(2026, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, 12, tzinfo=UTC)),
        # 7 fields: seconds first.
        ("*/10 * * * * * *", datetime(2026, 1, 1, 0, 0, 3, tzinfo=UTC),
         datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)),
        # day of month AND day of week: the next Friday the 13th.
        ("0 0 13 * 5", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 13, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_known_croniter_differences_are_fixed(
    text: str, start: datetime, expected: datetime
) -> None:
    assert CronExpression.parse(text).next_after(start) == expected
    assert crontab(text).next(now=start, return_datetime=True, default_utc=True) == expected


# --- Extras beyond crontab, and errors ---


def test_extras_nth_weekday_nearest_weekday_and_hash() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    # second Monday of the month
    assert CronExpression.parse("0 0 * * 1#2").next_after(start) == datetime(
        2026, 1, 12, tzinfo=UTC
    )
    # weekday nearest the 3rd (Jan 3 2026 is a Saturday)
    assert CronExpression.parse("0 0 3W * *").next_after(start) == datetime(2026, 1, 2, tzinfo=UTC)
    a = CronExpression.parse("H H * * *", hash_id="job-a")
    assert a.uses_hash
    assert a.fixed_time
    again = CronExpression.parse("H H * * *", hash_id="job-a")
    assert take(a, start, 3) == take(again, start, 3)
    others = {
        CronExpression.parse("H H * * *", hash_id=f"job-{i}").next_after(start) for i in range(8)
    }
    assert len(others) > 1


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "fields"),
        ("* * *", "fields"),
        ("* * * * * * * *", "fields"),
        ("0 0 31 2 *", "never"),
        ("0 0 30 2 * 2030", "never"),
        ("61 * * * *", ""),
        ("* 24 * * *", ""),
        ("0 0 * * 1,L5", ""),
        ("R * * * *", "random"),
        ("0 0 Z2 * *", ""),
        ("*/0 * * * *", ""),
        ("0 0 * foo *", ""),
        ("0 0 * * * 1969", ""),
    ],
)
def test_invalid_expressions_name_the_expression(text: str, reason: str) -> None:
    with pytest.raises(InvalidCronExpression) as info:
        CronExpression.parse(text)
    assert repr(text) in str(info.value)
    assert reason in str(info.value)
    assert info.value.expression == text


def test_non_string_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="42"):
        CronExpression.parse(42)  # type: ignore[arg-type]


def test_start_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        CronExpression.parse("* * * * *").iterate(datetime(2026, 1, 1))


def test_exhaustion_raises_and_stops_iteration() -> None:
    expr = CronExpression.parse("0 0 1 1 * 2027,2028")
    it = expr.iterate(datetime(2026, 6, 1, tzinfo=UTC))
    assert list(it) == [datetime(2027, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC)]
    with pytest.raises(CronExhausted):
        expr.next_after(datetime(2028, 1, 1, tzinfo=UTC))


def test_fire_times_are_in_the_start_timezone() -> None:
    start = datetime(2026, 7, 1, 12, tzinfo=BERLIN)
    fire = CronExpression.parse("0 13 * * *").next_after(start)
    assert fire.tzinfo is BERLIN
    assert fire == datetime(2026, 7, 1, 13, tzinfo=BERLIN)


# --- DST rule: concrete examples ---


def test_berlin_spring_gap_fires_at_end_of_gap() -> None:
    fires = take(CronExpression.parse("30 2 * * *"), datetime(2026, 3, 28, 12, tzinfo=BERLIN), 2)
    assert [f.isoformat() for f in fires] == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]


def test_berlin_fall_overlap_fixed_time_fires_once() -> None:
    fires = take(CronExpression.parse("30 2 * * *"), datetime(2026, 10, 24, 12, tzinfo=BERLIN), 2)
    assert [f.isoformat() for f in fires] == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
    ]


def test_berlin_fall_overlap_interval_keeps_utc_spacing() -> None:
    fires = take(
        CronExpression.parse("*/5 * * * *"), datetime(2026, 10, 25, 1, 55, tzinfo=BERLIN), 30
    )
    steps = {utc(b) - utc(a) for a, b in pairwise(fires)}
    assert steps == {timedelta(minutes=5)}
    assert [f.fold for f in fires].count(1) == 12  # 02:00..02:55 a second time
    assert utc(fires[-1]) - utc(fires[0]) == timedelta(minutes=145)


def test_start_inside_the_overlap_sees_the_second_fold() -> None:
    expr = CronExpression.parse("*/20 * * * *")
    first_fold = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN)
    fires = take(expr, first_fold, 4)
    assert [(f.strftime("%H:%M"), f.fold) for f in fires] == [
        ("02:40", 0), ("02:00", 1), ("02:20", 1), ("02:40", 1),
    ]  # fmt: skip
    second_fold = first_fold.replace(fold=1)
    assert [(f.strftime("%H:%M"), f.fold) for f in take(expr, second_fold, 2)] == [
        ("02:40", 1), ("03:00", 0),
    ]  # fmt: skip


# --- Properties ---


@settings(SETTINGS, max_examples=60)
@given(data=st.data(), zone_and_start=near_transition)
def test_properties_in_dst_zones(
    data: st.DataObject, zone_and_start: tuple[tzinfo, datetime]
) -> None:
    """Strictly increasing in UTC; never a nonexistent wall time; each fire matches the
    expression's fields in local time (or is the end of a gap it was moved to); and
    iterating from a later start gives exactly the later fires."""
    _, start = zone_and_start
    text = data.draw(expressions(start.year))
    try:
        expr = CronExpression.parse(text)
    except InvalidCronExpression:
        return
    fires = take(expr, start, 40)
    reference = crontab(text)
    for a, b in pairwise(fires):
        assert utc(a) < utc(b)
    for fire in fires:
        assert fire.tzinfo is start.tzinfo
        assert exists(fire)
        assert utc(fire) > utc(start)
        assert reference.test(fire.replace(tzinfo=None)) or is_gap_end(fire)
    if fires:
        # Arithmetic in UTC: aware + timedelta is wall-clock arithmetic and drops fold.
        shift = data.draw(st.timedeltas(timedelta(0), utc(fires[-1]) - utc(start)))
        later = (utc(start) + shift).astimezone(start.tzinfo)  # possibly fold=1
        expected = [f for f in fires if utc(f) > utc(later)]
        assert take(expr, later, len(expected)) == expected
        assert [f.fold for f in take(expr, later, len(expected))] == [f.fold for f in expected]


@settings(SETTINGS, max_examples=12)
@given(
    tz=st.sampled_from(DST_ZONES),
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
    second=st.integers(0, 59),
)
def test_fixed_time_fires_exactly_once_per_local_day(
    tz: tzinfo, hour: int, minute: int, second: int
) -> None:
    expr = CronExpression.parse(f"{second} {minute} {hour} * * * *")
    assert expr.fixed_time
    start = datetime(2024, 1, 1, tzinfo=tz)
    fires = take(expr, start, 3 * 366)
    days = [f.date() for f in fires]
    assert days == [days[0] + timedelta(days=i) for i in range(len(days))]  # one per day, no gaps
    for fire in fires:
        assert (fire.hour, fire.minute, fire.second) == (hour, minute, second) or is_gap_end(fire)


@settings(SETTINGS, max_examples=25)
@given(
    tz=st.sampled_from([BERLIN, NEW_YORK]),  # whole-hour offsets
    year=st.integers(2024, 2028),
    index=st.integers(0, 1),
    minutes=st.sets(st.integers(1, 59), max_size=5),
    seconds=st.sets(st.integers(1, 59), max_size=2),
)
def test_interval_schedules_keep_utc_spacing_across_transitions(
    tz: tzinfo, year: int, index: int, minutes: set[int], seconds: set[int]
) -> None:
    """With hour '*' and a fire at :00:00, the zone changes nothing: same instants as UTC."""

    def field(values: set[int]) -> str:
        return ",".join(str(v) for v in sorted({0, *values}))

    expr = CronExpression.parse(f"{field(seconds)} {field(minutes)} * * * * *")
    transition = transitions(tz, year)[index]
    start = transition - timedelta(hours=3)
    count = 6 * len({0, *minutes}) * len({0, *seconds})
    local = take(expr, start.astimezone(tz), count)
    assert [utc(f) for f in local] == take(expr, start, count)


# --- Errors in the user's terms: field, value and what is allowed, in the user's expression ---


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        # 5 fields: minute hour day-of-month month day-of-week
        ("61 * * * *", "minute", "minute '61' is out of range 0-59"),
        ("* 24 * * *", "hour", "hour '24' is out of range 0-23"),
        ("* * 32 * *", "day of month", "day of month '32' is out of range 1-31"),
        ("* * 0 * *", "day of month", "day of month '0' is out of range 1-31"),
        ("* * * 13 *", "month", "month '13' is out of range 1-12"),
        ("* * * 0 *", "month", "month '0' is out of range 1-12"),
        ("* * * * 8", "day of week", "day of week '8' is out of range 0-7"),
        # 6 fields: the sixth is a year
        ("0 0 1 1 * 1969", "year", "year '1969' is out of range 1970-2099"),
        ("0 0 1 1 * 2030-2100", "year", "year '2100' is out of range 1970-2099"),
        ("0 24 1 1 * 2030", "hour", "hour '24' is out of range 0-23"),
        # 7 fields: seconds first
        ("60 * * * * * *", "second", "second '60' is out of range 0-59"),
        ("0 60 * * * * *", "minute", "minute '60' is out of range 0-59"),
        ("0 0 0 0 * * *", "day of month", "day of month '0' is out of range 1-31"),
        ("0 0 0 * * * 2200", "year", "year '2200' is out of range 1970-2099"),
        # names
        ("0 0 * Foo *", "month", "month 'Foo' is not a number in 1-12 or a name jan-dec"),
        ("0 0 * jan-foo *", "month", "month 'foo' is not a number in 1-12 or a name jan-dec"),
        ("0 0 * * Funday", "day of week",
         "day of week 'Funday' is not a number in 0-7 or a name sun-sat"),
        ("x * * * *", "minute", "minute 'x' is not a number in 0-59"),
        ("0 0 * * * 20x6", "year", "year '20x6' is not a number in 1970-2099"),
        # lists, steps and ranges
        ("1,2,99 * * * *", "minute", "minute '99' is out of range 0-59"),
        ("1,,2 * * * *", "minute", "minute '' is not a number in 0-59"),
        ("*/0 * * * *", "minute", "minute step '0' of '*/0' is not a number in 1-59"),
        ("*/60 * * * *", "minute", "minute step '60' of '*/60' is not a number in 1-59"),
        ("* */24 * * *", "hour", "hour step '24' of '*/24' is not a number in 1-23"),
        ("0 0 1-5/x * *", "day of month",
         "day of month step 'x' of '1-5/x' is not a number in 1-31"),
        ("0 0 * * */8", "day of week", "day of week step '8' of '*/8' is not a number in 1-7"),
        ("*/61 * * * * * *", "second", "second step '61' of '*/61' is not a number in 1-59"),
        ("5-2 * * * *", "minute",
         "minute range '5-2' runs backwards (5 > 2, ranges do not wrap around)"),
        ("0 0 * dec-jan *", "month",
         "month range 'dec-jan' runs backwards (12 > 1, ranges do not wrap around)"),
        ("0 0 * * fri-mon", "day of week",
         "day of week range 'fri-mon' runs backwards (5 > 1, ranges do not wrap around)"),
        ("0 0 1 1 * 2031-2030", "year",
         "year range '2031-2030' runs backwards (2031 > 2030, ranges do not wrap around)"),
        ("-1 * * * *", "minute", "minute '-1' is not a number in 0-59 or a range a-b"),
        # extensions
        ("0 0 32W * *", "day of month", "day of month '32' is out of range 1-31"),
        ("0 0 * * mon#6", "day of week",
         "day of week 'mon#6': week number '6' is out of range 1-5"),
        ("0 0 * * 9#2", "day of week", "day of week '9' is out of range 0-7"),
        ("L * * * *", "minute", "minute 'L' is not a number in 0-59"),
        ("0 0 * * 1,L5", "day of week",
         "day of week '1,L5' is not valid (values 0-7, or sun-sat; 'L5' for the last Friday, "
         "'mon#2' for the second Monday)"),
        ("H(0-70) * * * *", "minute", "minute 'H(0-70)' is not valid (values 0-59)"),
    ],
)  # fmt: skip
def test_field_errors_name_field_value_and_range(text: str, field: str, message: str) -> None:
    with pytest.raises(InvalidCronExpression) as info:
        CronExpression.parse(text)
    assert str(info.value) == f"invalid cron expression: {message} in {text!r}"
    assert info.value.field == field
    assert info.value.expression == text
    assert isinstance(info.value, ValueError)
    assert "?" not in str(info.value)  # never croniter's internal seven-field text


@pytest.mark.parametrize(
    "text",
    ["0 0 L * *", "0 0 15W * *", "0 0 * * L5", "0 0 * * mon#2", "0 0 * * sat-sun",
     "0 0 * * 5-0", "0 0 * * */7", "*/59 * * * *", "H H * * *", "0 0 ? * mon", "@daily"],
)  # fmt: skip
def test_the_extensions_still_parse(text: str) -> None:
    CronExpression.parse(text)
