"""PostgresStorage's write path: libpq driven non-blocking on the trio thread.

A write in flight that is cancelled, a connection killed mid-statement, a burst of
concurrent pushes committed in a few batches, and an event loop that stays responsive while
the server makes a write wait (a row lock held by another connection). Real server, real
time: these are about what the server and the socket do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
import trio
from _stores import PG_URL, PostgresBackend, pg_execute, require_postgres
from test_storage_contract import job

from jobify_trio import Jobify
from jobify_trio.storage import Delete, Storage, StorageError, Upsert, Write


@pytest.fixture
async def pg() -> AsyncIterator[PostgresBackend]:
    require_postgres()
    backend = PostgresBackend()
    try:
        yield backend
    finally:
        await backend.close()


def recorded_batches(store: Storage) -> list[Sequence[Write]]:
    """The batches ``store.apply`` is called with from now on, in order."""
    batches: list[Sequence[Write]] = []
    original = store.apply

    async def apply(writes: Sequence[Write], /) -> None:
        batches.append(list(writes))  # (as it was then)
        await original(writes)

    store.apply = apply  # type: ignore[method-assign]
    return batches


@contextmanager
def row_locked(backend: PostgresBackend, job_id: str) -> Iterator[Any]:
    """Hold ``FOR UPDATE`` on the row from another connection until the block ends."""
    import psycopg

    with psycopg.connect(PG_URL) as conn:
        conn.execute(
            f'SELECT 1 FROM "{backend.schema}".jobify_jobs WHERE job_id = %s FOR UPDATE',
            (job_id,),
        )
        yield conn
        conn.rollback()


def _lock_waiters(backend: PostgresBackend) -> list[int]:
    rows = pg_execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'",
        (backend.app_name,),
    )
    return [row[0] for row in rows]


async def _until_waiting(backend: PostgresBackend) -> list[int]:
    with trio.fail_after(5):
        while not (pids := _lock_waiters(backend)):
            await trio.sleep(0.02)
    return pids


async def _stored_task(store: Storage, job_id: str) -> str | None:
    found = [j.task_name for j in (await store.load()).jobs if j.job_id == job_id]
    return found[0] if found else None


async def test_a_write_cancelled_in_flight_is_cancelled_on_the_server(
    pg: PostgresBackend,
) -> None:
    store = await pg.open()
    await store.add(job("a", task="old"))
    with row_locked(pg, "a"):
        with trio.move_on_after(5) as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(store.apply, [Upsert(job=job("a", task="new"))])
                await _until_waiting(pg)  # the statement waits for the row lock
                nursery.cancel_scope.cancel()
        assert not scope.cancelled_caught
        with trio.fail_after(5):  # the server was told to cancel it, not left waiting
            while _lock_waiters(pg):
                await trio.sleep(0.02)
    assert await _stored_task(store, "a") == "old"  # it never committed
    await store.add(job("a", task="after"))  # a fresh connection, in a known state
    assert await _stored_task(store, "a") == "after"


async def test_a_connection_killed_mid_statement_fails_the_write_then_reconnects(
    pg: PostgresBackend,
) -> None:
    store = await pg.open()
    await store.add(job("a", task="old"))
    with row_locked(pg, "a"):
        async with trio.open_nursery() as nursery:

            async def kill() -> None:
                (pid,) = await _until_waiting(pg)
                pg_execute("SELECT pg_terminate_backend(%s)", (pid,))

            nursery.start_soon(kill)
            with trio.fail_after(3), pytest.raises(StorageError, match="connection was lost"):
                await store.apply([Upsert(job=job("a", task="new"))])
    assert await _stored_task(store, "a") == "old"
    await store.add(job("a", task="after"))
    assert await _stored_task(store, "a") == "after"


async def test_the_loop_stays_responsive_while_a_write_waits_for_the_server(
    pg: PostgresBackend,
) -> None:
    store = await pg.open()
    await store.add(job("a", task="old"))
    gaps: list[float] = []

    async def canary(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        last = trio.current_time()
        while True:
            await trio.sleep(0.01)
            now = trio.current_time()
            gaps.append(now - last)
            last = now

    async with trio.open_nursery() as nursery:
        await nursery.start(canary)
        with row_locked(pg, "a") as holder:
            nursery.start_soon(store.apply, [Upsert(job=job("a", task="new"))])
            await _until_waiting(pg)
            gaps.clear()  # the test's own setup calls block (sync psycopg): not counted
            await trio.sleep(1.0)  # the write waits; the canary keeps ticking
            waiting = list(gaps)
            holder.rollback()
            with trio.fail_after(5):
                while await _stored_task(store, "a") != "new":
                    await trio.sleep(0.02)
        nursery.cancel_scope.cancel()
    assert len(waiting) > 20  # a write blocking the trio thread would leave ~0 ticks
    assert max(waiting) < 0.25, max(waiting)


async def test_a_burst_of_concurrent_pushes_is_committed_in_a_few_batches(
    pg: PostgresBackend,
) -> None:
    store = pg.new()
    app = Jobify(storage=store)
    batches = recorded_batches(store)

    @app.task(name="t")
    async def t(i: int) -> None:
        return None

    async with app:
        async with trio.open_nursery() as nursery:
            for i in range(300):
                nursery.start_soon(t.schedule(i).delay, 3600.0)
        stored = (await store.load()).jobs
        assert len(stored) == 300
    statements = [len(writes) for writes in batches]  # writes per statement
    assert sum(statements) >= 300
    assert len(statements) <= 30, statements  # group commit: many rows per statement
    assert max(statements) >= 50


class _Steps(trio.abc.Instrument):
    """Counts the steps of one task, and the steps of the others taken meanwhile."""

    def __init__(self, task: trio.lowlevel.Task) -> None:
        self.task = task
        self.own = 0
        self.others = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task:
            self.own += 1
        else:
            self.others += 1


async def test_a_sequential_push_yields_once_while_its_statement_is_in_flight(
    pg: PostgresBackend,
) -> None:
    """One schedule point per push, the wait for the server: the tasks it readies (its
    job, the writer) run during the next push's round trip, not between two pushes."""
    store = pg.new()
    app = Jobify(storage=store)
    ran: list[int] = []

    @app.task(name="t")
    async def t(i: int) -> None:
        ran.append(i)

    async with app:
        for i in range(5):  # warm-up: connections open, statements prepared
            await t.push(i)
        await app.wait_all()
        writes = store._writes  # type: ignore[attr-defined]
        prepared = len(writes._prepared)
        steps = _Steps(trio.lowlevel.current_task())
        trio.lowlevel.add_instrument(steps)
        try:
            for i in range(5, 25):
                await t.push(i)
        finally:
            trio.lowlevel.remove_instrument(steps)
        prepared = len(writes._prepared) - prepared  # a new statement shape: one more wait
        await app.wait_all()
    assert steps.own == 20 + prepared, (steps.own, prepared)  # a step after each wait
    assert steps.others > 0  # the jobs ran meanwhile
    assert sorted(ran) == list(range(25))


