"""Shared fixtures (helpers live in ``_helpers.py``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from _helpers import new_app

from jobify_trio import Jobify


@pytest.fixture
def make_app() -> Callable[..., Jobify]:
    """``make_app(**kwargs)`` builds an app with a virtual wall clock and no storage."""
    return new_app
