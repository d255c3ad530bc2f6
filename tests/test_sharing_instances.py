"""Several app instances sharing one MemoryStorage under one MockClock (issue 9)."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs
import pytest
import trio
from _helpers import START
from _sharing_helpers import LEASE, Instance, slots_of
from trio.testing import MockClock

from jobify_trio import Cron, JobStatus
from jobify_trio._sharing._claimer import TAKEOVER_SLACK
from jobify_trio.exceptions import (
    DuplicateJobError,
    JobCancelledError,
    JobFailedError,
    JobTimeoutError,
    RemoteJobError,
)
from jobify_trio.storage import (
    Delete,
    Heartbeat,
    InstanceInfo,
    LoadResult,
    Storage,
    StorageError,
    StoredJob,
    Upsert,
    Write,
)
from jobify_trio.testing import MemoryStorage, VirtualWallClock

Ran = list[tuple[str, str, Any]]


def cluster(n: int, **options: Any) -> tuple[MemoryStorage, Ran, list[Instance]]:
    store, clock, ran = MemoryStorage(), VirtualWallClock(START), []
    names = "ABCDE"[:n]
    return store, ran, [Instance(name, store, clock, ran, **options) for name in names]


async def start_all(nursery: trio.Nursery, instances: list[Instance]) -> None:
    for instance in instances:
        await nursery.start(instance.run)
    await trio.sleep(LEASE / 3 + 0.1)  # one heartbeat: everyone knows everyone


async def test_a_due_job_runs_on_exactly_one_instance(autojump_clock: MockClock) -> None:
    store, ran, (a, b, c) = cluster(3)
    async with trio.open_nursery() as nursery:
        await start_all(nursery, [a, b, c])
        jobs = [await a.tasks["work"].push(f"j{i}") for i in range(30)]
        jobs += [await b.tasks["work"].schedule(f"k{i}").delay(2) for i in range(30)]
        results = [await job for job in jobs]
        await trio.sleep(5 * LEASE)  # leases, claimers, heartbeats go on: nothing re-runs
        nursery.cancel_scope.cancel()
    assert results[0] == "j0-done"
    tags = Counter(tag for _, tag, _ in ran)
    assert len(tags) == 60
    assert set(tags.values()) == {1}
    assert store.rows == {}


async def test_a_busy_instance_hands_due_jobs_to_another(autojump_clock: MockClock) -> None:
    _store, ran, (a, b) = cluster(2, max_concurrency=1)
    async with trio.open_nursery() as nursery:
        await start_all(nursery, [b, a])
        busy = await a.tasks["work"].push("busy", 30.0)
        start = trio.current_time()
        handed = await a.tasks["work"].push("handed", 0.0)
        assert await handed == "handed-done"  # its result came back to A
        assert trio.current_time() - start < 0.1  # within 100 ms, not after A's 30 s job
        assert await busy == "busy-done"
        nursery.cancel_scope.cancel()
    assert ("B", "handed", 1) in ran
    assert ("A", "busy", 1) in ran


async def _outcome_elsewhere(task: str, tag: str) -> tuple[Any, Ran]:
    """Run ``task`` pushed on a busy A, so that B runs it; A's handle after it ended."""
    _store, ran, (a, b) = cluster(2, max_concurrency=1)
    async with trio.open_nursery() as nursery:
        await start_all(nursery, [b, a])
        await a.tasks["work"].push("busy", 60.0)
        job = await a.tasks[task].push(tag)
        with trio.fail_after(10):
            await job.wait()
        nursery.cancel_scope.cancel()
    return job, ran


async def test_failure_elsewhere_reaches_the_scheduling_instance(autojump_clock: MockClock) -> None:
    job, ran = await _outcome_elsewhere("fail", "f")
    assert ("B", "f", 1) in ran
    assert job.status is JobStatus.FAILED
    with pytest.raises(JobFailedError) as info:
        job.result()
    assert isinstance(info.value.__cause__, RemoteJobError)
    assert "ValueError: bad f" in str(info.value.__cause__)


