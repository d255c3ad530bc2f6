"""Exception-handler validation and level-first resolution."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobify_trio._policy._handler_resolution import (
    HandlerTable,
    is_async_handler,
    resolve_handler,
    validate_exception_handlers,
)
from jobify_trio.exceptions import BaseJobifyError, InvalidCronExpression, JobTimeoutError


class AppError(Exception):
    pass


class Left(AppError):
    pass


class Right(AppError):
    pass


class Diamond(Left, Right):
    pass


class MixedIn(Diamond, KeyError):
    pass


CLASSES: list[type[BaseException]] = [
    BaseException,
    Exception,
    KeyboardInterrupt,
    ArithmeticError,
    ZeroDivisionError,
    LookupError,
    KeyError,
    ValueError,
    UnicodeError,
    UnicodeDecodeError,
    OSError,
    TimeoutError,
    BaseJobifyError,
    JobTimeoutError,
    InvalidCronExpression,
    AppError,
    Left,
    Right,
    Diamond,
    MixedIn,
]


Level = dict[type[BaseException], str]


def handler(exc: BaseException, context: object) -> str:
    return "sync"


async def async_handler(exc: BaseException, context: object) -> str:
    return "async"


# --- validation ---------------------------------------------------------------------------


def test_none_gives_empty_map() -> None:
    assert validate_exception_handlers(None, owner="task 'm:f'") == {}


def test_valid_map_is_copied() -> None:
    given_map: dict[type[BaseException], Any] = {ValueError: handler, TimeoutError: async_handler}
    result = validate_exception_handlers(given_map, owner="app")
    assert result == given_map
    assert result is not given_map


class CallableWithContext:
    def __call__(self, exc: BaseException, context: object, extra: int = 0) -> None:
        pass


@pytest.mark.parametrize(
    "value",
    [
        handler,
        async_handler,
        lambda exc, ctx: None,
        lambda *args: None,
        CallableWithContext(),
        functools.partial(lambda tag, exc, ctx: tag, "x"),
        print,
    ],
)
def test_accepted_handlers(value: Any) -> None:
    assert validate_exception_handlers({Exception: value}, owner="app") == {Exception: value}


@pytest.mark.parametrize(
    ("mapping", "fragment"),
    [
        ({"ValueError": handler}, "key 'ValueError' is not an exception class"),
        ({int: handler}, "key <class 'int'> is not an exception class"),
        ({ValueError(): handler}, "is not an exception class"),
        ({ValueError: "handler"}, "exception_handlers[ValueError] = 'handler' is not callable"),
        ({ValueError: lambda exc: None}, "must accept two positional arguments (exc, context)"),
        ({ValueError: lambda a, b, c: None}, "must accept two positional arguments"),
        ([(ValueError, handler)], "must be a mapping"),
    ],
)
def test_invalid_maps_name_owner_and_value(mapping: Any, fragment: str) -> None:
    with pytest.raises(TypeError) as info:
        validate_exception_handlers(mapping, owner="router 'billing'")
    message = str(info.value)
    assert message.startswith("router 'billing': ")
    assert fragment in message


def test_is_async_handler() -> None:
    class AsyncCallable:
        async def __call__(self, exc: BaseException, context: object) -> None:
            pass

    assert is_async_handler(async_handler)
    assert is_async_handler(functools.partial(async_handler))
    assert is_async_handler(AsyncCallable())
    assert not is_async_handler(handler)
    assert not is_async_handler(CallableWithContext())
    assert not is_async_handler(print)


# --- resolution ---------------------------------------------------------------------------


def test_task_level_beats_more_specific_app_level() -> None:
    task: Level = {Exception: "task"}
    app: Level = {ValueError: "app"}
    assert resolve_handler([task, app], ValueError()) == "task"
    assert HandlerTable.build([task, app]).resolve(ValueError()) == "task"


def test_levels_are_consulted_in_order_task_routers_app() -> None:
    task: Level = {}
    inner_router: Level = {KeyError: "inner"}
    outer_router: Level = {LookupError: "outer", ValueError: "outer-value"}
    app: Level = {Exception: "app", KeyError: "app-key"}
    table = HandlerTable.build([task, inner_router, outer_router, app])
    assert table.resolve(KeyError()) == "inner"
    assert table.resolve(IndexError()) == "outer"
    assert table.resolve(UnicodeError()) == "outer-value"
    assert table.resolve(ZeroDivisionError()) == "app"
    assert table.resolve(KeyboardInterrupt()) is None


def test_within_a_level_the_first_mro_class_wins() -> None:
    level = {AppError: "app-error", Right: "right", Left: "left", KeyError: "key"}
    # Diamond.__mro__ = Diamond, Left, Right, AppError, Exception, ...
    assert resolve_handler([level], Diamond()) == "left"
    # MixedIn.__mro__ puts Left before KeyError.
    assert resolve_handler([level], MixedIn()) == "left"
    assert resolve_handler([{Right: "right", KeyError: "key"}], MixedIn()) == "right"


def test_timeout_error_handler_catches_job_timeouts() -> None:
    levels: list[Level] = [{}, {TimeoutError: "timeout"}, {Exception: "any"}]
    table = HandlerTable.build(levels)
    assert table.resolve(JobTimeoutError("job-1", 1.0)) == "timeout"


def test_no_match_and_empty_levels() -> None:
    assert resolve_handler([], ValueError()) is None
    assert resolve_handler([{}, {}], ValueError()) is None
    assert resolve_handler([{KeyError: 1}], ValueError()) is None
    assert HandlerTable.build([{}, {}]).empty
    assert not HandlerTable.build([{}, {KeyError: 1}]).empty


def test_table_is_a_snapshot() -> None:
    level: Level = {ValueError: "before"}
    table = HandlerTable.build([level])
    level[ValueError] = "after"
    level[KeyError] = "new"
    assert table.lookup(ValueError) == "before"
    assert table.lookup(KeyError) is None


def test_cache_stays_bounded() -> None:
    table = HandlerTable.build([{AppError: "app"}])
    made = [type(f"Dyn{i}", (AppError,), {}) for i in range(3000)]
    for cls in made:
        assert table.lookup(cls) == "app"
    assert len(table._cache) <= 1024


def model(levels: Sequence[Mapping[type[BaseException], int]], exc_type: type) -> int | None:
    """For each level, all matching keys; the most specific is the one earliest in the MRO."""
    for level in levels:
        matching = [cls for cls in level if issubclass(exc_type, cls)]
        if matching:
            return level[min(matching, key=exc_type.__mro__.index)]
    return None


levels_strategy = st.lists(
    st.dictionaries(st.sampled_from(CLASSES), st.integers(), max_size=6), max_size=5
)


@given(levels_strategy, st.lists(st.sampled_from(CLASSES), min_size=1, max_size=8))
def test_resolution_matches_model(
    levels: list[dict[type[BaseException], int]], exc_types: list[type[BaseException]]
) -> None:
    table = HandlerTable.build(levels)
    for exc_type in exc_types:  # repeats exercise the cache
        expected = model(levels, exc_type)
        assert resolve_handler(levels, exc_type.__new__(exc_type)) == expected
        assert table.lookup(exc_type) == expected