async def test_a_push_cancelled_before_it_starts_stores_nothing(pg: PostgresBackend) -> None:
    """A push is still a checkpoint: cancelled on entry, it stores and runs nothing."""
    store = pg.new()
    app = Jobify(storage=store)

    @app.task(name="t")
    async def t(i: int) -> None:
        return None

    async with app:
        first = await t.push(0)
        await app.wait_all()
        with trio.CancelScope() as scope:
            scope.cancel()
            await t.push(1)
        assert scope.cancelled_caught
        assert len(app.get_active_jobs()) == 0
        # at most the first job's row, whose delete may still be deferred
        assert {row.job_id for row in (await store.load()).jobs} <= {first.id}


async def test_a_push_loop_leaves_ended_jobs_deletes_for_every_16th_push(
    pg: PostgresBackend,
) -> None:
    """A sequential push commits its row alone while fewer than DELETES_PER_COMMIT
    deletes of ended jobs are queued (a DELETE riding with every push costs the server);
    a push takes them along once that many are queued, else the writer commits them."""
    from jobify_trio._storage._writer import DELETES_PER_COMMIT

    store = pg.new()
    app = Jobify(storage=store)
    applied = recorded_batches(store)

    @app.task(name="t")
    async def t(i: int) -> None:
        return None

    async with app:
        for i in range(80):
            await t.push(i)
        await app.wait_all()
    batches = [  # (upserts, deletes) of each statement
        (sum(type(w) is Upsert for w in writes), sum(type(w) is Delete for w in writes))
        for writes in applied
    ]
    pushes = [deletes for upserts, deletes in batches if upserts == 1]
    assert len(pushes) == 80
    assert all(deletes == 0 or deletes >= DELETES_PER_COMMIT for deletes in pushes), pushes
    assert sum(deletes for _, deletes in batches) == 80  # every ended job's row deleted
    assert (await (await pg.open()).load()).jobs == []


async def test_a_new_row_is_a_plain_insert_and_replaces_a_stored_row_all_the_same(
    pg: PostgresBackend,
) -> None:
    """``Upsert.new`` (a generated id) is inserted without ``ON CONFLICT``; should a row
    have that id after all, the unique violation is answered by the usual upsert."""
    store = await pg.open()
    statements: list[str] = []
    writes = store._writes  # type: ignore[attr-defined]
    original = writes.execute

    async def execute(action: str, sql: str, params: Any) -> None:
        statements.append(sql)
        await original(action, sql, params)

    writes.execute = execute
    await store.apply([Upsert(job=job("a", task="first"), new=True)])
    assert "ON CONFLICT" not in statements[-1]
    await store.apply([Upsert(job=job("a", task="second"), new=True)])
    assert "ON CONFLICT" not in statements[-2]
    assert "ON CONFLICT" in statements[-1]
    assert await _stored_task(store, "a") == "second"
    await store.apply([Upsert(job=job("a", task="third"))])
    assert "ON CONFLICT" in statements[-1]
    assert await _stored_task(store, "a") == "third"
