"""An instance that does not know a stored row's task (another version of the app, as in a
rolling deploy) hands the row back without spinning on it."""

from __future__ import annotations

from typing import Any

import trio
from _helpers import START
from _sharing_helpers import LEASE, POLL, Instance
from trio.testing import MockClock

from jobify_trio import Jobify, SharingOptions
from jobify_trio.storage import StoredJob
from jobify_trio.testing import MemoryStorage, VirtualWallClock


def count_claims(store: MemoryStorage, job_id: str) -> list[int]:
    """Wrap the store's claim methods; the list's one item counts claims of ``job_id``."""
    claims = [0]
    for name in ("claim_due", "adopt_orphans"):
        method = getattr(store, name)

        async def counting(*, _method: Any = method, **kw: Any) -> list[StoredJob]:
            rows: list[StoredJob] = await _method(**kw)
            claims[0] += sum(row.job_id == job_id for row in rows)
            return rows

        setattr(store, name, counting)
    return claims


async def test_a_row_of_an_unknown_task_is_claimed_at_most_once_per_poll(
    autojump_clock: MockClock,
) -> None:
    store, clock, ran = MemoryStorage(), VirtualWallClock(START), []
    claims = count_claims(store, "x")
    a = Instance("A", store, clock, ran)
    old = Jobify(
        storage=store, wall_clock=clock, sharing=SharingOptions(lease=LEASE, poll_interval=POLL)
    )
    seconds = 20.0
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        async with old:
            await a.tasks["work"].schedule("x").delay(1, job_id="x")
            a.kill()  # its row is adopted by `old`, which has no task "work"
            await trio.sleep(seconds)
            assert ran == []
            assert "x" in store.rows  # kept for an instance that can run it
            assert 1 <= claims[0] <= seconds / POLL + 2  # not a claim every few ms
            b = Instance("B", store, clock, ran)
            await nursery.start(b.run)
            with trio.fail_after(LEASE + 2 * POLL):
                while not ran:
                    await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    assert ran == [("B", "x", 1)]
