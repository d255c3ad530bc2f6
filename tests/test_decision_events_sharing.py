"""Shared-store decision events: a lease taken over, a cron slot claimed elsewhere."""

from __future__ import annotations

import trio
from _helpers import START
from _sharing_helpers import LEASE, Instance
from trio.testing import MockClock

from jobify_trio import JobEvent, JobEventKind, LeaseTakenOverEvent, SlotClaimedElsewhereEvent
from jobify_trio.testing import MemoryStorage, VirtualWallClock


def pair() -> tuple[Instance, Instance, list[JobEvent], list[JobEvent]]:
    store, clock, ran = MemoryStorage(), VirtualWallClock(START), []
    a, b = Instance("A", store, clock, ran), Instance("B", store, clock, ran)
    seen_a: list[JobEvent] = []
    seen_b: list[JobEvent] = []
    a.app.add_listener(seen_a.append)
    b.app.add_listener(seen_b.append)
    return a, b, seen_a, seen_b


async def test_an_orphaned_cron_adopted_from_a_dead_instance(autojump_clock: MockClock) -> None:
    a, b, _, seen_b = pair()
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await nursery.start(b.run)
        await a.tick.schedule().cron("* * * * * * *", job_id="tick")
        await trio.sleep(3)
        a.kill()
        await trio.sleep(2 * LEASE + 2)
        nursery.cancel_scope.cancel()
    taken = [e for e in seen_b if e.kind is JobEventKind.LEASE_TAKEN_OVER]
    assert len(taken) == 1
    (event,) = taken
    assert isinstance(event, LeaseTakenOverEvent)
    assert (event.job.id, event.instance, event.origin) == ("tick", "B", "A")
    kinds = [e.kind for e in seen_b if e.job.id == "tick"]
    # the adopter applies the misfire policy (ONCE: slots missed meanwhile coalesce)
    assert kinds.index(JobEventKind.LEASE_TAKEN_OVER) < kinds.index(JobEventKind.STARTED)


async def test_a_slot_claimed_by_another_instance(autojump_clock: MockClock) -> None:
    a, b, seen_a, _ = pair()
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await nursery.start(b.run)
        await trio.sleep(LEASE / 3 + 0.1)
        await a.tick.schedule().cron("* * * * * * *", job_id="tick")
        await trio.sleep(3)
        a.stall()  # A stops heartbeating and claiming: B takes the cron over
        await trio.sleep(3 * LEASE)
        a.resume()  # A's pending claim fails
        await trio.sleep(2)
        nursery.cancel_scope.cancel()
    lost = [e for e in seen_a if e.kind is JobEventKind.SLOT_CLAIMED_ELSEWHERE]
    assert len(lost) == 1
    (event,) = lost
    assert isinstance(event, SlotClaimedElsewhereEvent)
    assert (event.job.id, event.instance, event.next_run) == ("tick", "A", None)
    assert event.slot > START
