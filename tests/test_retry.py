"""SmartRetry validation and the pure retry decision."""

from __future__ import annotations

import math
import random
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobify_trio._policy._retry import (
    GiveUp,
    GiveUpReason,
    RetryAfter,
    SmartRetry,
    backoff_delay,
    decide_retry,
    is_retryable,
)
from jobify_trio.exceptions import BaseJobifyError, InvalidCronExpression, JobTimeoutError


class AppError(Exception):
    pass


class TransientError(AppError):
    pass


class FatalError(AppError):
    pass


class Both(TransientError, FatalError):
    pass


EXCEPTION_TYPES: list[type[BaseException]] = [
    BaseException,
    Exception,
    KeyboardInterrupt,
    ValueError,
    UnicodeDecodeError,
    LookupError,
    KeyError,
    OSError,
    TimeoutError,
    ConnectionResetError,
    BaseJobifyError,
    JobTimeoutError,
    InvalidCronExpression,
    AppError,
    TransientError,
    FatalError,
    Both,
]


def make_exc(cls: type[BaseException]) -> BaseException:
    # Instances are built without running __init__, whose signature varies by class.
    return cls.__new__(cls)


def never_called(a: float, b: float) -> float:
    raise AssertionError("uniform must not be called")


def model_delay(policy: SmartRetry, k: int) -> float:
    """Straight from the contract, computed in log space so it cannot overflow."""
    if policy.initial_delay == 0 or policy.max_delay == 0:
        return min(policy.initial_delay, policy.max_delay)
    log_grown = math.log(policy.initial_delay) + (k - 1) * math.log(policy.backoff_factor)
    if log_grown >= math.log(policy.max_delay):
        return policy.max_delay
    return policy.initial_delay * policy.backoff_factor ** (k - 1)


finite = st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def policies(draw: st.DrawFn, jitter: bool | None = None) -> SmartRetry:
    initial = draw(finite)
    max_delay = draw(st.floats(min_value=0.0, max_value=1e7))  # below initial: capped
    return SmartRetry(
        draw(st.integers(min_value=0, max_value=30)),
        initial_delay=initial,
        max_delay=max_delay,
        backoff_factor=draw(st.floats(min_value=1.0, max_value=1e3)),
        jitter=draw(st.booleans()) if jitter is None else jitter,
    )


# --- construction -------------------------------------------------------------------------


def test_defaults_match_jobify() -> None:
    policy = SmartRetry(3)
    assert policy == SmartRetry(
        retries=3,
        initial_delay=0.5,
        max_delay=60.0,
        backoff_factor=2.0,
        jitter=True,
        include_exceptions=(Exception,),
        exclude_exceptions=(),
    )


def test_all_fields_positional_like_jobify() -> None:
    policy = SmartRetry(2, 1, 10, 3, False, ValueError, [KeyError, OSError])
    assert policy.initial_delay == 1.0
    assert isinstance(policy.initial_delay, float)
    assert policy.include_exceptions == (ValueError,)
    assert policy.exclude_exceptions == (KeyError, OSError)


def test_is_frozen_and_hashable() -> None:
    policy = SmartRetry(1)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        policy.retries = 2  # type: ignore[misc]
    assert hash(policy) == hash(SmartRetry(1))