async def test_timeout_elsewhere_reaches_the_scheduling_instance(autojump_clock: MockClock) -> None:
    job, ran = await _outcome_elsewhere("slow", "s")
    assert ("B", "s", 1) in ran
    assert job.status is JobStatus.TIMEOUT
    with pytest.raises(JobTimeoutError):
        job.result()


async def test_a_result_that_cannot_be_stored_fails_the_job_clearly(
    autojump_clock: MockClock,
) -> None:
    job, ran = await _outcome_elsewhere("odd", "o")
    assert ("B", "o", 1) in ran
    assert job.status is JobStatus.FAILED
    cause = job.exception
    assert isinstance(cause, RemoteJobError)
    assert "cannot be stored" in str(cause)
    assert "SerializationError" in str(cause)


async def test_a_dead_instances_retry_is_taken_over_with_its_attempt(
    autojump_clock: MockClock,
) -> None:
    store, ran, (a, b) = cluster(2)
    async with trio.open_nursery() as nursery:
        await start_all(nursery, [a, b])
        await a.tasks["flaky"].push("r")
        await trio.sleep(0.1)  # attempt 1 failed on A; retry 2 stored, leased to A
        assert ("A", "r", 1) in ran
        a.kill()
        killed = trio.current_time()
        while ("B", "r", 2) not in ran:
            await trio.sleep(0.05)
        taken = trio.current_time() - killed
        nursery.cancel_scope.cancel()
    assert [r for r in ran if r[1] == "r"] == [("A", "r", 1), ("B", "r", 2)]
    assert taken <= LEASE + LEASE / 3 + 0.5  # the lease window, plus a beat and a poll
    assert store.rows == {}


async def test_a_job_running_on_a_killed_instance_runs_again_elsewhere(
    autojump_clock: MockClock,
) -> None:
    _store, ran, (a, b) = cluster(2)
    async with trio.open_nursery() as nursery:
        await start_all(nursery, [a, b])
        await a.tasks["work"].push("long", 100.0)
        await trio.sleep(1)
        a.kill()
        with trio.fail_after(2 * LEASE):
            while ("B", "long", 1) not in ran:
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    assert [r[0] for r in ran if r[1] == "long"] == ["A", "B"]  # at-least-once


async def test_a_future_job_of_a_dead_instance_runs_at_its_time_elsewhere(
    autojump_clock: MockClock,
) -> None:
    store, ran, (a, b) = cluster(2)
    async with trio.open_nursery() as nursery:
        await start_all(nursery, [a, b])
        job = await a.tasks["work"].schedule("later").delay(20)
        due = trio.current_time() + 20
        a.kill()
        while not ran:
            await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    assert ran == [("B", "later", 1)]
    assert abs(trio.current_time() - due) < 0.5
    assert job.id not in store.rows


async def test_lookup_job_finds_a_job_of_another_instance(autojump_clock: MockClock) -> None:
    _store, ran, (a, b) = cluster(2)
    async with trio.open_nursery() as nursery:
        await start_all(nursery, [a, b])
        job = await a.tasks["work"].schedule("x").delay(5)
        assert b.app.find_job(job.id) is None  # not active on B
        found = await b.app.lookup_job(job.id)
        assert found is not None
        assert found.id == job.id
        assert found.task_name == "work"
        assert found.status is JobStatus.SCHEDULED
        assert await b.app.lookup_job("nope") is None
        with trio.fail_after(10):
            assert await found == "x-done"
        nursery.cancel_scope.cancel()
    assert ran == [("A", "x", 1)]


async def test_cancel_from_another_instance_of_a_scheduled_job(autojump_clock: MockClock) -> None:
    store, ran, (a, b) = cluster(2)
    async with trio.open_nursery() as nursery:
        await start_all(nursery, [a, b])
        job = await a.tasks["work"].schedule("x").delay(30)
        found = await b.app.lookup_job(job.id)
        assert found is not None
        await found.cancel()
        assert found.status is JobStatus.CANCELLED
        with trio.fail_after(LEASE / 3 + 0.5):  # bound: one heartbeat interval
            await job.wait()
        assert job.status is JobStatus.CANCELLED
        await trio.sleep(40)
        nursery.cancel_scope.cancel()
    assert ran == []
    assert store.rows == {}


