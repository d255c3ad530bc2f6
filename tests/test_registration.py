"""Contract §3: registering tasks, option validation at decoration time."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
import trio
from _helpers import new_app

from jobify_trio import Cron, RunMode, SmartRetry
from jobify_trio.exceptions import InvalidCronExpression, RouteAlreadyRegisteredError


async def plain(x: int) -> int:
    return x * 2


def test_bare_decorator_default_name_and_callable() -> None:
    app = new_app()
    task = app.task(plain)
    assert task.name == f"{__name__}:plain"
    assert app.tasks[task.name] is task
    assert task.__name__ == "plain"
    assert task.__wrapped__ is plain


async def test_decorated_object_is_still_the_plain_function() -> None:
    app = new_app()

    @app.task(name="double")
    async def double(x: int) -> int:
        return x * 2

    assert await double(4) == 8


def test_every_option_is_accepted_and_kept() -> None:
    app = new_app()

    def on_error(exc: Exception, context: object) -> str:
        return "handled"

    @app.task(
        name="full",
        cron=Cron("*/5 * * * *", max_runs=3),
        retry=2,
        timeout=7,
        durable=False,
        run_mode=RunMode.MAIN,
        metadata={"priority": 5},
        exception_handlers={ValueError: on_error},
    )
    def full() -> None:
        pass

    options = full.options
    assert options.cron == Cron("*/5 * * * *", max_runs=3)
    assert options.retry == SmartRetry(2)
    assert options.timeout == 7.0
    assert options.durable is False
    assert options.run_mode is RunMode.MAIN
    assert options.metadata == {"priority": 5}
    assert options.exception_handlers == {ValueError: on_error}


def test_cron_string_is_parsed_at_decoration() -> None:
    app = new_app()

    @app.task(cron="0 9 * * MON-FRI")
    async def weekday() -> None:
        pass

    assert weekday.options.cron == Cron("0 9 * * MON-FRI")


@pytest.mark.parametrize(
    ("options", "error", "pattern"),
    [
        ({"timeout": 0}, ValueError, r"task 'bad'.*timeout.*0"),
        ({"timeout": -1.5}, ValueError, r"task 'bad'.*timeout.*-1.5"),
        ({"timeout": float("nan")}, ValueError, r"task 'bad'.*timeout.*nan"),
        ({"timeout": "5"}, TypeError, r"task 'bad'.*timeout.*'5'"),
        ({"retry": -1}, ValueError, r"task 'bad'.*retry.*-1"),
        ({"retry": "3"}, TypeError, r"task 'bad'.*retry.*'3'"),
        ({"retry": 1.5}, TypeError, r"task 'bad'.*retry.*1.5"),
        ({"run_mode": "thread"}, TypeError, r"task 'bad'.*run_mode.*'thread'"),
        ({"cron": "not a cron"}, InvalidCronExpression, r"not a cron"),
        ({"cron": "61 * * * *"}, InvalidCronExpression, r"61 \* \* \* \*"),
        ({"cron": 5}, TypeError, r"task 'bad'.*cron.*5"),
        ({"durable": "yes"}, TypeError, r"task 'bad'.*durable.*'yes'"),
        ({"metadata": [1, 2]}, TypeError, r"task 'bad'.*metadata"),
        ({"exception_handlers": {"x": print}}, TypeError, r"task 'bad'"),
        ({"exception_handlers": {ValueError: 3}}, TypeError, r"task 'bad'"),
        ({"timeout": timedelta(seconds=1)}, TypeError, r"task 'bad'.*timeout"),
    ],
)
def test_bad_options_fail_at_decoration(
    options: dict[str, object], error: type[Exception], pattern: str
) -> None:
    app = new_app()
    with pytest.raises(error, match=pattern):
        app.task(name="bad", **options)(plain)
    assert "bad" not in app.tasks


async def test_infinite_timeout_means_no_limit_as_in_jobify(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = new_app()

    @app.task(timeout=math.inf)
    async def slow() -> str:
        await trio.sleep(24 * 3600)
        return "done"

    assert slow.options.timeout == math.inf
    async with app:
        assert await (await slow.push()) == "done"


def test_invalid_cron_is_a_value_error() -> None:
    assert issubclass(InvalidCronExpression, ValueError)


def test_unknown_option_is_refused() -> None:
    app = new_app()
    with pytest.raises(TypeError, match="retries"):
        app.task(retries=3)(plain)  # type: ignore[call-overload]


def test_duplicate_name_is_refused() -> None:
    app = new_app()
    app.task(name="same")(plain)
    with pytest.raises(RouteAlreadyRegisteredError, match="same"):
        app.task(name="same")(plain)


def test_registering_a_task_twice_is_refused() -> None:
    app = new_app()
    task = app.task(plain)
    with pytest.raises(TypeError, match="already a registered task"):
        app.task(task)


def test_bad_name_is_refused() -> None:
    app = new_app()
    with pytest.raises(TypeError, match="name"):
        app.task(name="")(plain)
    with pytest.raises(TypeError, match="name"):
        app.task(name=3)(plain)  # type: ignore[call-overload]


def test_app_level_validation() -> None:
    with pytest.raises(TypeError, match="tz"):
        new_app(tz=5)
    with pytest.raises(ValueError, match="max_concurrency"):
        new_app(max_concurrency=0)
    with pytest.raises(TypeError, match="wall_clock"):
        new_app(wall_clock=object())
    with pytest.raises(TypeError, match="app"):
        new_app(exception_handlers={ValueError: 3})
