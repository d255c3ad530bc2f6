"""Pause and resume of a job that another instance runs (issue 12 on the issue 9 protocol)."""

from __future__ import annotations

import trio
from _helpers import START
from _sharing_helpers import LEASE, Instance
from trio.testing import MockClock

from jobify_trio import JobStatus
from jobify_trio.testing import MemoryStorage, VirtualWallClock


async def test_pause_and_resume_from_another_instance(autojump_clock: MockClock) -> None:
    store, clock, ran = MemoryStorage(), VirtualWallClock(START), []
    a, b = Instance("A", store, clock, ran), Instance("B", store, clock, ran)
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await nursery.start(b.run)
        await trio.sleep(LEASE / 3 + 0.1)
        job = await a.tasks["work"].schedule("x").delay(30)
        found = await b.app.lookup_job(job.id)
        assert found is not None
        await found.pause()
        assert found.paused
        await trio.sleep(LEASE / 3 + 0.5)  # bound: one heartbeat interval
        assert job.paused
        await trio.sleep(60)  # due at 30 s: held
        assert ran == []
        assert job.status is JobStatus.SCHEDULED
        await found.resume()
        with trio.fail_after(LEASE / 3 + 0.5):
            assert await job == "x-done"
        nursery.cancel_scope.cancel()
    assert ran == [("A", "x", 1)]
