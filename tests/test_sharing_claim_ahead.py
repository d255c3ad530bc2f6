"""Cron slots claimed ahead of their time (``SharingOptions.slot_claim_lead``), on several
instances sharing one MemoryStorage under one MockClock (see docs/sharing.rst)."""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import trio
import trio.testing
from _helpers import START
from _sharing_helpers import LEASE, Instance
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trio.testing import MockClock

from jobify_trio import INJECT, Cron, JobContext, JobStatus, MisfirePolicy
from jobify_trio.testing import MemoryStorage, VirtualWallClock

LEAD = 0.5
EVERY_SECOND = "* * * * * * *"
Fire = tuple[str, str, datetime, datetime]
"""(instance, job id, slot, wall time of the fire on that instance)."""


class Node(Instance):
    """An :class:`Instance` with a ``beat`` task that logs its job id, slot and fire time."""

    def __init__(
        self,
        name: str,
        store: MemoryStorage,
        clock: VirtualWallClock,
        fires: list[Fire],
        **options: Any,
    ) -> None:
        super().__init__(name, store, clock, [], **options)

        @self.app.task(name="beat")
        async def beat(context: JobContext = INJECT) -> None:
            job = context.job
            fires.append((name, job.id, job.exec_at, clock.now()))

        self.beat = beat


def nodes(
    n: int, *, skews: tuple[float, ...] = (), **options: Any
) -> tuple[MemoryStorage, list[Fire], list[Node]]:
    """``n`` instances on one store; instance ``k``'s wall clock is ``skews[k]`` s ahead."""
    store, fires = MemoryStorage(), []
    found: list[Node] = []
    for k, name in enumerate("ABCDE"[:n]):
        skew = skews[k] if k < len(skews) else 0.0
        clock = VirtualWallClock(START + timedelta(seconds=skew))
        clock.now()  # anchored now: the clocks keep their skew
        found.append(Node(name, store, clock, fires, **options))
    return store, fires, found


async def start_all(nursery: trio.Nursery, instances: list[Node]) -> None:
    for instance in instances:
        await nursery.start(instance.run)
    await trio.sleep(LEASE / 3 + 0.1)  # one heartbeat: everyone knows everyone


def next_slot(after: datetime) -> datetime:
    """The every-second slot following ``after``."""
    return START + timedelta(seconds=math.floor((after - START).total_seconds()) + 1)


async def claimed(store: MemoryStorage, job_id: str, slot: datetime) -> None:
    """Wait until ``slot`` of ``job_id`` is claimed."""
    with trio.fail_after(5):
        while (job_id, slot) not in store.claims:
            await trio.sleep(0.01)


def once_each(fires: list[Fire]) -> Counter[tuple[str, datetime]]:
    counts = Counter((job_id, slot) for _, job_id, slot, _ in fires)
    assert max(counts.values(), default=1) == 1, counts.most_common(3)
    return counts


async def test_slots_are_claimed_ahead_and_fire_on_time_once_across_three_instances(
    autojump_clock: MockClock,
) -> None:
    store, fires, instances = nodes(3)
    async with trio.open_nursery() as nursery:
        await start_all(nursery, instances)
        for k, node in enumerate(instances):
            for i in range(5):
                await node.beat.schedule().cron(EVERY_SECOND, job_id=f"c{k}{i}")
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    once_each(fires)
    assert len(fires) >= 15 * 9
    for name, job_id, slot, at in fires:
        assert name == "ABC"[int(job_id[1])]  # each cron stays on the instance that made it
        assert at == slot  # fired at its slot: the store is not waited for
        assert store.claims[(job_id, slot)] == slot - timedelta(seconds=LEAD)


async def test_without_a_lead_slots_are_claimed_when_they_fire(autojump_clock: MockClock) -> None:
    store, fires, (a, b) = nodes(2, slot_claim_lead=0)
    async with trio.open_nursery() as nursery:
        await start_all(nursery, [a, b])
        await a.beat.schedule().cron(EVERY_SECOND, job_id="c")
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    once_each(fires)
    assert len(fires) >= 4
    assert all(store.claims[("c", slot)] == slot for _, _, slot, _ in fires)


