"""Tasks for the PROCESS run-mode tests; importable by worker processes.

:func:`make_app` builds a fresh app for each test, so no test shares a running app with
another (a test that hung or failed inside ``async with app:`` once left a shared app
"already running" for every test after it). A PROCESS task travels to the worker process
by reference (module and name), so :func:`make_app` also binds this module's names to the
new app's tasks; the worker imports this module and finds the plain functions under the
same names.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from jobify_trio import Jobify, RunMode


def whoami(x: int, *, y: int = 0) -> tuple[int, int]:
    return os.getpid(), x + y


def hang(pid_file: str) -> None:
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(60)


def block(pid_file: str) -> None:
    """Like :func:`hang`, without a timeout: only cancellation ends it."""
    hang(pid_file)


def crash() -> None:
    raise ValueError("raised in the worker")


_FUNCTIONS: dict[str, Any] = {"whoami": whoami, "hang": hang, "block": block, "crash": crash}
# A worker already running (the tests call whoami first) starts a call within milliseconds;
# 1 s leaves room for a loaded machine.
_OPTIONS: dict[str, dict[str, Any]] = {"hang": {"timeout": 1.0}}


def make_app() -> Jobify:
    """A new app with the PROCESS tasks; this module's names now refer to them."""
    app = Jobify(storage=False)
    for name, func in _FUNCTIONS.items():
        task = app.task(func, run_mode=RunMode.PROCESS, **_OPTIONS.get(name, {}))
        globals()[name] = task
    return app
