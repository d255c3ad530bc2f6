"""The storage contract, part 2: slot claims, take/delete, presence, commands, results,
retention and wake-ups, against every backend of ``_stores.py``."""

from __future__ import annotations

import trio
from _stores import Backend
from test_storage_contract import LEASE, at, job

from jobify_trio.storage import (
    Command,
    CommandKind,
    InstanceInfo,
    PutResult,
    ResultStatus,
    SendCommand,
    SlotClaim,
    StoredResult,
    StoredState,
    Trigger,
    Upsert,
)


def slot(
    job_id: str, seconds: float, *, owner: str = "A", expected: float | None = None
) -> SlotClaim:
    """Claim the slot at ``seconds``, expecting the row's next run there (or ``expected``)."""
    return SlotClaim(
        job_id=job_id,
        slot=at(seconds),
        expected_next_run_at=at(seconds if expected is None else expected),
        owner=owner,
        cron=f'{{"expr":"* * * * * *","last":{seconds}}}',
        next_run_at=at(seconds + 1),
    )


def instance(instance_id: str, seconds: float = 0) -> InstanceInfo:
    return InstanceInfo(
        instance_id=instance_id, host="h", pid=7, started_at=at(0), heartbeat_at=at(seconds)
    )


# -- cron slot claims ---------------------------------------------------------------------


async def test_a_slot_claim_advances_the_row_and_leases_it(backend: Backend) -> None:
    store = await backend.open()
    await store.add(job("c", at=5, trigger=Trigger.CRON, owner="A", until=30))
    assert await store.claim_cron_slots([slot("c", 5)], now=at(5), lease=LEASE) == {"c"}
    row = await store.get_job("c")
    assert row is not None
    assert (row.next_run_at, row.cron, row.lease_owner) == (at(6), slot("c", 5).cron, "A")
    assert row.lease_expires_at == at(35)
    # the same slot again, and a claim whose expected next run is stale: both refused
    assert await store.claim_cron_slots([slot("c", 5, expected=6)], now=at(6), lease=LEASE) == set()
    assert await store.claim_cron_slots([slot("c", 4)], now=at(6), lease=LEASE) == set()
    assert (await store.get_job("c")) == row


async def test_each_slot_is_claimed_once_by_concurrent_instances(backend: Backend) -> None:
    stores = [await backend.open(), await backend.open()]
    await stores[0].add(*(job(f"c{i}", at=10, trigger=Trigger.CRON) for i in range(40)))
    won: dict[str, set[str]] = {}

    async def claim(index: int) -> None:
        owner = f"I{index}"
        claims = [slot(f"c{i}", 10, owner=owner) for i in range(40)]
        won[owner] = await stores[index].claim_cron_slots(claims, now=at(10), lease=LEASE)

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for index in range(2):
                nursery.start_soon(claim, index)
    assert not won["I0"] & won["I1"]
    assert won["I0"] | won["I1"] == {f"c{i}" for i in range(40)}
    for row in (await stores[0].load()).jobs:
        assert row.next_run_at == at(11)
        assert row.lease_owner == ("I0" if row.job_id in won["I0"] else "I1")


async def test_a_lagging_claimer_cannot_refire_a_slot_whose_claims_were_pruned(
    backend: Backend,
) -> None:
    store = await backend.open()
    await store.add(job("c", at=5, trigger=Trigger.CRON))
    assert await store.claim_cron_slots([slot("c", 5, owner="A")], now=at(5), lease=LEASE) == {"c"}
    await store.prune(results_before=at(0), claims_before=at(10_000), instances_before=at(0))
    # B stalled before its claim of slot 5 and wakes up after A's lease ran out
    late = slot("c", 5, owner="B")
    assert await store.claim_cron_slots([late], now=at(100), lease=LEASE) == set()
    row = await store.get_job("c")
    assert row is not None
    assert (row.next_run_at, row.lease_owner) == (at(6), "A")


async def test_a_slot_claim_fails_on_a_row_another_live_instance_owns(backend: Backend) -> None:
    store = await backend.open()
    await store.add(job("c", at=5, trigger=Trigger.CRON, owner="B", until=30))
    assert await store.claim_cron_slots([slot("c", 5, owner="A")], now=at(5), lease=LEASE) == set()
    assert await store.claim_cron_slots([slot("c", 5, owner="A")], now=at(31), lease=LEASE) == {"c"}