async def test_a_claimer_killed_between_claim_and_fire_loses_that_slot_only(
    autojump_clock: MockClock,
) -> None:
    store, fires, (a, b) = nodes(2)
    cron = Cron(EVERY_SECOND, misfire_policy=MisfirePolicy.ALL)
    async with trio.open_nursery() as nursery:
        await start_all(nursery, [a, b])
        await a.beat.schedule().cron(cron, job_id="c")
        await trio.sleep(3.2)
        slot = next_slot(a.app.wall_clock.now())
        await claimed(store, "c", slot)
        assert slot - a.app.wall_clock.now() > timedelta(seconds=LEAD - 0.02)
        a.kill()  # claimed, not fired
        await trio.sleep(2 * LEASE + 3)
        nursery.cancel_scope.cancel()
    counts = once_each(fires)
    assert ("c", slot) not in counts  # claimed by A: run at most once, here not at all
    before = [s for name, _, s, _ in fires if name == "A"]
    after = [s for name, _, s, _ in fires if name == "B"]
    assert max(before) == slot - timedelta(seconds=1)
    assert min(after) == slot + timedelta(seconds=1)  # ALL: every later slot, none twice
    assert len(after) == (max(after) - min(after)).total_seconds() + 1


async def test_pause_within_the_lead_is_honoured_and_the_row_shows_the_claim(
    autojump_clock: MockClock,
) -> None:
    store, fires, (a, b) = nodes(2)
    async with trio.open_nursery() as nursery:
        await start_all(nursery, [a, b])
        job = await a.beat.schedule().cron(EVERY_SECOND, job_id="c")
        await trio.sleep(2.2)
        slot = next_slot(a.app.wall_clock.now())
        await claimed(store, "c", slot)
        await job.pause()
        await trio.sleep(0.1)
        assert store.rows["c"].next_run_at == slot + timedelta(seconds=1)  # not the claimed one
        await trio.sleep(3)
        assert all(s < slot for _, _, s, _ in fires)  # the claimed slot was not run
        await job.resume()
        await trio.sleep(4)
        assert job.status is JobStatus.SCHEDULED
        nursery.cancel_scope.cancel()
    once_each(fires)
    later = [s for name, _, s, _ in fires if s > slot]
    assert len(later) >= 3
    assert {name for name, *_ in fires} == {"A"}


async def test_cancel_within_the_lead_and_the_same_id_scheduled_again(
    autojump_clock: MockClock,
) -> None:
    store, fires, (a, b) = nodes(2)
    async with trio.open_nursery() as nursery:
        await start_all(nursery, [a, b])
        job = await a.beat.schedule().cron(EVERY_SECOND, job_id="c")
        await trio.sleep(2.2)
        slot = next_slot(a.app.wall_clock.now())
        await claimed(store, "c", slot)
        await job.cancel()
        again = await a.beat.schedule().cron(EVERY_SECOND, job_id="c")  # first slot: `slot`
        await trio.sleep(4)
        assert job.status is JobStatus.CANCELLED
        assert again.status is JobStatus.SCHEDULED  # not lost to the claim: still runs here
        assert store.rows["c"].lease_owner == "A"
        nursery.cancel_scope.cancel()
    counts = once_each(fires)
    assert ("c", slot) not in counts  # claimed by the cancelled cron: not run by either
    assert ("c", slot + timedelta(seconds=1)) in counts
    assert {name for name, *_ in fires} == {"A"}


async def test_replace_within_the_lead_starts_after_the_claimed_slot(
    autojump_clock: MockClock,
) -> None:
    store, fires, (a, b) = nodes(2)
    async with trio.open_nursery() as nursery:
        await start_all(nursery, [a, b])
        job = await a.beat.schedule().cron(EVERY_SECOND, job_id="c")
        await trio.sleep(2.2)
        slot = next_slot(a.app.wall_clock.now())
        await claimed(store, "c", slot)
        replaced = await a.beat.schedule().cron(
            Cron(EVERY_SECOND, max_runs=50), job_id="c", replace=True
        )
        assert replaced is job
        await trio.sleep(3)
        nursery.cancel_scope.cancel()
    counts = once_each(fires)
    assert ("c", slot) not in counts  # the old schedule's claimed slot: not run
    assert ("c", slot + timedelta(seconds=1)) in counts


