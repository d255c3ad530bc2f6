"""Prometheus metrics for jobify_trio (the optional extra ``jobify_trio[metrics]``).

``JobMetrics(app)`` before the app starts; expose the registry as usual with
prometheus-client (``start_http_server``, ``make_asgi_app``) or through the dashboard's
``/metrics`` route. See docs/operations.rst.
"""

from __future__ import annotations

try:
    import prometheus_client  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "jobify_trio.metrics needs prometheus-client: pip install 'jobify_trio[metrics]'"
    ) from e

from ._ops._metrics import DURATION_BUCKETS, LATENESS_BUCKETS, JobMetrics, MetricsError

__all__ = ["DURATION_BUCKETS", "LATENESS_BUCKETS", "JobMetrics", "MetricsError"]
