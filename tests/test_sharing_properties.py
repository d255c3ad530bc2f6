"""The sharing protocol against a simple model: random pushes, ats and a cron on three
instances, random deaths, virtual time (hypothesis, one trio.run per example)."""

from __future__ import annotations

import itertools
from typing import Any

import trio
import trio.testing
from _helpers import START
from _sharing_helpers import LEASE, Instance, slots_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobify_trio.testing import MemoryStorage, VirtualWallClock

NAMES = "ABC"  # C never dies: someone is left to run everything

push = st.tuples(
    st.just("push"),
    st.sampled_from(NAMES),
    st.sampled_from([0.0, 3.0, 12.0]),  # delay
    st.sampled_from([0.0, 1.0, 8.0]),  # duration of the run
)
kill = st.tuples(st.just("kill"), st.sampled_from("AB"), st.just(0.0), st.just(0.0))
wait = st.tuples(st.just("wait"), st.just(""), st.sampled_from([0.1, 1.0, 4.0]), st.just(0.0))
scenario = st.lists(st.one_of(push, push, kill, wait), min_size=1, max_size=25)


Outcome = tuple[list[Any], dict[str, float], set[str], dict[str, float]]


async def _play(ops: list[tuple[str, str, float, float]]) -> Outcome:
    store, clock, ran = MemoryStorage(), VirtualWallClock(START), []
    instances = {name: Instance(name, store, clock, ran) for name in NAMES}
    died: dict[str, float] = {}
    acknowledged: set[str] = set()
    durations: dict[str, float] = {}
    counter = itertools.count()
    async with trio.open_nursery() as nursery:
        for instance in instances.values():
            await nursery.start(instance.run)
        await instances["C"].tick.schedule().cron("* * * * * * *", job_id="tick")
        for op, name, value, duration in ops:
            if op == "push" and name not in died:
                tag = f"j{next(counter)}"
                task = instances[name].tasks["work"]
                await task.schedule(tag, duration).delay(value)
                acknowledged.add(tag)
                durations[tag] = duration
            elif op == "kill" and name not in died:
                instances[name].kill()
                died[name] = trio.current_time()
            elif op == "wait":
                await trio.sleep(value)
        await trio.sleep(3 * LEASE + 20)  # everything pending is due and taken over
        nursery.cancel_scope.cancel()
    return ran, died, acknowledged, durations


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario)
def test_the_protocol_keeps_its_promises(ops: list[tuple[str, str, float, float]]) -> None:
    ran, died, acknowledged, durations = trio.run(
        _play, ops, clock=trio.testing.MockClock(autojump_threshold=0)
    )
    jobs = [entry for entry in ran if entry[1] != "tick"]
    # every acknowledged job ran at least once
    assert {tag for _, tag, _ in jobs} == acknowledged
    # every cron slot fired at most once
    slots = slots_of(ran)
    assert len(slots) == len(set(slots))
    # a job ran twice only if the first instance to run it died
    by_tag: dict[str, list[str]] = {}
    for name, tag, _ in jobs:
        by_tag.setdefault(tag, []).append(name)
    for tag, names in by_tag.items():
        for earlier in names[:-1]:
            assert earlier in died, (tag, names, durations[tag])
