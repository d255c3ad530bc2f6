"""``jobify-trio run module:app --dashboard HOST:PORT``: the worker serves the dashboard too.

Kept apart from ``_run`` so the worker stays importable without the ``dashboard`` extra:
starlette and hypercorn are imported only when ``--dashboard`` is given.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from .._api._app import Jobify
from .._ops._history import RunHistory, find_history
from ._cron import CliError

__all__ = ["TOKEN_ENV", "DashboardPlan", "add_dashboard_arguments", "open_dashboard", "plan"]

TOKEN_ENV = "JOBIFY_TRIO_DASHBOARD_TOKEN"


def add_dashboard_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dashboard",
        metavar="HOST:PORT",
        help="serve the web dashboard there (e.g. 127.0.0.1:8000; needs jobify_trio[dashboard]). "
        f"Off loopback it requires a token: ${TOKEN_ENV}, else one is generated and printed.",
    )


@attrs.frozen(kw_only=True)
class DashboardPlan:
    """Where and how the worker serves its dashboard (checked before the app starts)."""

    host: str
    port: int
    token: str | None
    serve: Callable[..., Any]


def plan(app: Jobify, bind: str | None) -> DashboardPlan | None:
    """Check ``--dashboard`` and prepare what it needs before the app starts, or None."""
    if bind is None:
        return None
    try:
        from ..dashboard import DashboardError, is_loopback, parse_bind, serve_dashboard
    except ImportError as e:
        raise CliError(f"--dashboard: {e}") from None
    try:
        host, port = parse_bind(bind)
    except DashboardError as e:
        raise CliError(f"--dashboard: {e}") from None
    token = os.environ.get(TOKEN_ENV) or None
    if token is None and not is_loopback(host):
        token = secrets.token_urlsafe(24)
        print(f"dashboard token (set ${TOKEN_ENV} to choose it): {token}", file=sys.stderr)
    if find_history(app) is None:
        RunHistory(app)  # the dashboard's run history listens from the start
    return DashboardPlan(host=host, port=port, token=token, serve=serve_dashboard)


@asynccontextmanager
async def open_dashboard(
    app: Jobify, dashboard: DashboardPlan | None, on_started: Callable[[str], None]
) -> AsyncIterator[None]:
    """Serve the planned dashboard while the body runs (nothing if ``dashboard`` is None)."""
    if dashboard is None:
        yield
        return
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(
            lambda task_status: dashboard.serve(
                app, dashboard.host, dashboard.port, token=dashboard.token,
                task_status=task_status,
            )
        )  # fmt: skip
        on_started(urls[0])
        yield
        nursery.cancel_scope.cancel()