async def test_skewed_clocks_still_fire_each_slot_once_through_a_stall(
    autojump_clock: MockClock,
) -> None:
    # B's clock is 0.8 s ahead of A's (more than the lead, well under the heartbeat):
    # B takes A's cron over early when A stalls; the slot A claimed fires on A, once.
    store, fires, (a, b) = nodes(2, skews=(0.0, 0.8))
    async with trio.open_nursery() as nursery:
        await start_all(nursery, [a, b])
        job = await a.beat.schedule().cron(EVERY_SECOND, job_id="c")
        await trio.sleep(3.2)
        slot = next_slot(a.app.wall_clock.now())
        await claimed(store, "c", slot)
        a.stall()  # A's protocol freezes: no heartbeat, no claim; its timer still fires
        await trio.sleep(2 * LEASE)
        a.resume()  # its pending claim fails: B runs the cron now
        await trio.sleep(5)
        assert job.status is JobStatus.SCHEDULED  # A's handle follows the job on B
        assert store.rows["c"].lease_owner == "B"
        nursery.cancel_scope.cancel()
    counts = once_each(fires)
    assert counts[("c", slot)] == 1
    assert [name for name, _, s, _ in fires if s == slot] == ["A"]  # its claimer ran it
    assert fires[-1][0] == "B"


async def _kill_in_the_window(lead: float, skew: float, wait: float) -> tuple[list[Fire], Any]:
    store, fires, (a, b) = nodes(2, skews=(0.0, skew), slot_claim_lead=lead)
    cron = Cron(EVERY_SECOND, misfire_policy=MisfirePolicy.ALL)
    async with trio.open_nursery() as nursery:
        await start_all(nursery, [a, b])
        await a.beat.schedule().cron(cron, job_id="c")
        await trio.sleep(wait)
        killed_at = a.app.wall_clock.now()
        a.kill()
        await trio.sleep(2 * LEASE + 4)
        nursery.cancel_scope.cancel()
    return fires, (store, killed_at)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lead=st.sampled_from([0.0, 0.25, 0.5, 0.9]),
    skew=st.floats(min_value=-0.9, max_value=0.9),
    wait=st.floats(min_value=1.0, max_value=4.0),
)
def test_each_slot_runs_once_or_is_lost_to_the_killed_claimer(
    lead: float, skew: float, wait: float
) -> None:
    """Whatever the lead, the skew (under the heartbeat) and the moment of the kill: no
    slot runs twice, every slot from the first to the last run is claimed (``ALL``), and
    a claimed slot that did not run was claimed by the killed instance before its kill,
    at most one slot ahead (the one claimed within the lead)."""
    fires, (store, killed_at) = trio.run(
        _kill_in_the_window, lead, skew, wait, clock=trio.testing.MockClock(autojump_threshold=0)
    )
    counts = once_each(fires)
    slots = sorted(slot for _, slot in counts)
    second = timedelta(seconds=1)
    span = [slots[0] + second * i for i in range(int((slots[-1] - slots[0]) / second) + 1)]
    lost = [s for s in span if ("c", s) not in counts]
    assert all(("c", s) in store.claims for s in span)
    assert len(lost) <= 1
    for s in lost:
        assert store.claims[("c", s)] <= killed_at < s
        assert s - killed_at <= timedelta(seconds=lead)


async def test_a_clean_stop_stores_the_counters_of_the_runs_since_the_last_claim(
    autojump_clock: MockClock,
) -> None:
    store, fires, (a, b) = nodes(2)
    async with trio.open_nursery() as nursery:
        await start_all(nursery, [a, b])
        await a.beat.schedule().cron(Cron(EVERY_SECOND, max_runs=5), job_id="c")
        with trio.fail_after(5):
            while len(fires) < 2:
                await trio.sleep(0.01)
        await trio.sleep(0.2)  # run 2 ended; the claim of slot 3 (its counters) not made yet
        assert '"run_count":1,' in (store.rows["c"].cron or "")
        a.scope.cancel()  # a clean stop: run 2 is counted in the row B takes over
        await trio.sleep(2 * LEASE)
        assert "c" not in store.rows  # B ran the 3 runs left, then deleted it
        nursery.cancel_scope.cancel()
    once_each(fires)
    assert [name for name, *_ in fires] == ["A", "A", "B", "B", "B"]