async def test_a_thousand_claims_in_one_call_including_successive_slots(backend: Backend) -> None:
    store = await backend.open()
    await store.add(*(job(f"c{i}", at=1, trigger=Trigger.CRON) for i in range(1000)))
    claims = [slot(f"c{i}", 1) for i in range(1000)]
    claims += [slot("c0", 2), slot("c0", 3)]  # the same job's next slots, in order
    assert await store.claim_cron_slots(claims, now=at(3), lease=LEASE) == {
        f"c{i}" for i in range(1000)
    }
    row = await store.get_job("c0")
    assert row is not None
    assert row.next_run_at == at(4)
    assert await store.claim_cron_slots([], now=at(3), lease=LEASE) == set()


# -- take and delete ----------------------------------------------------------------------


async def test_try_take_and_try_delete_respect_live_owners_only(backend: Backend) -> None:
    store = await backend.open()
    assert await store.try_take(job("d", owner="A", until=30), now=at(0)) is None  # created
    assert await store.try_take(job("d", at=9, owner="B", until=60), now=at(10)) == "A"
    assert await store.try_delete("d", owner="B", now=at(10)) == "A"
    assert await store.try_take(job("d", at=7, owner="A", until=40), now=at(10)) is None
    row = await store.get_job("d")
    assert row is not None
    assert (row.next_run_at, row.lease_owner) == (at(7), "A")
    # A dies (lease 40 s): B takes the row, then deletes it
    assert await store.try_take(job("d", at=9, owner="B", until=100), now=at(41)) is None
    assert await store.try_delete("d", owner="A", now=at(50)) == "B"
    assert await store.try_delete("d", owner="B", now=at(50)) is None
    assert await store.get_job("d") is None
    assert await store.try_delete("d", owner="B", now=at(50)) is None
    await store.add(job("free"))
    assert await store.try_delete("free", owner="Z", now=at(0)) is None


# -- presence and commands ----------------------------------------------------------------


async def test_heartbeat_renews_leases_and_delivers_commands_once(backend: Backend) -> None:
    store, other = await backend.open(), await backend.open()
    await store.register_instance(instance("A"))
    await store.register_instance(instance("B"))
    await store.add(
        job("a1", owner="A", until=30),
        job("a2", owner="A", until=30),
        job("b", owner="B", until=30),
    )
    cancel = Command(target="A", job_id="a1", kind=CommandKind.CANCEL, created_at=at(1))
    replace = Command(
        target="A", job_id="a2", kind=CommandKind.REPLACE, payload=b"\x01new", created_at=at(2)
    )
    await other.apply([SendCommand(command=cancel), SendCommand(command=replace)])
    beat = await store.heartbeat(instance_id="A", now=at(10), lease_until=at(40))
    assert beat.owned == {"a1", "a2"}
    assert [(c.job_id, c.kind, c.payload, c.created_at) for c in beat.commands] == [
        ("a1", CommandKind.CANCEL, b"", at(1)),
        ("a2", CommandKind.REPLACE, b"\x01new", at(2)),
    ]
    assert beat.commands[0].command_id < beat.commands[1].command_id
    again = await other.heartbeat(instance_id="A", now=at(11), lease_until=at(41))
    assert again.commands == ()
    row = await store.get_job("a1")
    assert row is not None
    assert row.lease_expires_at == at(41)
    b_row = await store.get_job("b")
    assert b_row is not None
    assert b_row.lease_expires_at == at(30)
    found = {i.instance_id: i for i in await other.instances()}
    assert found["A"].heartbeat_at == at(11)
    assert found["B"] == instance("B")


async def test_unregister_ends_leases_and_keeps_rows(backend: Backend) -> None:
    store = await backend.open()
    await store.register_instance(instance("A"))
    await store.add(job("a", at=500, owner="A", until=30))
    await store.unregister_instance(instance_id="A")
    assert await store.instances() == []
    row = await store.get_job("a")
    assert row is not None
    assert (row.lease_owner, row.lease_expires_at) == (None, None)
    assert await store.try_delete("a", owner="B", now=at(1)) is None


