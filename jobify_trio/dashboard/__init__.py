"""A live web dashboard for a jobify_trio app (the optional extra ``jobify_trio[dashboard]``).

Serve it next to the app, in the same trio run::

    async with app, trio.open_nursery() as nursery:
        await nursery.start(serve_dashboard, app, "127.0.0.1", 8000)
        ...

or mount :func:`create_app`'s ASGI app in your own server, or run the worker with
``jobify-trio run module:app --dashboard 127.0.0.1:8000``. See docs/operations.rst.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

try:
    import hypercorn.trio
    from hypercorn.config import Config
    from starlette.applications import Starlette
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "jobify_trio.dashboard needs starlette and hypercorn: pip install 'jobify_trio[dashboard]'"
    ) from e

from .._ops._history import RunHistory, find_history
from ..exceptions import BaseJobifyError
from ._app import Dashboard
from ._security import Access, is_loopback

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from .._api._app import Jobify

__all__ = ["DashboardError", "create_app", "is_loopback", "parse_bind", "serve_dashboard"]

_log = logging.getLogger("jobify_trio.dashboard")


class DashboardError(BaseJobifyError):
    """The dashboard cannot be set up as asked (no token off loopback, a bad address...)."""


def create_app(
    app: Jobify,
    *,
    token: str | None = None,
    require_token: bool = False,
    history: RunHistory | None = None,
    metrics_registry: CollectorRegistry | None = None,
    refresh: float = 0.5,
) -> Starlette:
    """The dashboard of ``app`` as an ASGI app, to serve in the app's own trio run.

    ``history`` defaults to the :class:`~jobify_trio.RunHistory` attached to ``app``, or a
    new one (which needs the app not started yet). With a ``token`` (required when
    ``require_token``), every request needs it. ``metrics_registry`` (prometheus-client)
    is served at ``/metrics``. ``refresh`` is the live feed's period in seconds.
    """
    if history is None:
        history = find_history(app)
    if history is None:
        if app.is_running:
            raise DashboardError(
                "create the dashboard (or a RunHistory(app)) before the app starts: "
                "the run history listens from the start"
            )
        history = RunHistory(app)
    if isinstance(refresh, bool) or not isinstance(refresh, int | float) or not refresh > 0:
        raise DashboardError(f"refresh must be a number of seconds > 0, got {refresh!r}")
    try:
        access = Access.create(token=token, require_token=require_token)
    except ValueError as e:
        raise DashboardError(str(e)) from None
    dashboard = Dashboard(app, history, access, float(refresh))
    if metrics_registry is not None:
        from prometheus_client import generate_latest

        dashboard.metrics = lambda: generate_latest(metrics_registry)
    return dashboard.asgi()


def parse_bind(value: str) -> tuple[str, int]:
    """``"127.0.0.1:8000"``, ``"[::1]:8000"`` or ``"localhost:0"`` -> (host, port)."""
    host, sep, port = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise DashboardError(f"expected HOST:PORT (e.g. 127.0.0.1:8000), got {value!r}")
    return host, int(port)


async def serve_dashboard(
    app: Jobify,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    token: str | None = None,
    require_token: bool | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
    **options: Any,
) -> None:
    """Serve the dashboard of ``app`` on Hypercorn's trio worker until cancelled.

    ``require_token`` defaults to True unless ``host`` is a loopback address: binding
    anywhere else without a ``token`` raises :class:`DashboardError`. Started with
    ``nursery.start``, it reports the bound URLs (``port=0`` picks a free port).
    ``options`` go to :func:`create_app`.
    """
    if require_token is None:
        require_token = not is_loopback(host)
    asgi = create_app(app, token=token, require_token=require_token, **options)
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = _log
    config.graceful_timeout = 1.0
    await hypercorn.trio.serve(asgi, config, task_status=task_status)  # type: ignore[arg-type]
