"""``jobify-trio run module:app``: run an app as a long-lived worker.

The worker starts the app, logs every job event (text lines or JSON lines) and on
SIGINT/SIGTERM stops gracefully with :meth:`Jobify.shutdown`: no new attempt starts,
running ones get ``--grace`` seconds, then leaving the app cancels what is left (durable
jobs stay stored). A second signal during the grace period cancels at once.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import trio

from .._api._app import Jobify
from ._cron import CliError, seconds_argument
from ._dashboard import DashboardPlan, add_dashboard_arguments, open_dashboard, plan
from ._db import ENV_VAR, storage_for
from ._event_log import EventLog

__all__ = ["EventLog", "add_run_parser", "load_app", "run_main", "serve"]


def add_run_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "run",
        help="run an app as a worker until SIGINT/SIGTERM",
        description="Start the app found at MODULE:ATTRIBUTE, log each job's start, outcome, "
        "duration and next run, and stop gracefully on SIGINT or SIGTERM.",
    )
    parser.add_argument(
        "app", help="MODULE:ATTRIBUTE of a Jobify app (or path/to/file.py:ATTRIBUTE)"
    )
    parser.add_argument(
        "--grace",
        type=seconds_argument,
        default=10.0,
        help="seconds running jobs get to finish at shutdown (default: 10)",
    )
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    parser.add_argument(
        "--db",
        help=f"job store replacing the app's: a postgresql:// URL or a SQLite file "
        f"(default: ${ENV_VAR} if set, else the app's own storage)",
    )
    parser.add_argument(
        "--shared",
        action="store_true",
        help="with a SQLite --db file: share it with other worker processes (leases, claims); "
        "a PostgreSQL store always shares",
    )
    parser.add_argument(
        "--schema", default="public", help="with a postgresql:// --db: the schema (default: public)"
    )
    parser.add_argument(
        "--app-dir", default=".", help="directory put first on sys.path (default: .)"
    )
    parser.add_argument(
        "--traceback", action="store_true", help="show the full traceback of an import error"
    )
    add_dashboard_arguments(parser)


def run_main(args: argparse.Namespace) -> int:
    app = load_app(args.app, app_dir=Path(args.app_dir))
    db = args.db or os.environ.get(ENV_VAR)
    if db:
        app._storage = storage_for(db, schema=args.schema, shared=args.shared)
    log = EventLog(app, json_lines=args.log_format == "json", stream=sys.stdout)
    dashboard = plan(app, args.dashboard)
    trio.run(serve, app, args.grace, log, dashboard)
    return 0


def load_app(spec: str, *, app_dir: Path = Path(".")) -> Jobify:
    """Import ``module:attribute`` (or ``file.py:attribute``) and check it is a Jobify app."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise CliError(f"expected MODULE:ATTRIBUTE (e.g. myproject.jobs:app), got {spec!r}")
    module = _import(module_name, app_dir)
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise CliError(f"module {module_name!r} has no attribute {attribute!r}") from None
    if not isinstance(target, Jobify):
        raise CliError(f"{spec!r} is not a Jobify app but {type(target).__name__}")
    return target


def _import(module_name: str, app_dir: Path) -> Any:
    """Import the app's module; any error it raises becomes one :class:`CliError` line.

    The original exception is the error's ``__cause__`` (``--traceback`` prints it).
    """
    sys.path.insert(0, str(app_dir.resolve()))
    try:
        if module_name.endswith(".py"):
            return _import_file(Path(module_name))
        return importlib.import_module(module_name)
    except CliError:
        raise
    except ModuleNotFoundError as e:
        if e.name and _is_prefix(e.name, module_name):
            raise CliError(f"cannot import module {module_name!r}: {e}") from e
        raise _import_error(module_name, e) from e
    except Exception as e:  # the module's own top-level code failed
        raise _import_error(module_name, e) from e


def _is_prefix(package: str, module_name: str) -> bool:
    return module_name == package or module_name.startswith(f"{package}.")


def _import_error(module_name: str, exc: Exception) -> CliError:
    message = str(exc)
    detail = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return CliError(f"importing {module_name!r}: {detail}")


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise CliError(f"no such file: {str(path)!r}")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise CliError(f"cannot import {str(path)!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[path.stem]
        raise
    return module


async def serve(
    app: Jobify, grace: float, log: EventLog, dashboard: DashboardPlan | None = None
) -> None:
    """Run ``app`` until SIGINT/SIGTERM, then stop gracefully within ``grace`` seconds."""
    app.add_listener(log)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with (
            app,
            open_dashboard(app, dashboard, lambda url: log.worker("dashboard", url=url)),
        ):
            log.worker("started", tasks=sorted(app.tasks), pid=os.getpid())
            signum = await signals.__anext__()
            log.worker("stopping", signal=signal.Signals(signum).name, grace=grace)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_cancel_on_signal, signals, nursery.cancel_scope, log)
                await app.shutdown(grace=grace)
                nursery.cancel_scope.cancel()
        log.worker("stopped")


async def _cancel_on_signal(
    signals: AsyncIterator[int], scope: trio.CancelScope, log: EventLog
) -> None:
    signum = await signals.__anext__()
    log.worker("cancelling", signal=signal.Signals(signum).name)
    scope.cancel()