# -- results and retention ----------------------------------------------------------------


async def test_results_are_stored_fetched_and_pruned(backend: Backend) -> None:
    store, other = await backend.open(), await backend.open()
    ok = StoredResult(
        job_id="a", origin="A", status=ResultStatus.SUCCESS, value=b"42", finished_at=at(1)
    )
    failed = StoredResult(
        job_id="b",
        origin=None,
        status=ResultStatus.FAILED,
        error="ValueError: bad",
        finished_at=at(5),
    )
    await other.apply([Upsert(job=job("x")), PutResult(result=ok), PutResult(result=failed)])
    assert await store.fetch_results(["a", "b", "zz"]) == [ok, failed]
    assert await store.fetch_results([]) == []
    await store.register_instance(instance("old", 0))
    await store.register_instance(instance("new", 9))
    await store.add(job("c", at=1, trigger=Trigger.CRON))
    await store.claim_cron_slots([slot("c", 1)], now=at(1), lease=LEASE)
    await store.prune(results_before=at(3), claims_before=at(0), instances_before=at(5))
    assert await store.fetch_results(["a", "b"]) == [failed]
    assert [i.instance_id for i in await store.instances()] == ["new"]


async def test_prune_drops_old_commands_to_instances_that_are_gone(backend: Backend) -> None:
    store = await backend.open()
    await store.register_instance(instance("old", 0))
    await store.register_instance(instance("new", 9))

    def cancel(target: str, seconds: float) -> SendCommand:
        return SendCommand(
            command=Command(
                target=target, job_id=f"{target}-{seconds}", kind=CommandKind.CANCEL,
                created_at=at(seconds),
            )
        )  # fmt: skip

    await store.apply([cancel("old", 1), cancel("new", 1), cancel("never", 2), cancel("old", 7)])
    await store.prune(results_before=at(0), claims_before=at(0), instances_before=at(5))
    taken = {}
    for target in ("old", "new", "never"):
        beat = await store.heartbeat(instance_id=target, now=at(10), lease_until=at(40))
        taken[target] = [c.job_id for c in beat.commands]
    # the dead instance's old command and the one to an instance that never was are
    # gone; a command younger than the cut-off, or to a live instance, is kept
    assert taken == {"old": ["old-7"], "new": ["new-1"], "never": []}


async def test_many_results_fetch_in_one_call(backend: Backend) -> None:
    store = await backend.open()
    results = [
        StoredResult(job_id=f"r{i:04}", origin="A", status="success", value=b"1", finished_at=at(i))
        for i in range(1500)
    ]
    await store.apply([PutResult(result=r) for r in results])
    found = await store.fetch_results([r.job_id for r in results])
    assert sorted(found, key=lambda r: r.job_id) == results


# -- wake-ups -----------------------------------------------------------------------------


async def test_wait_changed_sees_another_connections_change(backend: Backend) -> None:
    store, other = await backend.open(), await backend.open()
    with trio.fail_after(10):
        while await store.wait_changed(poll_interval=0.2):
            pass  # settle: a first wake-up may report the listener's start
        before = trio.current_time()
        assert await store.wait_changed(poll_interval=0.2) is False
        assert trio.current_time() - before >= 0.15
        seen = trio.Event()

        async def waiter() -> None:
            if await store.wait_changed(poll_interval=5):
                seen.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await trio.sleep(0.1)
            start = trio.current_time()
            await other.add(job("due-unowned"))
            await seen.wait()
            assert trio.current_time() - start < 1.0


async def test_concurrent_takes_of_a_new_row_have_one_winner(backend: Backend) -> None:
    stores = [await backend.open(), await backend.open()]
    results: dict[tuple[str, int], str | None] = {}

    async def take(index: int, job_id: str) -> None:
        row = job(job_id, owner=f"I{index}", until=60)
        results[job_id, index] = await stores[index].try_take(row, now=at(0))

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for n in range(20):
                for index in range(2):
                    nursery.start_soon(take, index, f"d{n}")
    for n in range(20):
        outcome = {results[f"d{n}", 0], results[f"d{n}", 1]}
        assert outcome in ({None, "I0"}, {None, "I1"})
        row = await stores[0].get_job(f"d{n}")
        assert row is not None
        winner = 0 if results[f"d{n}", 0] is None else 1
        assert row.lease_owner == f"I{winner}"


