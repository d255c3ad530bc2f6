"""Helpers shared by the tests (the tests directory is on sys.path under pytest)."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime
from typing import Any

from jobify_trio import Jobify
from jobify_trio.testing import VirtualWallClock

START = datetime(2026, 1, 1, tzinfo=UTC)


def new_app(**kwargs: Any) -> Jobify:
    """An app for tests: no storage unless asked for, virtual wall time by default."""
    kwargs.setdefault("wall_clock", VirtualWallClock(START))
    if "storage" in inspect.signature(Jobify).parameters:
        kwargs.setdefault("storage", False)
    return Jobify(**kwargs)
