"""Run modes and the pure rule that picks one for a function."""

from __future__ import annotations

import enum
import inspect
import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["RunMode", "resolve_run_mode"]


class RunMode(enum.StrEnum):
    """Where a job's function runs."""

    MAIN = "main"
    """On the trio loop: async functions are awaited, sync ones called inline."""
    THREAD = "thread"
    """In a worker thread (:func:`trio.to_thread.run_sync`); the default for sync functions."""
    PROCESS = "process"
    """In a worker process through trio-parallel (sync functions only)."""


def is_async_callable(func: Callable[..., Any]) -> bool:
    """True for ``async def`` functions (also behind ``functools.partial`` or ``__call__``)."""
    while hasattr(func, "func") and not inspect.isfunction(func):  # functools.partial
        func = func.func
    if inspect.iscoroutinefunction(func):
        return True
    if inspect.isfunction(func) or inspect.ismethod(func):
        return False
    return inspect.iscoroutinefunction(type(func).__call__)


def resolve_run_mode(
    requested: object, *, is_async: bool, task_name: str, stacklevel: int = 3
) -> RunMode:
    """The run mode a task actually uses.

    Async functions always run on the loop; asking THREAD or PROCESS for one warns and
    uses MAIN. Sync functions default to THREAD.
    """
    if requested is None:
        return RunMode.MAIN if is_async else RunMode.THREAD
    if not isinstance(requested, RunMode):
        raise TypeError(
            f"task {task_name!r}: run_mode must be a RunMode (MAIN, THREAD or PROCESS), "
            f"got {requested!r}"
        )
    if is_async and requested is not RunMode.MAIN:
        warnings.warn(
            f"task {task_name!r} is an async function; run_mode={requested.name} is ignored "
            "and it runs on the trio loop (MAIN)",
            RuntimeWarning,
            stacklevel=stacklevel,
        )
        return RunMode.MAIN
    return requested
