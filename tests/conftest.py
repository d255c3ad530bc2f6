"""Shared fixtures (helpers live in ``_helpers.py``).

Every trio test runs under a real-time limit that cancels it cleanly: see
``_real_time_limit.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from _helpers import new_app
from _real_time_limit import pytest_collection_modifyitems

from jobify_trio import Jobify

__all__ = ["make_app", "pytest_collection_modifyitems"]


@pytest.fixture
def make_app() -> Callable[..., Jobify]:
    """``make_app(**kwargs)`` builds an app with a virtual wall clock and no storage."""
    return new_app