def test_initial_delay_above_max_delay_is_accepted_and_capped() -> None:
    policy = SmartRetry(3, initial_delay=1e12, max_delay=60.0, jitter=False)
    assert [backoff_delay(policy, k, uniform=never_called) for k in (1, 2, 3)] == [60.0] * 3
    assert SmartRetry(1, initial_delay=5, max_delay=4).compute_delay(1, uniform=min) == 2.0


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"retries": -1}, ValueError, "retries must be >= 0, got -1"),
        ({"retries": True}, TypeError, "retries must be an int >= 0, got True"),
        ({"retries": 1.5}, TypeError, "got 1.5"),
        ({"retries": "3"}, TypeError, "got '3'"),
        ({"initial_delay": -0.1}, ValueError, "initial_delay must be finite and >= 0, got -0.1"),
        ({"initial_delay": math.nan}, ValueError, "initial_delay must be finite"),
        ({"max_delay": math.inf}, ValueError, "max_delay must be finite"),
        ({"initial_delay": "1"}, TypeError, "initial_delay must be a number, got '1'"),
        ({"initial_delay": True}, TypeError, "initial_delay must be a number, got True"),
        ({"max_delay": 1e12}, ValueError, "max_delay must be <= 3153600000 s (100 years), got"),
        ({"initial_delay": 1e12, "max_delay": 1e12}, ValueError, "max_delay must be <= 315"),
        ({"backoff_factor": 0.5}, ValueError, "backoff_factor must be >= 1, got 0.5"),
        ({"jitter": 1}, TypeError, "jitter must be a bool, got 1"),
        ({"include_exceptions": int}, TypeError, "<class 'int'> is not an exception class"),
        ({"include_exceptions": "ValueError"}, TypeError, "'ValueError' is not an exception"),
        ({"exclude_exceptions": (KeyError, 3)}, TypeError, "exclude_exceptions"),
        ({"exclude_exceptions": None}, TypeError, "None is not an exception class"),
    ],
)
def test_invalid_values_are_rejected_naming_them(
    kwargs: dict[str, Any], error: type[Exception], fragment: str
) -> None:
    kwargs = {"retries": 1, **kwargs}
    with pytest.raises(error) as info:
        SmartRetry(**kwargs)
    assert fragment in str(info.value)


# --- coerce -------------------------------------------------------------------------------


def test_coerce() -> None:
    policy = SmartRetry(2, jitter=False)
    assert SmartRetry.coerce(policy, task_name="t") is policy
    assert SmartRetry.coerce(4, task_name="t") == SmartRetry(retries=4)
    assert SmartRetry.coerce(None, task_name="t") == SmartRetry(retries=0)
    assert SmartRetry.coerce(0, task_name="t").retries == 0


@given(st.integers(max_value=-1))
def test_coerce_negative_names_task_and_value(value: int) -> None:
    with pytest.raises(ValueError, match="task 'mod:job'") as info:
        SmartRetry.coerce(value, task_name="mod:job")
    assert repr(value) in str(info.value)


@given(
    st.one_of(
        st.booleans(),
        st.floats(allow_nan=False),
        st.text(max_size=5),
        st.lists(st.integers(), max_size=2),
        st.just(object()),
    )
)
def test_coerce_wrong_type_names_task_and_value(value: Any) -> None:
    with pytest.raises(TypeError, match="task 'mod:job'") as info:
        SmartRetry.coerce(value, task_name="mod:job")
    assert repr(value) in str(info.value)


# --- the decision -------------------------------------------------------------------------


@given(policies(), st.sampled_from(EXCEPTION_TYPES))
def test_attempts_never_exceed_retries_plus_one(
    policy: SmartRetry, exc_type: type[BaseException]
) -> None:
    exc = make_exc(exc_type)
    attempt = 1
    while True:
        decision = decide_retry(policy, attempt=attempt, exc=exc, uniform=random.uniform)
        if isinstance(decision, GiveUp):
            break
        assert decision.next_attempt == attempt + 1
        attempt = decision.next_attempt
    assert attempt <= policy.retries + 1
    if is_retryable(policy, exc):
        assert attempt == policy.retries + 1
        assert decision.reason is GiveUpReason.EXHAUSTED
    else:
        assert attempt == 1
        assert decision.reason is GiveUpReason.NOT_RETRYABLE


@given(policies(jitter=False))
def test_delays_follow_formula_within_bounds_and_never_decrease(policy: SmartRetry) -> None:
    delays = []
    for attempt in range(1, policy.retries + 1):
        decision = decide_retry(policy, attempt=attempt, exc=ValueError(), uniform=never_called)
        assert isinstance(decision, RetryAfter)
        delays.append(decision.delay)
    for k, delay in enumerate(delays, start=1):
        assert 0.0 <= delay <= policy.max_delay
        assert delay == pytest.approx(model_delay(policy, k), rel=1e-9)
    assert delays == sorted(delays)
    if delays:
        assert delays[0] == min(policy.initial_delay, policy.max_delay)


