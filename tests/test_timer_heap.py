"""The pure timer heap against a sorted-list model (hypothesis)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobify_trio._policy._timer_heap import TimerHeap, TimerToken

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("arm"), st.integers(0, 50)),
        st.tuples(st.just("disarm"), st.integers(0, 200)),
        st.tuples(st.just("pop"), st.integers(0, 50)),
    ),
    max_size=300,
)


@settings(max_examples=300)
@given(OPS)
def test_heap_matches_model(ops: list[tuple[str, int]]) -> None:
    heap: TimerHeap[int] = TimerHeap()
    model: list[tuple[int, int]] = []  # (deadline, item) in arming order
    tokens: list[tuple[TimerToken, int, int]] = []
    item = 0
    for kind, value in ops:
        if kind == "arm":
            item += 1
            tokens.append((heap.arm(float(value), item), value, item))
            model.append((value, item))
        elif kind == "disarm" and tokens:
            token, deadline, armed = tokens[value % len(tokens)]
            alive = (deadline, armed) in model
            assert heap.disarm(token) is alive
            if alive:
                model.remove((deadline, armed))
        elif kind == "pop":
            due = heap.pop_due(float(value))
            expected = sorted((d, i) for d, i in model if d <= value)
            assert due == [i for _, i in expected]
            model = [(d, i) for d, i in model if d > value]
        assert len(heap) == len(model)
        assert heap.next_deadline() == min((d for d, _ in model), default=math.inf)


def test_equal_deadlines_fire_in_arming_order() -> None:
    heap: TimerHeap[str] = TimerHeap()
    for name in "abcde":
        heap.arm(1.0, name)
    assert heap.pop_due(1.0) == list("abcde")


def test_disarm_after_fire_is_false() -> None:
    heap: TimerHeap[str] = TimerHeap()
    token = heap.arm(1.0, "x")
    assert heap.pop_due(2.0) == ["x"]
    assert heap.disarm(token) is False
    assert len(heap) == 0


def test_compaction_bounds_memory() -> None:
    heap: TimerHeap[int] = TimerHeap()
    tokens = [heap.arm(float(i), i) for i in range(10_000)]
    for token in tokens[:9_990]:
        heap.disarm(token)
    assert len(heap) == 10
    assert len(heap._heap) < 200  # dead entries were compacted away
    assert heap.pop_due(math.inf) == list(range(9_990, 10_000))


def test_nan_deadline_is_refused() -> None:
    with pytest.raises(ValueError, match="NaN"):
        TimerHeap[int]().arm(math.nan, 1)