async def test_concurrent_slot_batches_in_any_order_never_deadlock(backend: Backend) -> None:
    """Three instances claim the same 200 slots per step, each batch in its own order:
    every slot is won once and no batch fails (row locks are taken in one order)."""
    import random

    stores = [await backend.open() for _ in range(3)]
    await stores[0].add(*(job(f"c{i:03}", at=0, trigger=Trigger.CRON) for i in range(200)))
    wins: dict[tuple[str, int], int] = {}
    rng = random.Random(9)

    async def claimer(index: int) -> None:
        for step in range(8):
            ids = [f"c{i:03}" for i in range(200)]
            rng.shuffle(ids)
            claims = [slot(job_id, step, owner="X") for job_id in ids]
            for job_id in await stores[index].claim_cron_slots(claims, now=at(0), lease=LEASE):
                wins[job_id, step] = wins.get((job_id, step), 0) + 1

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for index in range(3):
                nursery.start_soon(claimer, index)
    assert set(wins.values()) == {1}
    assert {job_id for job_id, step in wins if step == 0} == {f"c{i:03}" for i in range(200)}


# -- what a caller already holds, lease boundaries, the empty release -------------------


async def test_claims_never_return_rows_the_caller_holds(backend: Backend) -> None:
    store = await backend.open()
    await store.add(
        job("mine-due", at=1, owner="A", until=30),
        job("mine-future", at=500, owner="A", until=30),
        job("mine-cron", at=1, trigger=Trigger.CRON, owner="A", until=30),
    )
    assert await store.claim_due(owner="A", now=at(10), lease=LEASE, limit=10) == []
    assert await store.adopt_orphans(owner="A", now=at(10), lease=LEASE, limit=10) == []
    assert await store.next_due_at(now=at(10)) is None


async def test_a_lease_ends_at_its_expiry_time_in_every_store(backend: Backend) -> None:
    """Held while ``lease_expires_at > now``; at ``now == lease_expires_at`` it expired."""
    store = await backend.open()
    await store.add(job("a", at=1, owner="B", until=20))
    assert await store.claim_due(owner="A", now=at(19), lease=LEASE, limit=5) == []
    assert await store.try_delete("a", owner="A", now=at(19)) == "B"
    claimed = await store.claim_due(owner="A", now=at(20), lease=LEASE, limit=5)
    assert [j.job_id for j in claimed] == ["a"]


async def test_an_empty_release_is_a_no_op_that_wakes_nobody(backend: Backend) -> None:
    """The heartbeat commits ``Release(job_id="")`` as a barrier through the writer."""
    from jobify_trio.storage import Release

    store, other = await backend.open(), await backend.open()
    await store.add(job("a", owner="A", until=30), job("b"))
    before = sorted(map(repr, (await store.load()).jobs))
    with trio.fail_after(10):
        while await other.wait_changed(poll_interval=0.2):
            pass  # settle
        await store.apply([Release(job_id="", owner="A")])
        assert await other.wait_changed(poll_interval=0.3) is False
    assert sorted(map(repr, (await store.load()).jobs)) == before


async def test_next_lease_expiry_is_the_earliest_future_lease_of_another_instance(
    backend: Backend,
) -> None:
    store = await backend.open()
    await store.add(
        job("a", owner="A", until=40),
        job("b", owner="B", until=20),
        job("b-cron", trigger=Trigger.CRON, owner="B", until=25),
        job("c", owner="C", until=5),  # expired: adopt_orphans takes it now
        job("f", owner="C", until=15, state=StoredState.PERMANENTLY_FAILED),  # never adopted
        job("free", at=12),
    )
    assert await store.next_lease_expiry(owner="A", now=at(10)) == at(20)
    assert await store.next_lease_expiry(owner="B", now=at(10)) == at(40)
    assert await store.next_lease_expiry(owner="A", now=at(20)) == at(25)  # 20 expired
    assert await store.next_lease_expiry(owner="B", now=at(40)) is None
