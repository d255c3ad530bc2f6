"""Run history: what it records per attempt, and its memory bounds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import trio
import trio.lowlevel
from _helpers import START
from hypothesis import given, settings
from hypothesis import strategies as st

from jobify_trio import Job, Jobify, JobStatus, RunHistory, SmartRetry
from jobify_trio._ops._history import _entries


async def test_records_attempts_with_times_status_and_error(
    make_app: Callable[..., Jobify], autojump_clock: trio.testing.MockClock
) -> None:
    app = make_app(tz="Europe/Berlin")
    history = RunHistory(app, per_job=5)
    calls = 0

    @app.task(name="flaky", retry=SmartRetry(1, initial_delay=2, jitter=False))
    async def flaky() -> str:
        nonlocal calls
        calls += 1
        await trio.sleep(3)
        if calls == 1:
            raise ValueError("x" * 500)
        return "ok"

    async with app:
        job = await flaky.schedule().delay(10, job_id="j1")
        await job.wait()
        runs = history.runs("j1")
    assert [(r.attempt, r.status, r.retried) for r in runs] == [
        (1, JobStatus.FAILED, True),
        (2, JobStatus.SUCCESS, False),
    ]
    first, second = runs
    assert first.duration == pytest.approx(3)
    assert second.duration == pytest.approx(3)
    assert first.started_at is not None
    assert second.started_at is not None
    assert second.started_at - first.ended_at == timedelta(seconds=2)
    assert first.error is not None
    assert first.error.startswith("ValueError: xxx")
    assert len(first.error) == 200
    assert second.error is None
    assert str(first.ended_at.tzinfo) == "Europe/Berlin"
    assert history.last("j1") == second
    assert history.finished_ids() == ["j1"]


async def test_cancelled_before_running_is_recorded_without_start(
    make_app: Callable[..., Jobify], autojump_clock: trio.testing.MockClock
) -> None:
    app = make_app()
    history = RunHistory(app)

    @app.task(name="later")
    async def later() -> None:
        pass

    async with app:
        job = await later.schedule().delay(60, job_id="c")
        await job.cancel()
    (record,) = history.runs("c")
    assert record.status is JobStatus.CANCELLED
    assert record.started_at is None
    assert record.duration is None


async def test_per_job_ring_keeps_the_last_n_runs_of_a_cron(
    make_app: Callable[..., Jobify], autojump_clock: trio.testing.MockClock
) -> None:
    app = make_app()
    history = RunHistory(app, per_job=3)

    @app.task(name="tick")
    async def tick() -> None:
        pass

    async with app:
        job = await tick.schedule().cron("* * * * *", job_id="tick")
        await trio.sleep(60 * 10 + 1)
        runs = history.runs("tick")
        assert history.running_since("tick") is None
        await job.cancel()
    assert len(runs) == 3
    assert all(r.status is JobStatus.SUCCESS for r in runs)
    assert [r.started_at.minute for r in runs if r.started_at] == [8, 9, 10]
    assert history.finished_ids() == ["tick"]  # the cancel ended it for good


async def test_job_bound_forgets_the_job_that_ended_longest_ago_first(
    make_app: Callable[..., Jobify], autojump_clock: trio.testing.MockClock
) -> None:
    app = make_app()
    history = RunHistory(app, per_job=2, max_jobs=3)

    @app.task(name="noop")
    async def noop() -> None:
        pass

    async with app:
        waiting = await noop.schedule().delay(3600, job_id="active")
        await trio.lowlevel.checkpoint()
        for i in range(5):
            await (await noop.schedule().push(job_id=f"done{i}"))
        # "active" never ran, so history saw only the five finished jobs
        assert len(history) == 3
        assert history.finished_ids() == ["done4", "done3", "done2"]
        await waiting.cancel()  # "active" ends: the oldest finished job goes
        assert history.finished_ids() == ["active", "done4", "done3"]
        assert "done2" not in history
        assert history.runs("done2") == []


async def test_job_bound_evicts_the_first_seen_when_none_ended(
    make_app: Callable[..., Jobify], autojump_clock: trio.testing.MockClock
) -> None:
    app = make_app()
    history = RunHistory(app, max_jobs=2)
    gate = trio.Event()

    @app.task(name="tick")
    async def tick() -> None:
        pass

    @app.task(name="blocked")
    async def blocked() -> None:
        await gate.wait()

    async with app:
        for i in range(3):  # three crons: active for good, each run recorded as it ends
            await tick.schedule().cron(f"{i + 1} * * * *", job_id=f"c{i}")
        await trio.sleep(181)  # one run each, at minutes 1, 2 and 3
        assert len(history) == 2
        assert "c0" not in history
        assert len(history.runs("c2")) == 1
        assert history.finished_ids() == []
        running = await blocked.push()
        await trio.sleep(1)
        assert history.running_since(running.id) is not None  # running: not yet recorded
        assert running.id not in history
        gate.set()
        await running.wait()
        assert history.running_since(running.id) is None
        assert history.finished_ids() == [running.id]
        for i in range(3):
            await app.find_job(f"c{i}").cancel()  # type: ignore[union-attr]


def test_bounds_are_validated(make_app: Callable[..., Jobify]) -> None:
    app = make_app()
    with pytest.raises(ValueError, match="per_job must be an int >= 1, got 0"):
        RunHistory(app, per_job=0)
    with pytest.raises(ValueError, match="max_jobs must be an int >= 1, got True"):
        RunHistory(app, max_jobs=True)
    assert app._listeners == []  # nothing attached by a refused history


def test_events_of_other_kinds_are_not_attempts(make_app: Callable[..., Jobify]) -> None:
    """Listeners will get more kinds of events (decision events): the sinks skip them."""
    from jobify_trio._ops._hub import hub_of

    app = make_app()
    history = RunHistory(app)

    @app.task(name="t")
    async def t() -> None:
        pass

    hub = hub_of(app)
    assert hub is not None
    job = Job._create(job_id="j", task=t, args=(), kwargs={}, exec_at=START, cancel_hook=_never)
    other = SimpleNamespace(kind="skipped", job=job, attempt=1, status=JobStatus.SCHEDULED)
    hub(other)  # type: ignore[arg-type]
    assert "j" not in history
    assert getattr(job, "_hub_start", None) is None  # no start kept for it


async def _never(job: object) -> None:
    raise AssertionError("not called")


def _filed_one_at_a_time(
    ends: list[tuple[Any, ...]], per_job: int, max_jobs: int
) -> dict[str, list[tuple[Any, ...]]]:
    """The runs a RunHistory keeps after ``ends``, by its rules taken literally: the last
    ``per_job`` runs of at most ``max_jobs`` jobs; past that bound the job that ended
    longest ago is forgotten, else (none ended) the one seen first."""
    jobs: dict[str, list[tuple[Any, ...]]] = {}
    ended: list[tuple[Any, ...]] = []  # runs that ended a job for good, oldest first
    for entry in ends:
        job_id = entry[0]
        if job_id in jobs:
            jobs[job_id] = [*jobs[job_id], entry][-per_job:]
        else:
            jobs[job_id] = [entry]
            if len(jobs) > max_jobs:
                while ended and jobs.get(ended[0][0], [None])[-1] is not ended[0]:
                    ended.pop(0)  # (no longer its job's last run)
                del jobs[ended.pop(0)[0] if ended else next(iter(jobs))]
        if not entry[6]:  # ended for good (the job does not run again)
            ended.append(entry)
    return jobs


@settings(max_examples=300, deadline=None)
@given(
    per_job=st.integers(1, 3),
    max_jobs=st.integers(1, 4),
    batches=st.lists(
        st.lists(st.tuples(st.integers(0, 6), st.booleans()), min_size=1, max_size=12),
        max_size=8,
    ),
)
def test_batches_keep_what_one_run_at_a_time_would(
    per_job: int, max_jobs: int, batches: list[list[tuple[int, bool]]]
) -> None:
    history = RunHistory(Jobify(storage=False), per_job=per_job, max_jobs=max_jobs)
    start = ("t", 1, 0.5, START)
    entries: list[tuple[Any, ...]] = []
    for batch in batches:
        ends = [
            (f"j{job}", "t", len(entries) + i, JobStatus.SUCCESS, None, False, again, 1.0, start)
            for i, (job, again) in enumerate(batch)
        ]
        entries.extend(ends)
        history.record(ends)
        kept = {job_id: _entries(runs) for job_id, runs in history._jobs.items()}
        expected = _filed_one_at_a_time(entries, per_job, max_jobs)
        assert list(kept) == list(expected)
        assert kept == expected


async def test_a_listener_and_the_history_see_one_start_time_on_the_system_clock() -> None:
    # with the hub and one listener, the started event takes the hub's clock reading
    app = Jobify(storage=False)
    history = RunHistory(app)
    started: dict[str, Any] = {}  # by job id: jobs pushed in a loop may start in any order

    @app.task(name="noop")
    async def noop() -> None:
        return None

    def listener(event: Any) -> None:
        if event.kind == "started":
            started[event.job.id] = event.started_at

    app.add_listener(listener)
    async with app:
        jobs = [await noop.push() for _ in range(5)]
        await app.wait_all()
        recorded = {job.id: history.runs(job.id)[0].started_at for job in jobs}
    assert recorded == started