async def test_cancel_from_another_instance_of_a_running_job(autojump_clock: MockClock) -> None:
    _store, ran, (a, b) = cluster(2)
    async with trio.open_nursery() as nursery:
        await start_all(nursery, [a, b])
        job = await a.tasks["work"].push("long", 100.0)
        await trio.sleep(0.5)
        assert job.status is JobStatus.RUNNING
        found = await b.app.lookup_job(job.id)
        assert found is not None
        await found.cancel()
        with trio.fail_after(LEASE / 3 + 0.5):
            await job.wait()
        nursery.cancel_scope.cancel()
    assert job.status is JobStatus.CANCELLED
    with pytest.raises(JobCancelledError):
        job.result()
    assert [r[1] for r in ran] == ["long"]


async def test_cancel_of_an_orphan_deletes_its_row(autojump_clock: MockClock) -> None:
    store, ran, (a, b) = cluster(2)
    async with trio.open_nursery() as nursery:
        await start_all(nursery, [a, b])
        job = await a.tasks["work"].schedule("x").delay(300)
        a.kill()
        await trio.sleep(0.1)
        found = await b.app.lookup_job(job.id)
        assert found is not None
        await found.cancel()  # A is dead but its lease runs on: the command is never applied
        await trio.sleep(2 * LEASE)
        assert job.id not in store.rows  # the cancel was made again once the lease expired
        await trio.sleep(300)
        nursery.cancel_scope.cancel()
    assert ran == []


async def test_replace_from_another_instance(autojump_clock: MockClock) -> None:
    _store, ran, (a, b) = cluster(2)
    async with trio.open_nursery() as nursery:
        await start_all(nursery, [a, b])
        job = await a.tasks["work"].schedule("old").delay(30, job_id="x")
        with pytest.raises(DuplicateJobError):
            await b.tasks["work"].schedule("new").delay(10, job_id="x")
        follower = await b.tasks["work"].schedule("new").delay(10, job_id="x", replace=True)
        assert follower.id == "x"
        await trio.sleep(LEASE / 3 + 0.5)  # the owner applied the command
        expected = START + timedelta(seconds=LEASE / 3 + 0.1 + 10)
        assert abs((job.exec_at - expected).total_seconds()) < 0.01
        assert await follower == "new-done"
        assert job.status is JobStatus.SUCCESS
        await trio.sleep(30)
        nursery.cancel_scope.cancel()
    assert ran == [("A", "new", 1)]


async def test_refusal_of_a_second_instance_on_a_store_that_cannot_share(
    autojump_clock: MockClock,
) -> None:
    class PresenceOnly(MemoryStorage):
        @property
        def can_share(self) -> bool:
            return False

    store, clock, ran = PresenceOnly(), VirtualWallClock(START), []
    a, b = Instance("A", store, clock, ran), Instance("B", store, clock, ran)
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        with pytest.raises(StorageError, match=r"'A' \(host '.*', pid \d+\)"):
            async with b.app:
                pass
        job = await a.tasks["work"].push("alone")  # A runs as a lone instance
        named = await a.tasks["work"].schedule("named").push(job_id="named")
        assert await job == "alone-done"
        assert await named == "named-done"
        nursery.cancel_scope.cancel()
    assert list(store.instance_rows) == []  # A unregistered when it stopped


async def test_a_second_instance_starts_once_the_first_stopped(autojump_clock: MockClock) -> None:
    class PresenceOnly(MemoryStorage):
        @property
        def can_share(self) -> bool:
            return False

    store, clock, ran = PresenceOnly(), VirtualWallClock(START), []
    a, b = Instance("A", store, clock, ran), Instance("B", store, clock, ran)
    async with a.app:
        await a.tasks["work"].schedule("later").delay(10)
    async with b.app:  # A unregistered: B restores its row and runs it
        await b.app.wait_all()
    assert ran == [("B", "later", 1)]


