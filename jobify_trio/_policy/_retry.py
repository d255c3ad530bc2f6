"""Retry policy and the pure retry decision (no trio here).

The retry supervisor asks :func:`decide_retry` what to do after an attempt failed and
re-arms the next attempt through the scheduler; nothing in this module sleeps or
draws random numbers on its own (randomness is injected as ``uniform``).
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Callable, Iterable
from typing import Any, Final, TypeAlias

import attrs

__all__ = [
    "MAX_DELAY",
    "GiveUp",
    "GiveUpReason",
    "RetryAfter",
    "RetryDecision",
    "SmartRetry",
    "Uniform",
    "backoff_delay",
    "decide_retry",
    "is_retryable",
]

Uniform: TypeAlias = Callable[[float, float], float]
"""``uniform(a, b)`` returns a number in ``[a, b]``, like :func:`random.uniform`."""

ExceptionTypes: TypeAlias = tuple[type[BaseException], ...]


def _as_float(value: float) -> float:
    """Turn a real int into a float; leave anything else for the validator to reject."""
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _as_exception_types(value: type[BaseException] | Iterable[type[BaseException]]) -> Any:
    """Normalise a single class or an iterable of classes to a tuple (validated later)."""
    if isinstance(value, type):
        return (value,)
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        return value
    return tuple(value)


def _check_retries(_: object, attribute: attrs.Attribute[int], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"SmartRetry.{attribute.name} must be an int >= 0, got {value!r}")
    if value < 0:
        raise ValueError(f"SmartRetry.{attribute.name} must be >= 0, got {value!r}")


def _check_delay(_: object, attribute: attrs.Attribute[float], value: object) -> None:
    if not isinstance(value, float):
        raise TypeError(f"SmartRetry.{attribute.name} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"SmartRetry.{attribute.name} must be finite and >= 0, got {value!r}")


MAX_DELAY: Final = 100 * 365 * 86400.0
"""The largest ``max_delay`` in seconds (100 years): a retry's date stays in range."""


