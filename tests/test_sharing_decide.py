"""The claimer's pure decisions about lease expiries (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from jobify_trio._sharing._decide import reread_expiry, takeover_wait

T0 = datetime(2026, 1, 1, tzinfo=UTC)
offsets = st.floats(min_value=-100, max_value=100, allow_nan=False)
EVERY = timedelta(seconds=1)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@given(offsets, st.floats(min_value=0, max_value=1))
def test_takeover_wait_is_the_slack_after_the_expiry_never_negative(
    offset: float, slack: float
) -> None:
    wait = takeover_wait(_at(offset), T0, slack=slack)
    assert wait is not None
    assert wait >= slack
    assert abs(wait - (max(offset, 0.0) + slack)) < 1e-6
    assert takeover_wait(None, T0, slack=slack) is None


@given(st.none() | offsets, offsets)
def test_an_expiry_is_read_again_once_it_passed_or_a_beat_after_none(
    expiry_offset: float | None, read_offset: float
) -> None:
    expiry = None if expiry_offset is None else _at(expiry_offset)
    read_at = _at(min(read_offset, 0.0))
    again = reread_expiry(expiry, read_at, T0, every=EVERY)
    if expiry is not None:
        assert again == (expiry <= T0)  # a future expiry is kept until it passes
    else:
        assert again == (T0 - read_at >= EVERY)
    assert reread_expiry(expiry, None, T0, every=EVERY)  # never read yet
