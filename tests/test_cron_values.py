"""Cron, MisfirePolicy and GracePolicy: validation, equality, Jobify's spelling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobify_trio._cron._expression import CronExpression
from jobify_trio._cron._values import Cron, GracePolicy, MisfirePolicy
from jobify_trio.exceptions import InvalidCronExpression


def test_defaults() -> None:
    cron = Cron("*/5 * * * *")
    assert cron.expression == "*/5 * * * *"
    assert cron.max_runs is None
    assert cron.max_failures == 10
    assert cron.misfire_policy is MisfirePolicy.ONCE
    assert cron.start_date is None
    assert cron.args == ()
    assert dict(cron.kwargs) == {}
    assert cron.parsed == CronExpression.parse("*/5 * * * *")


def test_bad_expression_names_it() -> None:
    with pytest.raises(InvalidCronExpression, match=r"'0 0 31 2 \*'"):
        Cron("0 0 31 2 *")
    with pytest.raises(InvalidCronExpression, match="'nope'"):
        Cron("nope")


@pytest.mark.parametrize(
    ("options", "error", "named"),
    [
        ({"max_runs": 0}, ValueError, "max_runs must be >= 1, got 0"),
        ({"max_runs": -3}, ValueError, "-3"),
        ({"max_runs": 1.5}, TypeError, "1.5"),
        ({"max_runs": True}, TypeError, "True"),
        ({"max_failures": 0}, ValueError, "max_failures must be >= 1, got 0"),
        ({"max_failures": None}, TypeError, "None"),
        ({"misfire_policy": "sometimes"}, TypeError, "'sometimes'"),
        ({"misfire_policy": 3}, TypeError, "3"),
        ({"start_date": "2026-01-01"}, TypeError, "'2026-01-01'"),
        ({"args": "ab"}, TypeError, "'ab'"),
        ({"args": 7}, TypeError, "7"),
        ({"kwargs": [("a", 1)]}, TypeError, r"\[\('a', 1\)\]"),
        ({"kwargs": {1: "x"}}, TypeError, "1"),
    ],
)
def test_option_errors_name_the_value(
    options: dict[str, Any], error: type[Exception], named: str
) -> None:
    with pytest.raises(error, match=named):
        Cron("* * * * *", **options)


def test_expression_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="42"):
        Cron(42)  # type: ignore[arg-type]


def test_conversions() -> None:
    naive = datetime(2026, 1, 1, 9)
    cron = Cron("0 9 * * *", misfire_policy="all", args=[1, 2], kwargs={"a": [1]}, start_date=naive)
    assert cron.misfire_policy is MisfirePolicy.ALL
    assert cron.args == (1, 2)
    assert cron.start_date is naive  # naive kept as is; the runtime applies the app's tz
    with pytest.raises(TypeError):
        cron.kwargs["b"] = 2  # type: ignore[index]


def test_kwargs_are_copied() -> None:
    source = {"a": 1}
    cron = Cron("* * * * *", kwargs=source)
    source["a"] = 2
    assert cron.kwargs["a"] == 1


def test_frozen() -> None:
    cron = Cron("* * * * *")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        cron.max_runs = 3  # type: ignore[misc]


options = st.fixed_dictionaries(
    {},
    optional={
        "max_runs": st.none() | st.integers(1, 5),
        "max_failures": st.integers(1, 5),
        "misfire_policy": st.sampled_from(
            [*MisfirePolicy, GracePolicy(timedelta(seconds=5)), GracePolicy(timedelta(minutes=1))]
        ),
        "start_date": st.none() | st.just(datetime(2026, 1, 1, tzinfo=UTC)),
        "args": st.lists(st.integers() | st.lists(st.integers(), max_size=2), max_size=2),
        "kwargs": st.dictionaries(st.sampled_from("ab"), st.integers() | st.lists(st.integers())),
    },
)


@given(expression=st.sampled_from(["* * * * *", "0 9 * * 1-5", "@daily"]), a=options, b=options)
def test_equal_options_make_equal_crons(
    expression: str, a: dict[str, Any], b: dict[str, Any]
) -> None:
    first, second = Cron(expression, **a), Cron(expression, **b)
    defaults: dict[str, Any] = {
        "max_runs": None, "max_failures": 10, "misfire_policy": MisfirePolicy.ONCE,
        "start_date": None, "args": (), "kwargs": {},
    }  # fmt: skip

    def normalized(given: dict[str, Any]) -> dict[str, Any]:
        return {**defaults, **{k: (tuple(v) if k == "args" else v) for k, v in given.items()}}

    same = normalized(a) == normalized(b)
    assert (first == second) is same
    assert first == Cron(expression, **a)
    assert hash(first) == hash(Cron(expression, **a))  # hashable even with list arguments
    assert attrs.evolve(first) == first


def test_different_expressions_differ() -> None:
    assert Cron("* * * * *") != Cron("*/1 * * * *")


def test_coerce() -> None:
    cron = Cron("0 0 * * *", max_runs=2)
    assert Cron.coerce(cron) is cron
    assert Cron.coerce("0 0 * * *") == Cron("0 0 * * *")
    with pytest.raises(TypeError, match="12"):
        Cron.coerce(12)  # type: ignore[arg-type]
    with pytest.raises(InvalidCronExpression, match="'bad'"):
        Cron.coerce("bad")


def test_compile_seeds_hash_fields_with_the_job_id() -> None:
    cron = Cron("H H * * *")
    assert cron.compile() is cron.parsed
    a, b = cron.compile(hash_id="job-a"), cron.compile(hash_id="job-a")
    assert a == b
    assert a.hash_id == "job-a"
    plain = Cron("0 0 * * *")
    assert plain.compile(hash_id="job-a") is plain.parsed


def test_misfire_policy_spelling_matches_jobify() -> None:
    assert [p.value for p in MisfirePolicy] == ["all", "skip", "once"]
    assert str(MisfirePolicy.ALL) == "all"
    grace = MisfirePolicy.GRACE(timedelta(minutes=5))
    assert grace == GracePolicy(timedelta(minutes=5))
    assert grace.value == grace.grace == timedelta(minutes=5)
    assert str(grace) == "<GracePolicy value=0:05:00>"
    assert "GRACE" not in MisfirePolicy.__members__


@pytest.mark.parametrize("bad", [timedelta(seconds=-1), timedelta(days=-1)])
def test_grace_must_not_be_negative(bad: timedelta) -> None:
    with pytest.raises(ValueError, match=">= 0"):
        MisfirePolicy.GRACE(bad)


def test_zero_grace_is_accepted_as_in_jobify() -> None:
    # Jobify accepts GRACE(timedelta(0)): no missed slot is young enough, so it skips them
    assert MisfirePolicy.GRACE(timedelta(0)).value == timedelta(0)


def test_grace_must_be_a_timedelta() -> None:
    with pytest.raises(TypeError, match="5"):
        GracePolicy(5)  # type: ignore[arg-type]