async def test_one_schedule_for_a_cron_across_three_instances_with_a_stall(
    autojump_clock: MockClock,
) -> None:
    _store, ran, (a, b, c) = cluster(3)
    async with trio.open_nursery() as nursery:
        await start_all(nursery, [a, b, c])
        job = await a.tick.schedule().cron("* * * * * * *", job_id="tick")
        await trio.sleep(10)
        resume = a.stall()  # A, the owner, stops heartbeating and claiming
        await trio.sleep(3 * LEASE)
        a.resume()  # its pending claim now fails: B or C took the cron over
        del resume
        await trio.sleep(20)
        nursery.cancel_scope.cancel()
    slots = slots_of(ran)
    assert len(slots) == len(set(slots))  # each slot at most once
    owners = [name for name, tag, _ in ran if tag == "tick"]
    assert owners[0] == "A"
    assert owners[-1] in "BC"
    assert len(slots) >= 28  # a handful missed while the lease ran out (misfire ONCE)
    assert job.id == "tick"


async def test_declarative_cron_on_three_instances_is_one_schedule(
    autojump_clock: MockClock,
) -> None:
    store, clock, ran = MemoryStorage(), VirtualWallClock(START), []
    instances = [Instance(name, store, clock, ran) for name in "ABC"]
    for instance in instances:

        @instance.app.task(name="beat", cron="* * * * * * *")
        async def beat(name: str = instance.name) -> None:
            ran.append((name, "tick", trio.current_time()))

    async with trio.open_nursery() as nursery:
        for instance in instances:
            await nursery.start(instance.run)
        await trio.sleep(30)
        nursery.cancel_scope.cancel()
    times = [round(when, 3) for _, _, when in ran]
    assert len(times) == len(set(times))
    assert 28 <= len(times) <= 31
    assert {name for name, _, _ in ran} == {"A"}  # the first instance keeps it


async def test_misfire_is_applied_once_by_the_instance_that_adopts_a_cron(
    autojump_clock: MockClock,
) -> None:
    _store, ran, (a, b) = cluster(2)
    async with trio.open_nursery() as nursery:
        await start_all(nursery, [a, b])
        await a.tick.schedule().cron("* * * * * * *", job_id="tick")
        await trio.sleep(5)
        a.kill()
        killed = len(slots_of(ran))
        await trio.sleep(2 * LEASE + 5)
        nursery.cancel_scope.cancel()
    slots = slots_of(ran)
    after = [name for name, tag, _ in ran if tag == "tick"][killed:]
    assert set(after) == {"B"}
    assert len(slots) == len(set(slots))
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(slots)]
    assert max(gaps) >= LEASE  # the slots missed during the takeover ran once, not each


async def test_an_instance_paused_past_its_lease_loses_its_running_job(
    autojump_clock: MockClock,
) -> None:
    store, ran, (a, b) = cluster(2)
    async with trio.open_nursery() as nursery:
        await start_all(nursery, [a, b])
        job = await a.tasks["work"].push("long", 100.0)
        await trio.sleep(0.5)
        a.stall()  # A's heartbeat stops; its job goes on running
        with trio.fail_after(2 * LEASE):
            while ("B", "long", 1) not in ran:
                await trio.sleep(0.05)
        assert job.status is JobStatus.RUNNING  # A does not know yet
        a.resume()
        with trio.fail_after(LEASE / 3 + 0.5):  # its next heartbeat sees the row is B's
            while job.status is JobStatus.RUNNING:
                await trio.sleep(0.05)
        assert job.status is JobStatus.SCHEDULED  # A's handle now follows the job on B
        assert store.rows[job.id].lease_owner == "B"
        with trio.fail_after(110):
            assert await job == "long-done"  # B's result reaches A's handle
        nursery.cancel_scope.cancel()
    assert [r[0] for r in ran] == ["A", "B"]


