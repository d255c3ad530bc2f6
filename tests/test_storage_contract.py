"""The storage contract, part 1: rows, batches, versions, claims of due rows and orphans.

Every test runs against every backend of ``_stores.py`` (the ``backend`` fixture): a SQLite
file and a fresh PostgreSQL schema. ``await backend.open()`` is one more connection to the
same store, as a second app instance would hold.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest
import trio
from _stores import Backend

from jobify_trio.storage import (
    Delete,
    StorageError,
    StoredJob,
    StoredState,
    Trigger,
    Upsert,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def job(
    job_id: str,
    *,
    at: float = 0,
    trigger: Trigger = Trigger.AT,
    owner: str | None = None,
    until: float | None = None,
    task: str = "t",
    state: StoredState = StoredState.SCHEDULED,
) -> StoredJob:
    """A row due ``at`` seconds after T0, leased to ``owner`` until ``until`` seconds."""
    return StoredJob(
        job_id=job_id,
        task_name=task,
        trigger=trigger,
        next_run_at=T0 + timedelta(seconds=at),
        arguments=b'{"v":1,"args":[],"kwargs":{}}',
        state=state,
        cron=None if trigger is not Trigger.CRON else '{"expr":"* * * * *"}',
        lease_owner=owner,
        lease_expires_at=None if until is None else T0 + timedelta(seconds=until),
    )


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# -- rows and batches ---------------------------------------------------------------------


async def test_every_column_round_trips(backend: Backend) -> None:
    store = await backend.open()
    full = StoredJob(
        job_id="full",
        task_name="report",
        trigger=Trigger.CRON,
        next_run_at=datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC),
        arguments=b"\x00\xff binary \x01",
        attempt=3,
        state=StoredState.RETRYING,
        cron='{"expr":"*/5 * * * *","runs":7}',
        lease_owner="host-1-abcd",
        lease_expires_at=datetime(2026, 3, 4, 5, 7, tzinfo=UTC),
        origin="host-2-ef01",
    )
    plain = job("plain", trigger=Trigger.PUSH, state=StoredState.PERMANENTLY_FAILED)
    await store.apply([Upsert(job=full), Upsert(job=plain)])
    loaded = await store.load()
    assert list(loaded.corrupt) == []
    assert {j.job_id: j for j in loaded.jobs} == {"full": full, "plain": plain}
    assert await store.get_job("full") == full
    assert await store.get_job("missing") is None
    other = await backend.open()
    assert await other.get_job("full") == full


async def test_a_batch_applies_in_order_and_all_or_nothing(backend: Backend) -> None:
    store = await backend.open()
    await store.add(job("a", at=1), job("b", at=2), job("c", at=3))
    await store.apply(
        [
            Delete(job_id="a"),
            Upsert(job=job("a", at=10)),
            Upsert(job=job("b", at=20)),
            Upsert(job=job("b", at=21)),
            Delete(job_id="c"),
            Delete(job_id="never-stored"),
        ]
    )
    rows = {j.job_id: j.next_run_at for j in (await store.load()).jobs}
    assert rows == {"a": at(10), "b": at(21)}
    await store.delete("a", "b")
    assert (await store.load()).jobs == []


async def test_large_batches_commit_in_one_call(backend: Backend) -> None:
    store = await backend.open()
    rows = [job(f"j{i:05}", at=i % 97) for i in range(20_000)]  # over SQLite's 32,766 variables
    await store.apply([Upsert(job=row) for row in rows])
    assert len((await store.load()).jobs) == 20_000
    await store.apply([Delete(job_id=row.job_id) for row in rows[:15_000]])
    assert len((await store.load()).jobs) == 5_000


async def test_an_unknown_schema_version_is_refused_and_rows_are_kept(backend: Backend) -> None:
    store = await backend.open()
    await store.add(job("a"))
    await store.shutdown()
    backend.opened.remove(store)
    backend.set_schema_version("99")
    with pytest.raises(StorageError, match=r"schema version '99' is not supported"):
        await backend.open()
    backend.set_schema_version("2" if backend.kind == "postgres" else "3")  # the current ones
    assert [j.job_id for j in (await (await backend.open()).load()).jobs] == ["a"]


# -- claims of due rows -------------------------------------------------------------------


async def test_claim_due_takes_due_unowned_one_off_rows_earliest_first(backend: Backend) -> None:
    store = await backend.open()
    await store.add(
        job("late", at=5),
        job("early", at=1, trigger=Trigger.PUSH),
        job("future", at=100),
        job("cron", at=0, trigger=Trigger.CRON),
        job("failed", at=0, state=StoredState.PERMANENTLY_FAILED),
        job("leased", at=0, owner="B", until=60),
        job("expired", at=2, owner="B", until=9),
    )
    claimed = await store.claim_due(owner="A", now=at(10), lease=LEASE, limit=2)
    assert [(j.job_id, j.lease_owner, j.lease_expires_at) for j in claimed] == [
        ("early", "A", at(40)),
        ("expired", "A", at(40)),
    ]
    rest = await store.claim_due(owner="C", now=at(10), lease=LEASE, limit=10)
    assert [j.job_id for j in rest] == ["late"]
    assert await store.claim_due(owner="C", now=at(10), lease=LEASE, limit=10) == []
    stored = await store.get_job("early")
    assert stored is not None
    assert (stored.lease_owner, stored.lease_expires_at) == ("A", at(40))


async def test_concurrent_claimers_never_get_the_same_row(backend: Backend) -> None:
    first, second = await backend.open(), await backend.open()
    await first.add(*(job(f"j{i:03}", at=i % 7) for i in range(120)))
    got: dict[str, list[str]] = {"A": [], "B": []}

    async def claimer(store: object, owner: str) -> None:
        assert hasattr(store, "claim_due")
        while True:
            jobs = await store.claim_due(owner=owner, now=at(10), lease=LEASE, limit=7)
            if not jobs:
                return
            got[owner].extend(j.job_id for j in jobs)

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(claimer, first, "A")
            nursery.start_soon(claimer, second, "B")
    assert not set(got["A"]) & set(got["B"])
    assert sorted(got["A"] + got["B"]) == [f"j{i:03}" for i in range(120)]


async def test_a_released_row_can_be_claimed_again(backend: Backend) -> None:
    from jobify_trio.storage import Release

    store = await backend.open()
    await store.add(job("a"))
    assert len(await store.claim_due(owner="A", now=at(1), lease=LEASE, limit=5)) == 1
    await store.apply([Release(job_id="a", owner="B")])  # not B's: no-op
    assert await store.claim_due(owner="C", now=at(1), lease=LEASE, limit=5) == []
    await store.apply([Release(job_id="a", owner="A")])
    stored = await store.get_job("a")
    assert stored is not None
    assert (stored.lease_owner, stored.lease_expires_at) == (None, None)
    assert [
        j.lease_owner for j in await store.claim_due(owner="C", now=at(1), lease=LEASE, limit=5)
    ] == ["C"]


async def test_next_due_at_sees_only_claimable_one_off_rows(backend: Backend) -> None:
    store = await backend.open()
    assert await store.next_due_at(now=at(0)) is None
    await store.add(
        job("leased", at=1, owner="B", until=60),
        job("cron", at=2, trigger=Trigger.CRON),
        job("failed", at=3, state=StoredState.PERMANENTLY_FAILED),
        job("free", at=50),
    )
    assert await store.next_due_at(now=at(0)) == at(50)
    assert await store.next_due_at(now=at(60)) == at(1)  # B's lease ran out


async def test_adopt_orphans_takes_expired_leases_unowned_crons_and_future_rows(
    backend: Backend,
) -> None:
    store = await backend.open()
    await store.add(
        job("dead-future", at=500, owner="dead", until=5),
        job("dead-cron", at=500, trigger=Trigger.CRON, owner="dead", until=5),
        job("free-cron", at=700, trigger=Trigger.CRON),
        job("live", at=0, owner="live", until=60),
        job("free-future", at=500),
        job("free-due", at=10),  # due: left to claim_due (capacity)
        job("dead-failed", at=0, owner="dead", until=5, state=StoredState.PERMANENTLY_FAILED),
    )
    adopted = await store.adopt_orphans(owner="A", now=at(10), lease=LEASE, limit=10)
    assert sorted(j.job_id for j in adopted) == [
        "dead-cron",
        "dead-future",
        "free-cron",
        "free-future",
    ]
    assert {j.lease_owner for j in adopted} == {"A"}
    assert {j.lease_expires_at for j in adopted} == {at(40)}
    assert await store.adopt_orphans(owner="B", now=at(10), lease=LEASE, limit=10) == []
    limited = await store.adopt_orphans(owner="B", now=at(41), lease=LEASE, limit=2)
    assert len(limited) == 2


async def test_mixed_batches_equal_their_writes_applied_one_by_one(backend: Backend) -> None:
    """Random batches of upserts, deletes and releases touching the same rows: the store
    ends as a model that applies each write in order (stores may merge a batch's writes)."""
    import random

    from jobify_trio.storage import Release, Write

    store = await backend.open()
    rng = random.Random(1234)
    model: dict[str, StoredJob] = {}
    for round_ in range(60):
        writes: list[Write] = []
        for _ in range(rng.randint(1, 12)):
            job_id = f"r{rng.randint(0, 5)}"
            kind = rng.choice(["upsert", "upsert", "delete", "release"])
            owner = rng.choice(["A", "B", None])
            if kind == "upsert":
                row = job(job_id, at=round_, owner=owner, until=None if owner is None else 99)
                writes.append(Upsert(job=row))
                model[job_id] = row
            elif kind == "delete":
                writes.append(Delete(job_id=job_id))
                model.pop(job_id, None)
            elif owner is not None:
                writes.append(Release(job_id=job_id, owner=owner))
                if job_id in model and model[job_id].lease_owner == owner:
                    model[job_id] = attrs.evolve(
                        model[job_id], lease_owner=None, lease_expires_at=None
                    )
        await store.apply(writes)
        assert {j.job_id: j for j in (await store.load()).jobs} == model, writes
