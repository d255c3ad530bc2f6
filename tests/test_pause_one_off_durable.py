"""A paused durable one-off job stays paused across a restart, and across instances on a
shared store (issue 12): its paused state is the row's ``paused`` column."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import trio
from _helpers import START
from _sharing_helpers import LEASE, Instance
from _stores import Backend
from trio.testing import MockClock

from jobify_trio import Jobify, JobStatus
from jobify_trio.storage import SetPaused, Storage
from jobify_trio.testing import MemoryStorage, VirtualWallClock


def _app(store: Storage, clock: VirtualWallClock, ran: list[tuple[str, datetime]]) -> Any:
    app = Jobify(wall_clock=clock, storage=store)

    @app.task(name="rec")
    async def rec(tag: str) -> None:
        ran.append((tag, clock.now()))

    return app, rec


async def _stored(backend: Backend) -> dict[str, bool]:
    store = await backend.open()
    rows = {row.job_id: row.paused for row in (await store.load()).jobs}
    await store.shutdown()
    backend.opened.remove(store)
    return rows


async def test_a_paused_one_off_job_stays_paused_across_a_restart(
    autojump_clock: MockClock, backend: Backend
) -> None:
    if backend.kind != "memory":  # commits run in a thread: let it answer before jumping
        autojump_clock.autojump_threshold = 0.02
    clock, ran = VirtualWallClock(START), []
    app, rec = _app(backend.new(), clock, ran)
    async with app:
        due = await rec.schedule("due").delay(30, job_id="due")
        later = await rec.schedule("later").delay(300, job_id="later")
        resumed = await rec.schedule("resumed").delay(120, job_id="resumed")
        await due.pause()
        await later.pause()
        await resumed.pause()
        await resumed.resume()  # the resume is stored too
    assert await _stored(backend) == {"due": True, "later": True, "resumed": False}
    await trio.sleep(90)  # "due" falls due (at 30 s) while the app is down
    app, rec = _app(backend.new(), clock, ran)
    async with app:
        due, later = app.find_job("due"), app.find_job("later")
        assert due is not None
        assert later is not None
        assert due.paused
        assert later.paused
        assert not app.find_job("resumed").paused  # type: ignore[union-attr]
        await trio.sleep(60)  # still paused: "due" waits ("resumed" runs at 2 min)
        assert [tag for tag, _ in ran] == ["resumed"]
        assert due.status is JobStatus.SCHEDULED
        await due.resume()  # due during the pause: runs at resume
        resumed_at = clock.now()
        await later.resume()  # not due yet: runs at its time
        with trio.fail_after(300):
            await due.wait()
            await later.wait()
    assert [tag for tag, _ in ran] == ["resumed", "due", "later"]
    assert ran[1][1] - resumed_at < timedelta(seconds=1)
    assert ran[2][1] - START >= timedelta(seconds=300)
    assert await _stored(backend) == {}


async def test_a_paused_one_off_job_is_adopted_paused_by_another_instance(
    autojump_clock: MockClock,
) -> None:
    store, clock, ran = MemoryStorage(), VirtualWallClock(START), []
    a, b = Instance("A", store, clock, ran), Instance("B", store, clock, ran)
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await nursery.start(b.run)
        await trio.sleep(LEASE / 3 + 0.1)
        job = await a.tasks["work"].schedule("x").delay(30)
        found = await b.app.lookup_job(job.id)
        assert found is not None
        await found.pause()  # a PAUSE command to A, which stores the flag
        await trio.sleep(LEASE / 3 + 0.5)
        assert job.paused
        assert store.rows[job.id].paused
        a.kill()  # A dies; B adopts the row once A's lease runs out
        await trio.sleep(60 + 2 * LEASE)  # due at 30 s: held by its new owner
        assert ran == []
        adopted = b.app.find_job(job.id)
        assert adopted is not None
        assert adopted.paused
        assert store.rows[job.id].lease_owner == "B"
        await adopted.resume()  # B runs it at once, and the row goes
        with trio.fail_after(1):
            assert await adopted == "x-done"
        nursery.cancel_scope.cancel()
    assert ran == [("B", "x", 1)]
    assert job.id not in store.rows


class _NoPausedColumn(MemoryStorage):
    """A store of one's own that keeps no paused state (``stores_paused`` False)."""

    @property
    def stores_paused(self) -> bool:
        return False

    async def apply(self, writes: Any, /) -> None:
        assert not any(isinstance(write, SetPaused) for write in writes)
        await super().apply(writes)


async def test_a_store_without_a_paused_column_is_never_given_set_paused(
    autojump_clock: MockClock,
) -> None:
    store, clock, ran = _NoPausedColumn(), VirtualWallClock(START), []
    app, rec = _app(store, clock, ran)
    async with app:
        job = await rec.schedule("x").delay(30, job_id="x")
        await job.pause()
        assert job.paused
    app, rec = _app(store, clock, ran)
    async with app:  # restored unpaused: it runs at its time
        with trio.fail_after(60):
            await app.find_job("x").wait()  # type: ignore[union-attr]
    assert [tag for tag, _ in ran] == ["x"]
