"""plan_misfire against a brute-force model, plus real-cron cases (huge backlog, DST folds)."""

from __future__ import annotations

import bisect
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobify_trio._cron._expression import CronExhausted, CronExpression
from jobify_trio._cron._misfire import (
    MAX_LISTED_SKIPS,
    MisfirePlan,
    Skipped,
    list_skipped,
    plan_misfire,
)
from jobify_trio._cron._values import AnyMisfirePolicy, GracePolicy, MisfirePolicy

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(second: int) -> datetime:
    return T0 + timedelta(seconds=second)


class ListSchedule:
    """A finite schedule given as sorted seconds after T0."""

    def __init__(self, seconds: list[int]) -> None:
        self.slots = [at(s) for s in seconds]

    def next_after(self, moment: datetime) -> datetime:
        index = bisect.bisect_right(self.slots, moment)
        if index == len(self.slots):
            raise CronExhausted("list", moment)
        return self.slots[index]


def model(
    policy: AnyMisfirePolicy, slots: list[datetime], due: datetime, now: datetime, cap: int
) -> tuple[MisfirePlan, list[datetime]]:
    """The rules of contract §11 written as plainly as possible, over the whole list: the
    plan (without its ``skipped`` range) and the missed slots it does not run."""
    after_now = [s for s in slots if s > now]
    following = after_now[0] if after_now else None
    missed = [s for s in slots if due <= s <= now]
    if due >= now:
        return MisfirePlan(run_now=(), next_due=due), []
    if policy is MisfirePolicy.ONCE:
        return MisfirePlan(run_now=(due,), next_due=following), missed[1:]
    if policy is MisfirePolicy.SKIP:
        return MisfirePlan(run_now=(), next_due=following), missed
    oldest = max(due, now - policy.value) if isinstance(policy, GracePolicy) else due
    kept = [s for s in slots if s >= oldest]
    runs = [s for s in kept if s <= now][:cap]
    rest = kept[len(runs) :]
    next_due = rest[0] if rest else None
    more = next_due is not None and next_due < now
    plan = MisfirePlan(run_now=tuple(runs), next_due=next_due, more_missed=more)
    return plan, [s for s in missed if s < oldest]


policies = st.sampled_from(list(MisfirePolicy)) | st.builds(
    GracePolicy, st.integers(0, 40).map(lambda s: timedelta(seconds=s))
)


@given(
    seconds=st.lists(st.integers(0, 100), min_size=1, unique=True).map(sorted),
    pick=st.integers(0, 1000),
    now_second=st.integers(0, 120),
    now_micro=st.sampled_from([0, 1, 500_000]),
    policy=policies,
    cap=st.integers(1, 6),
)
def test_plan_matches_brute_force_model(
    seconds: list[int],
    pick: int,
    now_second: int,
    now_micro: int,
    policy: AnyMisfirePolicy,
    cap: int,
) -> None:
    schedule = ListSchedule(seconds)
    due = schedule.slots[pick % len(schedule.slots)]
    now = at(now_second) + timedelta(microseconds=now_micro)
    plan = plan_misfire(policy, due=due, now=now, next_after=schedule.next_after, max_catch_up=cap)
    expected, skipped = model(policy, schedule.slots, due, now, cap)
    assert attrs.evolve(plan, skipped=None) == expected
    if plan.skipped is None:
        assert skipped == []
    else:
        listed, truncated = list_skipped(plan.skipped, schedule.next_after, limit=1000)
        assert (list(listed), truncated) == (skipped, False)
        assert plan.skipped.coalesced_into == (due if policy is MisfirePolicy.ONCE else None)
        limited = list_skipped(plan.skipped, schedule.next_after, limit=1)
        assert limited == (tuple(skipped[:1]), len(skipped) > 1)


@given(
    seconds=st.lists(st.integers(0, 400), min_size=1, unique=True).map(sorted),
    policy=policies,
    cap=st.integers(1, 4),
    step=st.integers(1, 30),
)
def test_replanning_batches_runs_each_kept_slot_once_in_order(
    seconds: list[int], policy: AnyMisfirePolicy, cap: int, step: int
) -> None:
    """The actor's loop: run a batch (taking ``step`` seconds), plan again while late."""
    schedule = ListSchedule(seconds)
    due: datetime | None = schedule.slots[0]
    now = at(300)
    ran: list[datetime] = []
    while due is not None and due < now:
        plan = plan_misfire(
            policy, due=due, now=now, next_after=schedule.next_after, max_catch_up=cap
        )
        ran.extend(plan.run_now)
        assert len(plan.run_now) <= cap
        assert plan.more_missed == (plan.next_due is not None and plan.next_due < now)
        due = plan.next_due
        now += timedelta(seconds=step) if plan.run_now else timedelta(0)
    assert ran == sorted(set(ran))
    if policy is MisfirePolicy.ALL:
        assert ran == [s for s in schedule.slots if s < now]
    if policy is MisfirePolicy.SKIP:
        assert ran == []
    assert due is None or due >= now


