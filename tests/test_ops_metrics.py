"""Prometheus metrics read back after a known workload under virtual time."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio

from jobify_trio import Jobify, SmartRetry

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
