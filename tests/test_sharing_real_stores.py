"""Several app instances in one trio run sharing a REAL store: one SQLite file opened with
``shared=True``, and one PostgreSQL schema (fresh per test; skipped outside CI without a
server). Real clock, a 1 s lease, every wait bounded: each test takes a few seconds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
from _sharing_helpers import RunningApp
from _stores import Backend, make_backend

from jobify_trio import INJECT, JobContext, Jobify, JobStatus, SharingOptions
from jobify_trio.exceptions import JobCancelledError

LEASE = 1.0
POLL = 0.2
Ran = list[tuple[str, str, Any]]


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    backend = make_backend(request.param, tmp_path)
    try:
        yield backend
    finally:
        await backend.close()


class Node(RunningApp):
    """One app instance on its own connection to the shared store."""

    def __init__(self, name: str, backend: Backend, ran: Ran, **options: Any) -> None:
        self.name = name
        max_concurrency = options.pop("max_concurrency", 20)
        sharing = SharingOptions(lease=LEASE, poll_interval=POLL, instance_id=name, **options)
        self.app = app = Jobify(
            storage=backend.new(), sharing=sharing, max_concurrency=max_concurrency
        )
        self.scope = trio.CancelScope()

        @app.task(name="work")
        async def work(tag: str, seconds: float = 0.0, context: JobContext = INJECT) -> str:
            ran.append((name, tag, context.attempt))
            await trio.sleep(seconds)
            return f"{tag}-done"

        @app.task(name="tick")
        async def tick(context: JobContext = INJECT) -> None:
            ran.append((name, "tick", context.job.exec_at))

        self.work, self.tick = work, tick


async def start(nursery: trio.Nursery, nodes: list[Node]) -> None:
    for node in nodes:
        await nursery.start(node.run)
    await trio.sleep(LEASE / 3 + 0.1)  # one heartbeat: everyone knows everyone


async def until(predicate: Any, bound: float) -> None:
    with trio.fail_after(bound):
        while not predicate():
            await trio.sleep(0.02)


async def test_load_spreads_and_results_come_back(store: Backend) -> None:
    ran: Ran = []
    a, b = Node("A", store, ran, max_concurrency=1), Node("B", store, ran, max_concurrency=5)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await start(nursery, [a, b])
            busy = await a.work.push("busy", 3.0)
            jobs = [await a.work.push(f"j{i}") for i in range(5)]
            with trio.fail_after(2):
                assert [await job for job in jobs] == [f"j{i}-done" for i in range(5)]
            assert await busy == "busy-done"
            nursery.cancel_scope.cancel()
    assert {(name, tag) for name, tag, _ in ran if tag != "busy"} == {
        ("B", f"j{i}") for i in range(5)
    }
    assert sorted(tag for _, tag, _ in ran) == sorted(["busy", *(f"j{i}" for i in range(5))])


async def test_takeover_after_an_instance_dies(store: Backend) -> None:
    ran: Ran = []
    a, b = Node("A", store, ran), Node("B", store, ran)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await start(nursery, [a, b])
            long = await a.work.push("long", 60.0)
            later = await a.work.schedule("later").delay(0.5)
            await until(lambda: ("A", "long", 1) in ran, 2)
            a.kill()
            found = await b.app.lookup_job(long.id)
            assert found is not None
            await until(lambda: ("B", "long", 1) in ran and ("B", "later", 1) in ran, 3 * LEASE)
            assert later.id != long.id
            nursery.cancel_scope.cancel()
    assert [r for r in ran if r[1] == "later"] == [("B", "later", 1)]


async def test_each_cron_slot_fires_once_on_three_instances(store: Backend) -> None:
    ran: Ran = []
    nodes = [Node(name, store, ran) for name in "ABC"]
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await start(nursery, nodes)
            await nodes[0].tick.schedule().cron("* * * * * * *", job_id="tick")
            await trio.sleep(1.5)
            nodes[0].kill()  # the owner dies: another takes the cron over
            await trio.sleep(3 * LEASE + 1)
            nursery.cancel_scope.cancel()
    slots = [when for _, tag, when in ran if tag == "tick"]
    assert len(slots) == len(set(slots)), slots  # each slot at most once
    assert {name for name, tag, _ in ran if tag == "tick"} - {"A"}  # taken over
    assert len(slots) >= 3


async def test_lookup_cancel_and_replace_across_instances(store: Backend) -> None:
    ran: Ran = []
    a, b = Node("A", store, ran), Node("B", store, ran)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await start(nursery, [a, b])
            running = await a.work.push("running", 60.0)
            waiting = await a.work.schedule("old").delay(60, job_id="w")
            await until(lambda: ("A", "running", 1) in ran, 2)
            found = await b.app.lookup_job(running.id)
            assert found is not None
            await found.cancel()
            with trio.fail_after(LEASE / 3 + 1):  # bound: one heartbeat interval
                await running.wait()
            assert running.status is JobStatus.CANCELLED
            with pytest.raises(JobCancelledError):
                running.result()
            follower = await b.work.schedule("new").delay(0.3, job_id="w", replace=True)
            with trio.fail_after(LEASE / 3 + 2):
                assert await follower == "new-done"
            assert waiting.status is JobStatus.SUCCESS
            nursery.cancel_scope.cancel()
    assert [tag for _, tag, _ in ran] == ["running", "new"]


async def test_a_job_id_is_free_again_as_soon_as_its_job_ended(store: Backend) -> None:
    # the ended job's row delete may still be queued in the writer: scheduling the same
    # id again must not take that row for another instance's job (DuplicateJobError)
    ran: Ran = []
    a, b = Node("A", store, ran), Node("B", store, ran)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await start(nursery, [a, b])
            for i in range(30):
                job = await a.work.schedule(f"r{i}").push(job_id="same")
                assert await job == f"r{i}-done"
            assert sorted(tag for _, tag, _ in ran) == sorted(f"r{i}" for i in range(30))
            nursery.cancel_scope.cancel()


async def test_a_job_id_is_free_again_after_its_job_ran_on_another_instance(
    store: Backend,
) -> None:
    # A is busy: each job runs on B, whose delete of the row travels with its result
    ran: Ran = []
    a, b = Node("A", store, ran, max_concurrency=1), Node("B", store, ran)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await start(nursery, [a, b])
            await a.work.push("busy", 5.0)
            for i in range(10):
                job = await a.work.schedule(f"r{i}").push(job_id="same")
                assert await job == f"r{i}-done"
            assert [(node, tag) for node, tag, _ in ran if tag != "busy"] == [
                ("B", f"r{i}") for i in range(10)
            ]
            nursery.cancel_scope.cancel()