def test_policies_by_example() -> None:
    every_minute = CronExpression.parse("* * * * *")
    due, now = at(0), at(3 * 60 + 30)  # 4 slots missed: 00:00 .. 00:03

    def plan(policy: AnyMisfirePolicy) -> MisfirePlan:
        return plan_misfire(policy, due=due, now=now, next_after=every_minute.next_after)

    assert plan(MisfirePolicy.ONCE) == MisfirePlan(
        run_now=(at(0),),
        next_due=at(240),
        skipped=Skipped(first=at(60), stop=at(240), coalesced_into=at(0)),
    )
    assert plan(MisfirePolicy.SKIP) == MisfirePlan(
        run_now=(), next_due=at(240), skipped=Skipped(first=at(0), stop=at(240))
    )
    assert plan(MisfirePolicy.ALL) == MisfirePlan(
        run_now=(at(0), at(60), at(120), at(180)), next_due=at(240)
    )
    grace = MisfirePolicy.GRACE(timedelta(minutes=2))
    assert plan(grace) == MisfirePlan(
        run_now=(at(120), at(180)), next_due=at(240), skipped=Skipped(first=at(0), stop=at(120))
    )
    assert plan(MisfirePolicy.GRACE(timedelta(0))) == plan(MisfirePolicy.SKIP)  # as in Jobify
    on_time = plan_misfire(MisfirePolicy.ALL, due=now, now=now, next_after=every_minute.next_after)
    assert on_time == MisfirePlan(run_now=(), next_due=now)


def test_a_year_of_every_second_stays_bounded() -> None:
    every_second = CronExpression.parse("* * * * * * *")
    due, now = T0, T0 + timedelta(days=365)
    began = time.perf_counter()
    batch = plan_misfire(
        MisfirePolicy.ALL, due=due, now=now, next_after=every_second.next_after, max_catch_up=50
    )
    assert batch.run_now == tuple(at(s) for s in range(50))
    assert batch.more_missed
    assert batch.next_due == at(50)
    grace = MisfirePolicy.GRACE(timedelta(seconds=10))
    recent = plan_misfire(grace, due=due, now=now, next_after=every_second.next_after)
    assert recent.run_now == tuple(now - timedelta(seconds=s) for s in range(10, -1, -1))
    assert recent.next_due == now + timedelta(seconds=1)
    assert time.perf_counter() - began < 2  # nothing enumerated the skipped year
    assert recent.skipped == Skipped(first=due, stop=now - timedelta(seconds=10))
    began = time.perf_counter()
    listed, truncated = list_skipped(recent.skipped, every_second.next_after)
    assert listed == tuple(at(s) for s in range(MAX_LISTED_SKIPS))
    assert truncated
    assert time.perf_counter() - began < 2  # the listing stops at its bound


def test_comparisons_are_made_in_utc_across_a_fall_overlap() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    every_20 = CronExpression.parse("*/20 * * * *")
    second_fold = datetime(2026, 10, 25, 2, 20, fold=1, tzinfo=berlin)  # 01:20 UTC
    earlier_wall_later = datetime(2026, 10, 25, 2, 40, tzinfo=berlin)  # 00:40 UTC
    assert plan_misfire(
        MisfirePolicy.ALL, due=second_fold, now=earlier_wall_later, next_after=every_20.next_after
    ) == (MisfirePlan(run_now=(), next_due=second_fold))
    first_fold = datetime(2026, 10, 25, 2, 0, tzinfo=berlin)  # 00:00 UTC
    now = datetime(2026, 10, 25, 2, 10, fold=1, tzinfo=berlin)  # 01:10 UTC
    plan = plan_misfire(
        MisfirePolicy.GRACE(timedelta(minutes=45)),
        due=first_fold,
        now=now,
        next_after=every_20.next_after,
    )
    assert [(p.strftime("%H:%M"), p.fold) for p in plan.run_now] == [("02:40", 0), ("02:00", 1)]
    assert plan.next_due is not None
    assert (plan.next_due.strftime("%H:%M"), plan.next_due.fold) == ("02:20", 1)


def test_exhausted_schedule_has_no_next_due() -> None:
    once = CronExpression.parse("0 0 1 1 * 2026")
    plan = plan_misfire(MisfirePolicy.ALL, due=T0, now=at(10), next_after=once.next_after)
    assert plan == MisfirePlan(run_now=(T0,), next_due=None)


def test_max_catch_up_must_be_positive() -> None:
    with pytest.raises(ValueError, match="0"):
        plan_misfire(
            MisfirePolicy.ALL,
            due=T0,
            now=at(1),
            next_after=ListSchedule([0]).next_after,
            max_catch_up=0,
        )


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="aware"):
        plan_misfire(
            MisfirePolicy.ALL,
            due=datetime(2026, 1, 1),
            now=at(1),
            next_after=ListSchedule([0]).next_after,
        )