@given(policies(jitter=True), st.integers(min_value=1, max_value=10**12), st.floats(0.0, 1.0))
def test_jitter_is_uniform_between_half_and_full_delay(
    policy: SmartRetry, k: int, fraction: float
) -> None:
    calls: list[tuple[float, float]] = []

    def uniform(a: float, b: float) -> float:
        calls.append((a, b))
        return a + fraction * (b - a)

    delay = backoff_delay(policy, k, uniform=uniform)
    d = model_delay(policy, k)
    assert len(calls) == 1
    low, high = calls[0]
    assert high == pytest.approx(d, rel=1e-9)
    assert low == high / 2
    assert low <= delay <= high


@given(st.integers(min_value=1, max_value=10**100), st.floats(1.0001, 1e300))
def test_huge_retry_numbers_do_not_overflow(k: int, factor: float) -> None:
    policy = SmartRetry(1, initial_delay=1.0, max_delay=30.0, backoff_factor=factor, jitter=False)
    delay = backoff_delay(policy, k, uniform=never_called)
    assert 1.0 <= delay <= 30.0
    assert delay == pytest.approx(model_delay(policy, k), rel=1e-9)


def test_worked_example() -> None:
    policy = SmartRetry(6, initial_delay=0.5, max_delay=5.0, jitter=False)
    delays = [backoff_delay(policy, k, uniform=never_called) for k in range(1, 7)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_zero_retries_gives_up_after_first_attempt() -> None:
    decision = decide_retry(SmartRetry(0), attempt=1, exc=ValueError(), uniform=never_called)
    assert decision == GiveUp(reason=GiveUpReason.EXHAUSTED)


def test_job_timeout_is_retried_by_default() -> None:
    exc = JobTimeoutError("job-1", 2.0)
    policy = SmartRetry(1, jitter=False)
    decision = decide_retry(policy, attempt=1, exc=exc, uniform=never_called)
    assert decision == RetryAfter(delay=0.5, next_attempt=2)


def test_base_exceptions_are_not_retried_by_default() -> None:
    decision = decide_retry(SmartRetry(3), attempt=1, exc=KeyboardInterrupt(), uniform=never_called)
    assert decision == GiveUp(reason=GiveUpReason.NOT_RETRYABLE)


def test_exclude_wins_over_include() -> None:
    policy = SmartRetry(3, include_exceptions=TimeoutError, exclude_exceptions=JobTimeoutError)
    assert is_retryable(policy, TimeoutError())
    assert not is_retryable(policy, JobTimeoutError("j", 1.0))
    decision = decide_retry(policy, attempt=3, exc=JobTimeoutError("j", 1.0), uniform=never_called)
    assert decision == GiveUp(reason=GiveUpReason.NOT_RETRYABLE)


@given(
    st.sets(st.sampled_from(EXCEPTION_TYPES)),
    st.sets(st.sampled_from(EXCEPTION_TYPES)),
    st.sampled_from(EXCEPTION_TYPES),
)
def test_include_exclude_match_model(
    include: set[type[BaseException]],
    exclude: set[type[BaseException]],
    exc_type: type[BaseException],
) -> None:
    policy = SmartRetry(1, include_exceptions=include, exclude_exceptions=exclude)
    included = any(issubclass(exc_type, cls) for cls in include)
    excluded = any(issubclass(exc_type, cls) for cls in exclude)
    assert is_retryable(policy, make_exc(exc_type)) == (included and not excluded)


@pytest.mark.parametrize("attempt", [0, -1, True, 1.0])
def test_bad_attempt_number_is_rejected(attempt: Any) -> None:
    with pytest.raises(ValueError, match="attempt must be an int >= 1"):
        decide_retry(SmartRetry(1), attempt=attempt, exc=ValueError(), uniform=never_called)


def test_compute_delay_keeps_jobify_spelling() -> None:
    policy = SmartRetry(3, initial_delay=1.0)
    assert policy.compute_delay(2, uniform=lambda a, b: b) == 2.0
    assert 1.0 <= policy.compute_delay(2) <= 2.0
