"""Shared fixtures (helpers live in ``_helpers.py``).

Every trio test runs under a real-time limit that cancels it cleanly: see
``_real_time_limit.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from _helpers import new_app
from _real_time_limit import pytest_collection_modifyitems
from _stores import KINDS, Backend, make_backend

from jobify_trio import Jobify

__all__ = ["make_app", "pytest_collection_modifyitems"]


@pytest.fixture
def make_app() -> Callable[..., Jobify]:
    """``make_app(**kwargs)`` builds an app with a virtual wall clock and no storage."""
    return new_app


@pytest.fixture(params=KINDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """An empty store of each kind (see ``_stores.py``); closed (and dropped) afterwards."""
    store = make_backend(request.param, tmp_path)
    try:
        yield store
    finally:
        await store.close()
