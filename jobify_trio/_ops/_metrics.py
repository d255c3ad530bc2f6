"""Prometheus metrics of an app's jobs, fed by the job events (as a sink of the hub).

:class:`JobMetrics` attaches one sink to the app's job events (so with no ``JobMetrics``
there is no listener and no cost) and registers one prometheus-client collector. It is a
batch sink of the hub: batches of attempt ends (each holding its attempt's start) only
add to plain per-task numbers (an increment, and a ``bisect`` into the bucket bounds);
prometheus-client turns them into metric families when the registry is collected
(scraped, which flushes the hub's log first), and writes the exposition format.

A start is counted when it starts, as far as a scrape can tell: a scrape also counts the
starts of the attempts running then (their start entries, read from the running jobs),
and remembers them, so that their ends do not count them again; every other start is
counted with its end, in the same loop.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from itertools import groupby
from operator import itemgetter
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .._core._job import JobStatus
from ..exceptions import BaseJobifyError
from ._hub import EndEntry, StartEntry, attach

if TYPE_CHECKING:
    from .._api._app import Jobify
    from .._runtime._runtime import Runtime

__all__ = ["DURATION_BUCKETS", "LATENESS_BUCKETS", "JobMetrics", "MetricsError"]

DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0, 1800.0)
"""Default buckets of ``jobify_trio_attempt_duration_seconds`` (1 ms to 30 min)."""
LATENESS_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0)
"""Default buckets of ``jobify_trio_start_lateness_seconds`` (1 ms to 5 min)."""

# (name without the namespace and "_total", help): _TaskStats.counts holds them in order
_COUNTERS = (
    ("runs_started", "Runs started (first attempts)"),
    ("runs_succeeded", "Runs that succeeded"),
    ("runs_failed", "Runs that failed for good"),
    ("runs_timed_out", "Runs that ended by timing out"),
    ("runs_cancelled", "Jobs cancelled (scheduled or running)"),
    ("retries", "Retries scheduled after a failed attempt"),
)
_STARTED, _SUCCEEDED, _FAILED, _TIMED_OUT, _CANCELLED, _RETRIED = range(len(_COUNTERS))
_ENDED = {
    JobStatus.SUCCESS: _SUCCEEDED,
    JobStatus.FAILED: _FAILED,
    JobStatus.PERMANENTLY_FAILED: _FAILED,
    JobStatus.TIMEOUT: _TIMED_OUT,
    JobStatus.CANCELLED: _CANCELLED,
}
_SUCCESS = JobStatus.SUCCESS


class MetricsError(BaseJobifyError):
    """The metrics could not be registered (e.g. a second JobMetrics on one registry)."""


class _Histogram:
    """Bucket counts (not cumulative; the last one is +Inf) and the sum of observations.

    An observation ``v`` counts in ``counts[bisect_left(bounds, v)]``: the first bucket
    whose bound is >= v (Prometheus buckets are "less or equal"). ``JobMetrics.record``
    does that inline.
    """

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def cumulative(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append((floatToGoString(bound), float(running)))  # type: ignore[no-untyped-call]
        return out


_task_of_end = itemgetter(1)


class _TaskStats:
    __slots__ = ("counts", "duration", "lateness")

    def __init__(self, duration: tuple[float, ...], lateness: tuple[float, ...]) -> None:
        self.counts = [0] * len(_COUNTERS)
        self.duration = _Histogram(duration)
        self.lateness = _Histogram(lateness)


def _bounds(name: str, buckets: Sequence[float]) -> tuple[float, ...]:
    bounds = tuple(float(b) for b in buckets)
    if not bounds or list(bounds) != sorted(set(bounds)) or bounds[-1] == float("inf"):
        raise ValueError(f"{name} must be increasing finite bounds, got {buckets!r}")
    return bounds


class JobMetrics:
    """Prometheus metrics of ``app``'s jobs (create it before the app starts).

    Counters per task: ``runs_started`` (first attempts), ``runs_succeeded``,
    ``runs_failed``, ``runs_timed_out``, ``runs_cancelled``, ``retries``; histograms per
    task: ``attempt_duration_seconds`` and ``start_lateness_seconds`` (start time minus
    the time the attempt was due, ``job.exec_at``); gauges per task: ``jobs_scheduled``
    and ``jobs_running``. All are named ``<namespace>_...``. ``registry`` defaults to
    prometheus-client's global registry.
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
        self._app = app
        self._ns = namespace
        self._duration_bounds = _bounds("duration_buckets", duration_buckets)
        self._lateness_bounds = _bounds("lateness_buckets", lateness_buckets)
        self._tasks: dict[str, _TaskStats] = {}
        # job id: the start entry of its running attempt, counted by a scrape (its end
        # must not count it again); only touched under the hub's lock
        self._early: dict[str, StartEntry] = {}
        self.registry = REGISTRY if registry is None else registry
        try:
            self.registry.register(_Collector(self))
        except ValueError as e:
            raise MetricsError(f"cannot register jobify_trio metrics: {e}") from e
        self._hub = attach(app, self, "JobMetrics")

    # -- the hot path --------------------------------------------------------------------

    async def _app_starting(self, runtime: Runtime) -> None:
        """Nothing to load: the metrics start from zero with the process."""

    def _app_stopping(self) -> None:
        """Nothing to store."""

    def record(self, ends: Sequence[EndEntry]) -> None:
        """Count a batch of attempt ends and their starts (called by the app's operations
        listener, see ``jobify_trio._ops._hub``): in runs of one task (usually the whole
        batch), each counted into local numbers first."""
        for task, task_ends in groupby(ends, _task_of_end):
            self._count_ends(self._stats(task), task, task_ends)

    def _stats(self, task: str) -> _TaskStats:
        return self._tasks.get(task) or self._new_task(task)

    def _count_ends(self, stats: _TaskStats, task: str, ends: Iterable[EndEntry]) -> None:
        # (the usual counts, first attempts, successes and the lowest buckets, are kept in
        # locals; a start is counted here unless a scrape counted it while it ran)
        early, first, late_low, late_total = self._early, 0, 0, 0.0
        late_bounds, late_counts = stats.lateness.bounds, stats.lateness.counts
        late_lowest = late_bounds[0]  # (the usual bucket, tested before a bisect)
        total, bounds, counts = 0.0, stats.duration.bounds, stats.duration.counts
        lowest = bounds[0]
        outcomes, ended = stats.counts, _ENDED
        low = succeeded = 0
        for job_id, _, _, status, _, retried, _, now, start in ends:
            if start is not None:
                name, attempt, started, due = start
                if early and early.get(job_id) is start:
                    del early[job_id]  # (counted by a scrape)
                elif name is not task:  # (a rerun of another task)
                    self._count_start(start)
                else:
                    if attempt == 1:
                        first += 1
                    late = started - due.timestamp()
                    if late <= late_lowest:
                        late_low += 1
                        if late > 0.0:  # (early counts as on time: the clock's resolution)
                            late_total += late
                    else:
                        late_total += late
                        late_counts[bisect_left(late_bounds, late)] += 1
                took = now - started
                total += took
                if took <= lowest:
                    low += 1
                else:
                    counts[bisect_left(bounds, took)] += 1
            if retried:
                outcomes[_RETRIED] += 1
            elif status is _SUCCESS:
                succeeded += 1
            else:
                outcomes[ended.get(status, _FAILED)] += 1
        late_counts[0] += late_low
        outcomes[_STARTED] += first
        stats.lateness.total += late_total
        counts[0] += low
        outcomes[_SUCCEEDED] += succeeded
        stats.duration.total += total

    def _count_start(self, start: StartEntry) -> None:
        """Count one start (of a running attempt, at a scrape; or a rerun's)."""
        task, attempt, started, due = start
        stats = self._stats(task)
        stats.counts[_STARTED] += attempt == 1
        late, lateness = started - due.timestamp(), stats.lateness
        lateness.counts[bisect_left(lateness.bounds, late)] += 1
        if late > 0.0:  # (early counts as on time, as in _count_ends)
            lateness.total += late

    def _count_running(self) -> None:
        """Count the starts of the attempts running now that no scrape counted yet (under
        the hub's lock: see ``_families``). A job whose earlier attempt, counted by a
        scrape, has its end still in the hub's log waits for the next scrape or its end."""
        early = self._early
        for job_id, start in self._hub.running_starts():
            if job_id not in early:
                early[job_id] = start
                self._count_start(start)

    def _new_task(self, name: str) -> _TaskStats:
        stats = self._tasks[name] = _TaskStats(self._duration_bounds, self._lateness_bounds)
        return stats

    # -- the collector's side ------------------------------------------------------------

    def _families(self, *, with_samples: bool) -> Iterator[Metric]:
        ns = self._ns
        if with_samples:
            self._hub.flush(self._count_running)
        tasks = sorted(self._tasks.items()) if with_samples else []  # (a copy: thread-safe)
        for index, (name, doc) in enumerate(_COUNTERS):
            counter = CounterMetricFamily(f"{ns}_{name}", doc, labels=["task"])
            for task, stats in tasks:
                counter.add_metric([task], stats.counts[index])
            yield counter
        for name, doc, attribute in (
            ("attempt_duration_seconds", "Duration of each attempt", "duration"),
            ("start_lateness_seconds", "Attempt start time minus the time it was due", "lateness"),
        ):
            histogram = HistogramMetricFamily(f"{ns}_{name}", doc, labels=["task"])
            for task, stats in tasks:
                values: _Histogram = getattr(stats, attribute)
                histogram.add_metric([task], values.cumulative(), values.total)
            yield histogram
        yield from self._active_jobs(with_samples)

    def _active_jobs(self, with_samples: bool) -> Iterator[Metric]:
        ns = self._ns
        scheduled = GaugeMetricFamily(
            f"{ns}_jobs_scheduled", "Jobs waiting to run", labels=["task"]
        )
        running = GaugeMetricFamily(f"{ns}_jobs_running", "Jobs running now", labels=["task"])
        counts: dict[tuple[str, JobStatus], int] = {}
        for job in self._app.get_active_jobs() if with_samples else ():
            key = (job.task_name, job.status)
            counts[key] = counts.get(key, 0) + 1
        for (task, status), count in sorted(counts.items()):
            if status is JobStatus.RUNNING:
                running.add_metric([task], count)
            elif status is JobStatus.SCHEDULED:
                scheduled.add_metric([task], count)
        yield scheduled
        yield running


class _Collector(Collector):
    """What the registry sees: the families of one :class:`JobMetrics`."""

    def __init__(self, metrics: JobMetrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterator[Metric]:
        return self._metrics._families(with_samples=False)

    def collect(self) -> Iterator[Metric]:
        return self._metrics._families(with_samples=True)