def _check_max_delay(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value > MAX_DELAY:
        raise ValueError(
            f"SmartRetry.{attribute.name} must be <= {MAX_DELAY:.0f} s (100 years), "
            f"got {value!r}: a retry that far away cannot be dated"
        )


def _check_factor(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 1:
        raise ValueError(f"SmartRetry.{attribute.name} must be >= 1, got {value!r}")


def _check_bool(_: object, attribute: attrs.Attribute[bool], value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"SmartRetry.{attribute.name} must be a bool, got {value!r}")


def _check_exception_types(
    _: object, attribute: attrs.Attribute[ExceptionTypes], value: object
) -> None:
    items = value if isinstance(value, tuple) else (value,)
    for cls in items:
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            raise TypeError(
                f"SmartRetry.{attribute.name} must be an exception class or a tuple of "
                f"exception classes; {cls!r} is not an exception class"
            )


@attrs.frozen
class SmartRetry:
    """How often and how fast a failed job is retried.

    Same fields, order and defaults as Jobify's ``SmartRetry`` (all may be given
    positionally), but validated at construction. ``retries`` is the number of
    retries after the first failure, so a job runs at most ``retries + 1`` times.
    Every delay is capped at ``max_delay`` (an ``initial_delay`` above it is accepted and
    capped, as in Jobify); ``max_delay`` is at most ``MAX_DELAY`` (100 years).
    Each field, and the delay it gives, is described in :doc:`/retries`.
    """

    retries: int = attrs.field(validator=_check_retries)
    initial_delay: float = attrs.field(default=0.5, converter=_as_float, validator=_check_delay)
    max_delay: float = attrs.field(
        default=60.0, converter=_as_float, validator=[_check_delay, _check_max_delay]
    )
    backoff_factor: float = attrs.field(
        default=2.0, converter=_as_float, validator=[_check_delay, _check_factor]
    )
    jitter: bool = attrs.field(default=True, validator=_check_bool)
    include_exceptions: ExceptionTypes = attrs.field(
        default=(Exception,), converter=_as_exception_types, validator=_check_exception_types
    )
    exclude_exceptions: ExceptionTypes = attrs.field(
        default=(), converter=_as_exception_types, validator=_check_exception_types
    )

    @classmethod
    def coerce(cls, value: int | SmartRetry | None, *, task_name: str) -> SmartRetry:
        """Turn a task's ``retry=`` option into a policy (``None`` means no retries)."""
        if isinstance(value, SmartRetry):
            return value
        if value is None:
            return cls(0)
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(
                f"task {task_name!r}: retry must be an int >= 0 or a SmartRetry, got {value!r}"
            )
        if value < 0:
            raise ValueError(f"task {task_name!r}: retry must be >= 0, got {value!r}")
        return cls(value)

    def compute_delay(self, attempt: int, *, uniform: Uniform = random.uniform) -> float:
        """Delay before retry number ``attempt`` (1 = first retry); Jobify's spelling."""
        return backoff_delay(self, attempt, uniform=uniform)


class GiveUpReason(enum.Enum):
    """Why no further attempt is made."""

    EXHAUSTED = "exhausted"
    """The attempt that failed was the last one allowed (``retries + 1``)."""
    NOT_RETRYABLE = "not_retryable"
    """The exception is excluded, or not included, by the policy."""


@attrs.frozen(kw_only=True)
class RetryAfter:
    """Run attempt ``next_attempt`` after ``delay`` seconds."""

    delay: float
    next_attempt: int


@attrs.frozen(kw_only=True)
class GiveUp:
    """Stop retrying; the failure becomes final (exception handlers run next)."""

    reason: GiveUpReason


RetryDecision: TypeAlias = RetryAfter | GiveUp


def is_retryable(policy: SmartRetry, exc: BaseException) -> bool:
    """Included and not excluded; an exclusion wins over an inclusion."""
    if isinstance(exc, policy.exclude_exceptions):
        return False
    return isinstance(exc, policy.include_exceptions)


def _raw_delay(policy: SmartRetry, retry_number: int) -> float:
    """``min(initial * factor ** (k - 1), max)`` without overflowing for huge ``k``."""
    if policy.initial_delay == 0.0:
        return 0.0
    try:
        grown = policy.initial_delay * policy.backoff_factor ** (retry_number - 1)
    except OverflowError:
        return policy.max_delay
    return min(grown, policy.max_delay)


def backoff_delay(policy: SmartRetry, retry_number: int, *, uniform: Uniform) -> float:
    """Seconds to wait before retry ``retry_number`` (``k >= 1``), jitter included.

    Without jitter this is ``d = min(initial_delay * backoff_factor ** (k-1), max_delay)``;
    with jitter it is ``uniform(d / 2, d)``.
    """
    if isinstance(retry_number, bool) or not isinstance(retry_number, int) or retry_number < 1:
        raise ValueError(f"retry number must be an int >= 1, got {retry_number!r}")
    delay = _raw_delay(policy, retry_number)
    if policy.jitter:
        return uniform(delay / 2, delay)
    return delay


def decide_retry(
    policy: SmartRetry, *, attempt: int, exc: BaseException, uniform: Uniform
) -> RetryDecision:
    """Decide what follows the failure of attempt number ``attempt`` (1 = the first run).

    A non-retryable exception gives up with ``NOT_RETRYABLE`` even when the attempts
    are also used up; otherwise attempt ``retries + 1`` gives up with ``EXHAUSTED``.
    """
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise ValueError(f"attempt must be an int >= 1, got {attempt!r}")
    if not is_retryable(policy, exc):
        return GiveUp(reason=GiveUpReason.NOT_RETRYABLE)
    if attempt > policy.retries:
        return GiveUp(reason=GiveUpReason.EXHAUSTED)
    return RetryAfter(
        delay=backoff_delay(policy, attempt, uniform=uniform), next_attempt=attempt + 1
    )
