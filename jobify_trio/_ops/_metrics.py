"""Prometheus metrics of an app's jobs, fed by the job listeners.

:class:`JobMetrics` registers one listener on the app (so with no ``JobMetrics`` there is
no listener and no cost) and one collector that counts active jobs when scraped. The
per-task children of every metric are looked up once and cached, so an event costs a
dict lookup, a counter increment and, when an attempt ends, a histogram observation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .._core._job import JobStatus
from .._runtime._events import JobEvent, JobEventKind
from ..exceptions import BaseJobifyError

if TYPE_CHECKING:
    from prometheus_client.metrics import Counter as CounterChild
    from prometheus_client.metrics import Histogram as HistogramChild

    from .._api._app import Jobify

__all__ = ["DURATION_BUCKETS", "LATENESS_BUCKETS", "JobMetrics", "MetricsError"]

DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0, 1800.0)
"""Default buckets of ``jobify_trio_attempt_duration_seconds`` (1 ms to 30 min)."""
LATENESS_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0)
"""Default buckets of ``jobify_trio_start_lateness_seconds`` (1 ms to 5 min)."""


class MetricsError(BaseJobifyError):
    """The metrics could not be registered (e.g. a second JobMetrics on one registry)."""


class _TaskChildren:
    """The labelled children of every metric for one task."""

    __slots__ = (
        "cancelled",
        "duration",
        "failed",
        "lateness",
        "retried",
        "started",
        "succeeded",
        "timed_out",
    )

    def __init__(self, metrics: JobMetrics, task: str) -> None:
        self.started: CounterChild = metrics.runs_started.labels(task)
        self.succeeded: CounterChild = metrics.runs_succeeded.labels(task)
        self.failed: CounterChild = metrics.runs_failed.labels(task)
        self.timed_out: CounterChild = metrics.runs_timed_out.labels(task)
        self.cancelled: CounterChild = metrics.runs_cancelled.labels(task)
        self.retried: CounterChild = metrics.retries.labels(task)
        self.duration: HistogramChild = metrics.attempt_duration.labels(task)
        self.lateness: HistogramChild = metrics.start_lateness.labels(task)

    def ended(self, status: JobStatus) -> CounterChild:
        if status is JobStatus.SUCCESS:
            return self.succeeded
        if status is JobStatus.TIMEOUT:
            return self.timed_out
        if status is JobStatus.CANCELLED:
            return self.cancelled
        return self.failed  # FAILED, PERMANENTLY_FAILED


class _ActiveJobs(Collector):
    """``jobify_trio_jobs_scheduled`` / ``_running`` per task, counted when scraped."""

    def __init__(self, app: Jobify, namespace: str) -> None:
        self._app = app
        self._namespace = namespace

    def collect(self) -> Iterator[GaugeMetricFamily]:
        ns = self._namespace
        scheduled = GaugeMetricFamily(
            f"{ns}_jobs_scheduled", "Jobs waiting to run", labels=["task"]
        )
        running = GaugeMetricFamily(f"{ns}_jobs_running", "Jobs running now", labels=["task"])
        counts: dict[tuple[str, JobStatus], int] = {}
        for job in self._app.get_active_jobs():  # a copy: safe from a scrape thread
            key = (job.task_name, job.status)
            counts[key] = counts.get(key, 0) + 1
        for (task, status), count in sorted(counts.items()):
            if status is JobStatus.RUNNING:
                running.add_metric([task], count)
            elif status is JobStatus.SCHEDULED:
                scheduled.add_metric([task], count)
        yield scheduled
        yield running


class JobMetrics:
    """Prometheus metrics of ``app``'s jobs (create it before the app starts).

    Counters per task: ``runs_started`` (first attempts), ``runs_succeeded``,
    ``runs_failed``, ``runs_timed_out``, ``runs_cancelled``, ``retries``; histograms per
    task: ``attempt_duration_seconds`` and ``start_lateness_seconds`` (start time minus
    the time the attempt was due, ``job.exec_at``); gauges per task: ``jobs_scheduled``
    and ``jobs_running``. ``registry`` defaults to prometheus-client's global registry.
    """

    def __init__(
        self,
        app: Jobify,
        *,
        registry: CollectorRegistry | None = None,
        namespace: str = "jobify_trio",
        duration_buckets: Sequence[float] = DURATION_BUCKETS,
        lateness_buckets: Sequence[float] = LATENESS_BUCKETS,
    ) -> None:
        self.registry = REGISTRY if registry is None else registry
        try:
            self._create(namespace, duration_buckets, lateness_buckets)
            self.registry.register(_ActiveJobs(app, namespace))
        except ValueError as e:
            raise MetricsError(f"cannot register jobify_trio metrics: {e}") from e
        self._now: Callable[[], datetime] = app.wall_clock.now
        self._tasks: dict[str, _TaskChildren] = {}
        self._started: dict[str, datetime] = {}  # job id -> start of its running attempt
        app.add_listener(self)

    def _create(
        self, ns: str, duration_buckets: Sequence[float], lateness_buckets: Sequence[float]
    ) -> None:
        def counter(name: str, doc: str) -> Counter:
            return Counter(f"{ns}_{name}", doc, ["task"], registry=self.registry)

        self.runs_started = counter("runs_started", "Runs started (first attempts)")
        self.runs_succeeded = counter("runs_succeeded", "Runs that succeeded")
        self.runs_failed = counter("runs_failed", "Runs that failed for good")
        self.runs_timed_out = counter("runs_timed_out", "Runs that ended by timing out")
        self.runs_cancelled = counter("runs_cancelled", "Jobs cancelled (scheduled or running)")
        self.retries = counter("retries", "Retries scheduled after a failed attempt")
        self.attempt_duration = Histogram(
            f"{ns}_attempt_duration_seconds", "Duration of each attempt", ["task"],
            buckets=duration_buckets, registry=self.registry,
        )  # fmt: skip
        self.start_lateness = Histogram(
            f"{ns}_start_lateness_seconds", "Attempt start time minus the time it was due",
            ["task"], buckets=lateness_buckets, registry=self.registry,
        )  # fmt: skip

    def _children(self, task: str) -> _TaskChildren:
        children = self._tasks.get(task)
        if children is None:
            children = self._tasks[task] = _TaskChildren(self, task)
        return children

    def __call__(self, event: JobEvent) -> None:
        job = event.job
        children = self._children(job._task.name)
        now = self._now()
        if event.kind is JobEventKind.STARTED:
            self._started[job.id] = now
            if event.attempt == 1:
                children.started.inc()
            children.lateness.observe(max(0.0, (now - job.exec_at).total_seconds()))
            return
        began = self._started.pop(job.id, None)
        if began is not None:
            children.duration.observe((now - began).total_seconds())
        if event.kind is JobEventKind.RETRYING:
            children.retried.inc()
        else:
            children.ended(event.status).inc()
