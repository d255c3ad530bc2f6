"""Property tests of the pure slot arithmetic of live triggers (:mod:`jobify_trio._cron._slots`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobify_trio._cron._expression import CronExhausted, CronExpression
from jobify_trio._cron._slots import (
    MEMO_SIZE,
    MISFIRE_TOLERANCE,
    Slot,
    SlotMemo,
    Slots,
    declarative_job_id,
    on_time,
)

EXPRESSIONS = ["* * * * * * *", "*/5 * * * *", "0 9 * * 1-5", "30 2 * * *", "0 0 1 1 * 2027"]
ZONES = [UTC, ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")]
BASE = datetime(2026, 3, 1, tzinfo=UTC)


def _fresh(expr: CronExpression, moment: datetime) -> datetime | None:
    try:
        return expr.iterate(moment).next()
    except CronExhausted:
        return None


@settings(max_examples=60, deadline=None)
@given(
    expression=st.sampled_from(EXPRESSIONS),
    tz=st.sampled_from(ZONES),
    offsets=st.lists(st.integers(0, 400 * 86400), min_size=1, max_size=30),
    chain=st.integers(0, 30),
)
def test_shared_memo_answers_like_a_fresh_iterator(
    expression: str, tz: ZoneInfo, offsets: list[int], chain: int
) -> None:
    """Two triggers sharing a memo, asked about random moments and about chains of their
    own answers, always get what a fresh croniter iteration gives."""
    expr = CronExpression.parse(expression)
    memo: SlotMemo = {}
    first, second = Slots(expr, memo), Slots(expr, memo)
    for i, seconds in enumerate(offsets):
        moment = (BASE + timedelta(seconds=seconds)).astimezone(tz)
        slots = first if i % 2 else second
        got = slots.after(moment)
        want = _fresh(expr, moment)
        assert (None if got is None else got[0]) == want
        for _ in range(chain if got is not None else 0):  # a trigger's own path
            moment = got[0]  # type: ignore[index]
            got = slots.after(moment, moment.timestamp())
            assert (None if got is None else got[0]) == _fresh(expr, moment)
            if got is None:
                break
    assert len(memo) <= MEMO_SIZE


@given(offsets=st.lists(st.integers(0, 10**6), min_size=2, max_size=50))
def test_slot_stamps_match_their_datetimes_and_increase(offsets: list[int]) -> None:
    slots = Slots(CronExpression.parse("*/7 * * * * * *"), {})
    moment = BASE + timedelta(seconds=min(offsets))
    previous = moment.timestamp()
    for _ in offsets:
        got = slots.after(moment)
        assert got is not None
        assert got[1] == got[0].timestamp()
        assert got[1] > previous
        previous, moment = got[1], got[0]


@given(
    due=st.floats(0, 1e9, allow_nan=False),
    late=st.floats(-0.01, 5.0, allow_nan=False),
    gap=st.one_of(st.none(), st.floats(0.001, 100.0, allow_nan=False)),
)
def test_on_time_matches_the_model(due: float, late: float, gap: float | None) -> None:
    now = due + late
    following: Slot | None = None if gap is None else (BASE, due + gap)
    model = late <= MISFIRE_TOLERANCE and (gap is None or due + gap > now)
    assert on_time(due, following, now) is model


def test_exhausted_expression_has_no_next_slot() -> None:
    slots = Slots(CronExpression.parse("0 0 1 1 * 2027"), {})
    moment = datetime(2027, 6, 1, tzinfo=UTC)
    assert slots.after(moment) is None
    with pytest.raises(CronExhausted):
        slots.next_after(moment)


def test_declarative_job_id_is_stable() -> None:
    assert declarative_job_id("app:report") == "cron:app:report"