class FlakyStore(MemoryStorage):
    """A store whose slot claims fail while ``down`` is set (database restarted)."""

    down = False

    async def claim_cron_slots(self, claims: Any, /, *, now: Any, lease: Any) -> set[str]:
        if self.down:
            raise StorageError("connection refused")
        return await super().claim_cron_slots(claims, now=now, lease=lease)


async def test_slot_claims_that_fail_are_retried_and_fire_late_not_twice(
    autojump_clock: MockClock,
) -> None:
    store, clock, ran = FlakyStore(), VirtualWallClock(START), []
    a, b = Instance("A", store, clock, ran), Instance("B", store, clock, ran)
    async with trio.open_nursery() as nursery:
        await start_all(nursery, [a, b])
        await a.tick.schedule().cron("* * * * * * *", job_id="tick")
        await trio.sleep(5)
        store.down = True
        before = len(slots_of(ran))
        await trio.sleep(2)
        assert len(slots_of(ran)) == before  # no claim, no fire
        store.down = False
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    slots = slots_of(ran)
    assert len(slots) == len(set(slots))
    assert len(slots) > before
    assert {name for name, _, _ in ran} == {"A"}


async def test_a_cron_of_another_instance_is_found_and_cancelled(
    autojump_clock: MockClock,
) -> None:
    store, ran, (a, b) = cluster(2)
    async with trio.open_nursery() as nursery:
        await start_all(nursery, [a, b])
        job = await a.tick.schedule().cron("*/2 * * * * * *", job_id="tick")
        await trio.sleep(3)
        found = await b.app.lookup_job("tick")
        assert found is not None
        assert found.is_cron()
        assert found.cron_expression == "*/2 * * * * * *"
        await found.cancel()
        with trio.fail_after(LEASE / 3 + 0.5):
            await job.wait()
        fired = len(slots_of(ran))
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    assert job.status is JobStatus.CANCELLED
    assert len(slots_of(ran)) == fired
    assert "tick" not in store.rows


async def test_a_stalled_instance_ending_a_cron_does_not_delete_the_row_taken_over(
    autojump_clock: MockClock,
) -> None:
    store, ran, (a, b) = cluster(2)
    async with trio.open_nursery() as nursery:
        await start_all(nursery, [a, b])
        cron = Cron("* * * * * * *", max_runs=1)
        await a.tasks["work"].schedule("c", 3 * LEASE).cron(cron, job_id="c")
        with trio.fail_after(5):
            while ("A", "c", 1) not in ran:
                await trio.sleep(0.05)
        a.stall()  # A's run goes on; its lease runs out and B takes the cron over
        with trio.fail_after(2 * LEASE):
            while store.rows["c"].lease_owner != "B":
                await trio.sleep(0.05)
        with trio.fail_after(3 * LEASE):  # A's run ends: max_runs reached there
            while a.app.find_job("c") is not None:
                await trio.sleep(0.05)
        await trio.sleep(0.5)
        assert "c" in store.rows  # B's row: not deleted by the stalled A
        assert store.rows["c"].lease_owner == "B"
        nursery.cancel_scope.cancel()


async def _takeover_delay(store: MemoryStorage, a: Instance, ran: Ran) -> float:
    """Kill A while it runs a long job: seconds from the job's lease expiry (as stored at
    the kill) to its start on another instance."""
    await a.tasks["work"].schedule("long", 100.0).push(job_id="long")
    await trio.sleep(1.3)  # a heartbeat renewed the lease meanwhile
    expires = store.rows["long"].lease_expires_at
    assert expires is not None
    expiry = trio.current_time() + (expires - a.app.wall_clock.now()).total_seconds()
    a.kill()
    while not any(name != "A" and tag == "long" for name, tag, _ in ran):
        await trio.sleep(0.001)
    return trio.current_time() - expiry


async def test_takeover_happens_at_lease_expiry_not_a_poll_later(
    autojump_clock: MockClock,
) -> None:
    store, ran, (a, b, c) = cluster(3, poll_interval=5 * LEASE)  # the poll never helps
    async with trio.open_nursery() as nursery:
        await start_all(nursery, [a, b, c])
        late = await _takeover_delay(store, a, ran)
        nursery.cancel_scope.cancel()
    assert 0 <= late <= TAKEOVER_SLACK + 0.005  # never before the lease ran out


