"""Prometheus metrics read back after a known workload under virtual time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from itertools import groupby
from operator import itemgetter
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from jobify_trio import Jobify, JobStatus, SmartRetry

prometheus_client = pytest.importorskip("prometheus_client")

from jobify_trio.metrics import JobMetrics, MetricsError  # noqa: E402


def value(registry: object, name: str, **labels: str) -> float:
    got = registry.get_sample_value(name, labels)  # type: ignore[attr-defined]
    return 0.0 if got is None else float(got)


async def test_counters_histograms_and_gauges_after_a_known_workload(
    make_app: Callable[..., Jobify], autojump_clock: trio.testing.MockClock
) -> None:
    registry = prometheus_client.CollectorRegistry()
    app = make_app()
    JobMetrics(app, registry=registry)
    calls = 0
    gate = trio.Event()

    @app.task(name="ok")
    async def ok() -> None:
        await trio.sleep(0.2)

    @app.task(name="flaky", retry=SmartRetry(2, initial_delay=1, jitter=False))
    async def flaky() -> None:
        nonlocal calls
        calls += 1
        raise ValueError(calls)

    @app.task(name="slow", timeout=2)
    async def slow() -> None:
        await trio.sleep(10)

    @app.task(name="blocked")
    async def blocked() -> None:
        await gate.wait()

    async with app:
        for _ in range(3):
            await ok.push()
        late = await ok.schedule().delay(5)
        await (await flaky.schedule().push()).wait()
        await (await slow.schedule().push()).wait()
        await late.wait()
        running = await blocked.push()
        pending = await ok.schedule().delay(100)
        await trio.sleep(0.5)
        assert value(registry, "jobify_trio_jobs_running", task="blocked") == 1
        assert value(registry, "jobify_trio_jobs_scheduled", task="ok") == 1
        assert value(registry, "jobify_trio_jobs_running", task="ok") == 0
        gate.set()
        await running.wait()
        await pending.cancel()
    assert value(registry, "jobify_trio_runs_started_total", task="ok") == 4
    assert value(registry, "jobify_trio_runs_succeeded_total", task="ok") == 4
    assert value(registry, "jobify_trio_runs_cancelled_total", task="ok") == 1
    assert value(registry, "jobify_trio_runs_started_total", task="flaky") == 1
    assert value(registry, "jobify_trio_retries_total", task="flaky") == 2
    assert value(registry, "jobify_trio_runs_failed_total", task="flaky") == 1
    assert value(registry, "jobify_trio_runs_timed_out_total", task="slow") == 1
    assert value(registry, "jobify_trio_runs_succeeded_total", task="blocked") == 1
    # four attempts of 0.2 s each: all in the 0.5 s bucket, none in the 0.1 s one
    duration = "jobify_trio_attempt_duration_seconds"
    assert value(registry, f"{duration}_count", task="ok") == 4
    assert value(registry, f"{duration}_sum", task="ok") == pytest.approx(0.8)
    assert value(registry, f"{duration}_bucket", task="ok", le="0.1") == 0
    assert value(registry, f"{duration}_bucket", task="ok", le="0.5") == 4
    assert value(registry, f"{duration}_count", task="flaky") == 3
    assert value(registry, f"{duration}_sum", task="slow") == pytest.approx(2)
    # virtual time: every attempt started exactly when due
    lateness = "jobify_trio_start_lateness_seconds"
    assert value(registry, f"{lateness}_count", task="ok") == 4
    assert value(registry, f"{lateness}_sum", task="ok") == 0
    assert value(registry, f"{lateness}_count", task="flaky") == 3


async def test_lateness_is_start_minus_exec_at(
    make_app: Callable[..., Jobify], autojump_clock: trio.testing.MockClock
) -> None:
    registry = prometheus_client.CollectorRegistry()
    app = make_app(max_concurrency=1)
    JobMetrics(app, registry=registry)

    @app.task(name="busy")
    async def busy() -> None:
        await trio.sleep(3)

    async with app:
        first = await busy.push()
        second = await busy.push()  # waits for the only worker: starts 3 s late
        await first.wait()
        await second.wait()
    assert value(registry, "jobify_trio_start_lateness_seconds_sum", task="busy") == 3
    assert value(registry, "jobify_trio_start_lateness_seconds_bucket", task="busy", le="1.0") == 1


async def test_a_scrape_counts_a_running_start_once(
    make_app: Callable[..., Jobify], autojump_clock: trio.testing.MockClock
) -> None:
    """A start is counted when it starts: a scrape during a long attempt sees it, and
    neither a second scrape nor the attempt's end counts it again (nor a retry's start,
    counted at its end)."""
    registry = prometheus_client.CollectorRegistry()
    app = make_app()
    JobMetrics(app, registry=registry)
    gate = trio.Event()
    calls = 0

    @app.task(name="long", retry=SmartRetry(1, initial_delay=1, jitter=False))
    async def long() -> None:
        nonlocal calls
        calls += 1
        await gate.wait()
        if calls == 1:
            raise ValueError("again")

    started, lateness = "jobify_trio_runs_started_total", "jobify_trio_start_lateness_seconds"
    async with app:
        job = await long.push()
        await trio.sleep(1)
        for _ in range(2):  # two scrapes while the first attempt runs
            assert value(registry, started, task="long") == 1
            assert value(registry, f"{lateness}_count", task="long") == 1
        gate.set()
        await job.wait()
    assert calls == 2
    assert value(registry, started, task="long") == 1  # (first attempts)
    assert value(registry, f"{lateness}_count", task="long") == 2
    assert value(registry, "jobify_trio_retries_total", task="long") == 1
    assert value(registry, "jobify_trio_runs_succeeded_total", task="long") == 1


def test_a_second_registration_on_one_registry_is_a_clear_error(
    make_app: Callable[..., Jobify],
) -> None:
    registry = prometheus_client.CollectorRegistry()
    JobMetrics(make_app(), registry=registry)
    with pytest.raises(MetricsError, match="cannot register jobify_trio metrics"):
        JobMetrics(make_app(), registry=registry)


def test_no_metrics_means_no_listener(make_app: Callable[..., Jobify]) -> None:
    app = make_app()
    assert app._listeners == []
    JobMetrics(app, registry=prometheus_client.CollectorRegistry())
    assert len(app._listeners) == 1


def _counted_one_at_a_time(stats: Any, ends: list[tuple[Any, ...]]) -> None:
    """What ``JobMetrics.record`` does to one task's ``stats``, one attempt at a time (the
    sums per batch, in order), to check its batched counting against: each end counts
    its attempt's start, then its own outcome."""
    from bisect import bisect_left

    from jobify_trio._ops import _metrics

    late_total, total = 0.0, 0.0
    for _, _, _, status, _, retried, _, now, start in ends:
        if start is not None:
            _, attempt, started, due = start
            stats.counts[_metrics._STARTED] += attempt == 1
            late = started - due.timestamp()
            stats.lateness.counts[bisect_left(stats.lateness.bounds, late)] += 1
            if late > 0.0:  # (early is on time)
                late_total += late
            stats.duration.counts[bisect_left(stats.duration.bounds, now - started)] += 1
            total += now - started
        outcome = _metrics._RETRIED if retried else _metrics._ENDED.get(status, _metrics._FAILED)
        stats.counts[outcome] += 1
    stats.lateness.total += late_total
    stats.duration.total += total


