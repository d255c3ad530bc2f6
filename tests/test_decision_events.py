"""Decision events: their fields, their order for a retried job and a misfired cron, the
worker's JSON lines for them, and no event built when no listener is registered."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import trio
from _helpers import START

from jobify_trio import (
    Cron,
    DstEvent,
    JobEvent,
    JobEventKind,
    Jobify,
    JobStatus,
    MisfirePolicy,
    RetryingEvent,
    SlotsSkippedEvent,
    SmartRetry,
    StartedEvent,
)
from jobify_trio._cli._event_log import EventLog
from jobify_trio._runtime import _decision_events, _dispatch, _events
from jobify_trio._runtime._actors import _cron_actor
from jobify_trio.testing import VirtualWallClock

BERLIN = ZoneInfo("Europe/Berlin")


def collect(app: Jobify) -> list[JobEvent]:
    events: list[JobEvent] = []
    app.add_listener(events.append)
    return events


async def test_retried_job_events_in_order_with_lateness_attempt_and_delay(
    make_app: Callable[..., Jobify], autojump_clock: trio.testing.MockClock
) -> None:
    app = make_app()
    events = collect(app)
    calls = 0

    @app.task(name="flaky", retry=SmartRetry(2, initial_delay=2, jitter=False))
    async def flaky() -> str:
        nonlocal calls
        calls += 1
        await trio.sleep(1)
        if calls == 1:
            raise ValueError("boom")
        return "ok"

    async with app:
        job = await flaky.schedule().delay(10, job_id="j")
        await job.wait()
    assert [(e.kind, e.attempt, e.status) for e in events] == [
        (JobEventKind.STARTED, 1, JobStatus.RUNNING),
        (JobEventKind.RETRYING, 1, JobStatus.FAILED),
        (JobEventKind.STARTED, 2, JobStatus.RUNNING),
        (JobEventKind.ENDED, 2, JobStatus.SUCCESS),
    ]
    first, retry, second, _ = events
    assert isinstance(first, StartedEvent)
    assert first.scheduled_at == START + timedelta(seconds=10)
    assert first.started_at == START + timedelta(seconds=10)
    assert first.lateness == timedelta(0)
    assert isinstance(retry, RetryingEvent)
    assert (retry.next_attempt, retry.delay) == (2, timedelta(seconds=2))
    assert retry.next_run == START + timedelta(seconds=13)
    assert str(retry.exception) == "boom"
    assert isinstance(second, StartedEvent)
    assert second.scheduled_at == START + timedelta(seconds=13)


async def test_a_late_start_reports_its_lateness(
    make_app: Callable[..., Jobify], autojump_clock: trio.testing.MockClock
) -> None:
    app = make_app(max_concurrency=1)
    events = collect(app)

    @app.task(name="slow")
    async def slow() -> None:
        await trio.sleep(5)

    async with app:
        await slow.push()
        second = await slow.push()  # waits for the only worker slot: starts 5 s late
        await second.wait()
    starts = [e for e in events if isinstance(e, StartedEvent) and e.job is second]
    assert [e.lateness for e in starts] == [timedelta(seconds=5)]


@pytest.mark.parametrize(
    ("policy", "ran", "coalesced"),
    [(MisfirePolicy.SKIP, 0, False), (MisfirePolicy.ONCE, 1, True)],
)
async def test_misfired_cron_events_in_order(
    make_app: Callable[..., Jobify],
    autojump_clock: trio.testing.MockClock,
    policy: MisfirePolicy,
    ran: int,
    coalesced: bool,
) -> None:
    app = make_app()
    events = collect(app)

    @app.task(name="tick")
    async def tick() -> None:
        pass

    start = START - timedelta(minutes=5)  # missed: -5 min ... 0 min (now), six slots
    cron = Cron("* * * * *", start_date=start, misfire_policy=policy, max_runs=1)
    async with app:
        job = await tick.schedule().cron(cron, job_id="c")
        await job.wait()
    assert [e.kind for e in events] == ["slots_skipped", "started", "ended"]
    skipped, started = events[0], events[1]
    assert isinstance(skipped, SlotsSkippedEvent)
    assert isinstance(started, StartedEvent)
    slots = tuple(start + timedelta(minutes=m) for m in range(6))
    if coalesced:
        assert skipped.coalesced_into == slots[0]
        assert skipped.times == slots[1:]
        assert started.scheduled_at == slots[0]
        assert started.lateness == timedelta(minutes=5)
    else:
        assert skipped.coalesced_into is None
        assert skipped.times == slots
        assert started.scheduled_at == START + timedelta(minutes=1)
        assert started.lateness == timedelta(0)
    assert skipped.count == len(skipped.times) == 6 - ran
    assert (skipped.first, skipped.last) == (skipped.times[0], skipped.times[-1])
    assert not skipped.truncated
    assert skipped.policy is policy
    assert skipped.next_run == START + timedelta(minutes=1)
    assert skipped.job is job
    assert skipped.status is JobStatus.SCHEDULED


async def run_berlin_cron(expression: str, wall: datetime) -> list[JobEvent]:
    app = Jobify(storage=False, tz=BERLIN, wall_clock=VirtualWallClock(wall.astimezone(UTC)))
    events = collect(app)

    @app.task(name="nightly")
    async def nightly() -> None:
        pass

    async with app:
        job = await nightly.schedule().cron(Cron(expression, max_runs=1), job_id="n")
        await job.wait()
    return events


async def test_dst_gap_event(autojump_clock: trio.testing.MockClock) -> None:
    events = await run_berlin_cron("30 2 * * *", datetime(2026, 3, 29, 1, 0, tzinfo=BERLIN))
    assert [e.kind for e in events] == ["dst_gap", "started", "ended"]
    gap = events[0]
    assert isinstance(gap, DstEvent)
    assert gap.slot == datetime(2026, 3, 29, 3, 0, tzinfo=BERLIN)
    assert gap.slot.utcoffset() == timedelta(hours=2)
    assert gap.wall_time == datetime(2026, 3, 29, 2, 30)
    assert gap.shift == timedelta(minutes=30)
    assert gap.skipped is None
    assert gap.next_run == gap.slot


async def test_dst_overlap_event(autojump_clock: trio.testing.MockClock) -> None:
    events = await run_berlin_cron("30 2 * * *", datetime(2026, 10, 25, 1, 0, tzinfo=BERLIN))
    assert [e.kind for e in events] == ["dst_overlap", "started", "ended"]
    overlap = events[0]
    assert isinstance(overlap, DstEvent)
    assert overlap.slot.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert overlap.wall_time == datetime(2026, 10, 25, 2, 30)
    assert overlap.skipped is not None
    assert overlap.skipped.astimezone(UTC) == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert overlap.shift == timedelta(0)


async def test_an_interval_cron_through_an_overlap_has_no_event(
    autojump_clock: trio.testing.MockClock,
) -> None:
    events = await run_berlin_cron("0 * * * *", datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN))
    assert [e.kind for e in events] == ["started", "ended"]


async def test_worker_json_and_text_lines_for_decision_events(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = Jobify(
        storage=False,
        tz=BERLIN,
        wall_clock=VirtualWallClock(datetime(2026, 3, 29, 0, 0, tzinfo=UTC)),
    )
    out, text = io.StringIO(), io.StringIO()
    app.add_listener(EventLog(app, json_lines=True, stream=out))
    app.add_listener(EventLog(app, json_lines=False, stream=text))

    @app.task(name="nightly")
    async def nightly() -> None:
        pass

    start = datetime(2026, 3, 28, 2, 30)  # naive: Berlin; two slots missed
    cron = Cron("30 2 * * *", start_date=start - timedelta(days=1), max_runs=2)
    async with app:
        await nightly.schedule().cron(cron, job_id="n")
        await trio.sleep(7200)  # the coalesced run now, the next slot an hour later
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    kinds = [r["event"] for r in records]
    assert kinds == ["slots_skipped", "started", "success", "dst_gap", "started", "success"]
    skipped, late, _, gap, started, _ = records
    assert skipped["policy"] == "once"
    assert skipped["count"] == 1
    assert skipped["first"] == "2026-03-28T02:30:00+01:00"
    assert skipped["coalesced_into"] == "2026-03-27T02:30:00+01:00"
    assert skipped["next_run"] == "2026-03-29T03:00:00+02:00"
    assert gap["slot"] == "2026-03-29T03:00:00+02:00"
    assert gap["wall_time"] == "2026-03-29T02:30:00"
    assert gap["shift"] == 1800
    assert (gap["task"], gap["job_id"]) == ("nightly", "n")
    assert started["lateness"] == 0
    assert late["scheduled_at"] == "2026-03-27T02:30:00+01:00"
    assert late["lateness"] == 2 * 86400 - 1.5 * 3600
    lines = [line.split(" ", 1)[1] for line in text.getvalue().splitlines()]
    assert lines[0].startswith("slots_skipped nightly [n] coalesced 1 slot 2026-03-28T02:30")
    assert "attempt 1; 167400.000s late (due 2026-03-27T02:30:00+01:00)" in lines[1]
    assert lines[3] == (
        "dst_gap    nightly [n] 02:30:00 does not exist on 2026-03-29 (DST gap): "
        "runs at 2026-03-29T03:00:00+02:00"
    )


async def test_worker_lines_for_a_retry_show_attempt_and_delay(
    make_app: Callable[..., Jobify], autojump_clock: trio.testing.MockClock
) -> None:
    app = make_app()
    out = io.StringIO()
    app.add_listener(EventLog(app, json_lines=True, stream=out))

    @app.task(name="flaky", retry=SmartRetry(1, initial_delay=2, jitter=False))
    async def flaky() -> None:
        raise ValueError("boom")

    async with app:
        await (await flaky.push()).wait()
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    retry = next(r for r in records if r["event"] == "retrying")
    assert (retry["next_attempt"], retry["delay"], retry["error"]) == (2, 2.0, "ValueError: boom")
    assert [r["event"] for r in records] == ["started", "retrying", "started", "failed"]


async def test_no_event_is_built_without_listeners(
    make_app: Callable[..., Jobify],
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("an event was built with no listener registered")

    for module, name in [
        (_events.JobEvent, "__init__"),
        (_events.StartedEvent, "__init__"),
        (_events.RetryingEvent, "__init__"),
        (_decision_events.SlotsSkippedEvent, "__init__"),
        (_decision_events.DstEvent, "__init__"),
    ]:
        monkeypatch.setattr(module, name, forbidden)
    monkeypatch.setattr(_dispatch, "list_skipped", forbidden)
    monkeypatch.setattr(_cron_actor, "dst_shift", forbidden)
    app = make_app(tz=BERLIN)

    @app.task(name="flaky", retry=SmartRetry(1, initial_delay=1, jitter=False))
    async def flaky() -> None:
        raise ValueError("boom")

    async with app:
        await (await flaky.push()).wait()
        cron = Cron("* * * * *", start_date=START - timedelta(minutes=3), max_runs=2)
        await (await flaky.schedule().cron(cron, job_id="c")).wait()


def test_event_values_compare_and_print() -> None:
    job = object()
    at = START + timedelta(seconds=3)
    early = StartedEvent(job, 1, at, at - timedelta(milliseconds=1))  # type: ignore[arg-type]
    assert early.lateness == timedelta(0)
    assert early == StartedEvent(job, 1, at, at - timedelta(milliseconds=1))  # type: ignore[arg-type]
    assert early != StartedEvent(job, 2, at, at)  # type: ignore[arg-type]
    assert "StartedEvent(kind=<JobEventKind.STARTED: 'started'>" in repr(early)
    assert hash(early) == hash(StartedEvent(job, 1, at, at - timedelta(milliseconds=1)))  # type: ignore[arg-type]
    plain = JobEvent(kind=JobEventKind.ENDED, job=job, attempt=1, status=JobStatus.SUCCESS)  # type: ignore[arg-type]
    assert plain.next_run is None
    assert plain.exception is None
