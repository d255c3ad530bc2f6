"""The operations hub with one plain listener, on the system clock: the hub builds the
listener's events itself (``AttemptObserver.tell``); they must be the dispatcher's."""

from __future__ import annotations

import logging
from datetime import UTC
from typing import Any

import pytest
import trio

from jobify_trio import Jobify, RunHistory, SmartRetry
from jobify_trio._runtime._events import JobEvent, StartedEvent


def _app(events: list[JobEvent], *, history: bool) -> tuple[Jobify, Any]:
    app = Jobify(storage=False)
    if history:
        RunHistory(app)
    app.add_listener(events.append)
    calls = [0]

    @app.task(name="ok")
    async def ok() -> int:
        return 1

    @app.task(name="flaky", retry=SmartRetry(1, initial_delay=0.01, jitter=False))
    async def flaky() -> None:
        calls[0] += 1
        raise ValueError(f"boom {calls[0]}")

    @app.task(name="slow")
    async def slow() -> None:
        await trio.sleep(10)

    async def work() -> None:
        async with app:
            await (await ok.push()).wait()
            await (await flaky.push()).wait()
            running = await slow.push()
            await trio.sleep(0.01)
            await running.cancel()

    return app, work


def _fields(event: JobEvent) -> tuple[Any, ...]:
    started = event.started_at.tzinfo if isinstance(event, StartedEvent) else None
    exception = None if event.exception is None else str(event.exception)
    return (
        type(event), event.kind, event.task_name, event.attempt, event.status, exception,
        event.next_run is None, started,
    )  # fmt: skip


async def test_the_hub_tells_the_listener_what_the_dispatcher_would() -> None:
    alone: list[JobEvent] = []
    told: list[JobEvent] = []
    for events, history in ((alone, False), (told, True)):
        _, work = _app(events, history=history)
        await work()
    assert [_fields(e) for e in told] == [_fields(e) for e in alone]
    assert len(told) == 8  # ok: 2, flaky: start, retrying, start, end; slow: 2
    assert told[0].started_at.tzinfo is UTC  # type: ignore[attr-defined]


def _unset_slots(event: JobEvent) -> list[str]:
    slots = [name for cls in type(event).__mro__ for name in getattr(cls, "__slots__", ())]
    return [name for name in slots if not hasattr(event, name)]


async def test_the_hot_paths_set_every_slot_of_their_events() -> None:
    # The dispatcher's one-listener path and the hub build started and ended events
    # without __init__, setting each slot themselves: a slot added to an event class and
    # not set there fails here.
    for history in (False, True):
        events: list[JobEvent] = []
        _, work = _app(events, history=history)
        await work()
        assert {type(e) for e in events} >= {JobEvent, StartedEvent}
        assert [(e.kind, _unset_slots(e)) for e in events if _unset_slots(e)] == []


async def _seven() -> int:
    return 7


async def test_a_failing_listener_told_by_the_hub_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    def broken(event: JobEvent) -> None:
        seen.append(str(event.kind))
        raise RuntimeError(f"listener bug on {event.kind}")

    app = Jobify(storage=False)
    history = RunHistory(app)
    app.add_listener(broken)
    seven = app.task(name="seven")(_seven)
    with caplog.at_level(logging.ERROR, logger="jobify_trio"):
        async with app:
            job = await seven.push()
            assert await job == 7  # the runtime carried on
            assert [run.attempt for run in history.runs(job.id)] == [1]
    assert seen == ["started", "ended"]
    failed = [r.getMessage().rsplit(" ", 1)[-1] for r in caplog.records if "listener" in r.msg]
    assert failed == ["started", "ended"]


async def test_a_second_listener_at_a_restart_is_called_once_per_event() -> None:
    app = Jobify(storage=False)
    RunHistory(app)
    first: list[JobEvent] = []
    second: list[JobEvent] = []
    app.add_listener(first.append)

    @app.task(name="ok")
    async def ok() -> int:
        return 1

    async with app:
        await (await ok.push()).wait()
    assert [str(e.kind) for e in first] == ["started", "ended"]
    app.add_listener(second.append)  # two plain listeners now: the dispatcher calls both
    async with app:
        await (await ok.push()).wait()
    assert [str(e.kind) for e in first] == ["started", "ended"] * 2
    assert [str(e.kind) for e in second] == ["started", "ended"]