@settings(max_examples=200, deadline=None)
@given(
    batches=st.lists(
        st.lists(
            st.tuples(
                st.sampled_from(["a", "b"]),
                st.integers(1, 3),
                st.floats(-0.01, 400, allow_nan=False),  # lateness
                st.one_of(st.none(), st.floats(0, 2000, allow_nan=False)),  # duration
                st.sampled_from(list(JobStatus)),
                st.booleans(),  # retried
            ),
            min_size=1,
            max_size=40,
        ),
        max_size=5,
    )
)
def test_batched_counting_matches_counting_one_attempt_at_a_time(
    batches: list[list[tuple[Any, ...]]],
) -> None:
    from jobify_trio._ops._metrics import _TaskStats

    app = Jobify(storage=False)
    metrics = JobMetrics(app, registry=prometheus_client.CollectorRegistry())
    expected = {
        task: _TaskStats(metrics._duration_bounds, metrics._lateness_bounds) for task in "ab"
    }
    due = datetime(2026, 1, 1, tzinfo=UTC)
    for batch in batches:
        ends = []
        for task, attempt, late, took, status, retried in batch:
            started = due.timestamp() + late
            start = None if took is None else (task, attempt, started, due)
            ended = started if took is None else started + took
            ends.append(("id", task, attempt, status, None, retried, False, ended, start))
        metrics.record(ends)
        for task, runs in groupby(ends, itemgetter(1)):  # (as the sums are, per run)
            _counted_one_at_a_time(expected[task], list(runs))
    for task, stats in metrics._tasks.items():
        want = expected[task]
        assert stats.counts == want.counts
        assert stats.lateness.counts == want.lateness.counts
        assert stats.lateness.total == want.lateness.total
        assert stats.duration.counts == want.duration.counts
        assert stats.duration.total == want.duration.total