async def test_takeover_falls_back_to_polling_when_the_store_cannot_tell_expiries(
    autojump_clock: MockClock,
) -> None:
    class NoExpiries(MemoryStorage):
        async def next_lease_expiry(self, *, owner: str, now: datetime) -> datetime | None:
            await trio.lowlevel.checkpoint()
            return None

    store, clock, ran = NoExpiries(), VirtualWallClock(START), []
    a, b = (Instance(name, store, clock, ran, poll_interval=1.0) for name in "AB")
    async with trio.open_nursery() as nursery:
        await start_all(nursery, [a, b])
        late = await _takeover_delay(store, a, ran)
        nursery.cancel_scope.cancel()
    assert 0 <= late <= 1.0 + 0.005  # within one poll_interval of the lease expiry


class PresenceStore(Storage):
    """A custom backend written from the interface: rows, and presence (instances and
    heartbeats) without leases, so it cannot share."""

    def __init__(self) -> None:
        self.rows: dict[str, StoredJob] = {}
        self.instance_rows: dict[str, InstanceInfo] = {}

    async def startup(self) -> None:
        await trio.lowlevel.checkpoint()

    async def shutdown(self) -> None:
        await trio.lowlevel.checkpoint()

    async def load(self) -> LoadResult:
        await trio.lowlevel.checkpoint()
        return LoadResult(jobs=list(self.rows.values()))

    async def apply(self, writes: Sequence[Write], /) -> None:
        await trio.lowlevel.checkpoint()
        for write in writes:
            if isinstance(write, Upsert):
                self.rows[write.job.job_id] = write.job
            elif isinstance(write, Delete):
                self.rows.pop(write.job_id, None)

    async def register_instance(self, info: InstanceInfo, /) -> None:
        await trio.lowlevel.checkpoint()
        self.instance_rows[info.instance_id] = info

    async def heartbeat(
        self, *, instance_id: str, now: datetime, lease_until: datetime
    ) -> Heartbeat:
        await trio.lowlevel.checkpoint()
        info = self.instance_rows.get(instance_id)
        if info is not None:
            self.instance_rows[instance_id] = attrs.evolve(info, heartbeat_at=now)
        return Heartbeat(owned=frozenset(), commands=())

    async def instances(self) -> list[InstanceInfo]:
        await trio.lowlevel.checkpoint()
        return list(self.instance_rows.values())

    async def unregister_instance(self, *, instance_id: str) -> None:
        await trio.lowlevel.checkpoint()
        self.instance_rows.pop(instance_id, None)


async def test_a_custom_backend_without_leases_refuses_a_second_live_instance(
    autojump_clock: MockClock,
) -> None:
    store, clock, ran = PresenceStore(), VirtualWallClock(START), []
    assert not store.can_share
    a, b = Instance("A", store, clock, ran), Instance("B", store, clock, ran)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await a.tasks["work"].schedule("later").delay(100, job_id="later")
        await trio.sleep(10 * LEASE)  # A's heartbeats keep it live
        # No virtual time passes while B is refused: its clean-up waits for a thread (the
        # process pool closing), which autojump does not see, and jumping meanwhile would
        # make A run the job before it is killed.
        autojump_clock.autojump_threshold = math.inf
        with pytest.raises(StorageError, match=r"PresenceStore.*cannot share.*'A' \(host"):
            async with b.app:
                pass
        autojump_clock.autojump_threshold = 0
        assert set(store.instance_rows) == {"A"}  # B's row went with its refusal
        a.kill()  # A dies without unregistering: once its heartbeat is a lease old...
        await trio.sleep(LEASE + 0.1)
        async with b.app:  # ... B starts, restores A's row and runs it
            await b.app.wait_all()
        nursery.cancel_scope.cancel()
    assert ran == [("B", "later", 1)]
