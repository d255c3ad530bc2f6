"""PostgresStorage under database faults: terminated backends, an outage, a wrong conninfo.

Every call fails promptly with a StorageError naming host, port, database and a hint, and
the calls after the fault reconnect. The outage is simulated by a TCP proxy in front of the
shared server (stopping the server would disturb everyone else using it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from datetime import timedelta

import pytest
import trio
from _stores import PG_URL, PostgresBackend, require_postgres
from test_storage_contract import T0, job

from jobify_trio.storage import Storage, StorageError

PROMPT = 3.0  # seconds: "promptly" (a hung call would wait for the statement timeout, 30 s)


@pytest.fixture
async def pg() -> AsyncIterator[PostgresBackend]:
    require_postgres()
    backend = PostgresBackend()
    try:
        yield backend
    finally:
        await backend.close()


async def _fails_promptly(call: Awaitable[object], match: str) -> StorageError:
    start = trio.current_time()
    with trio.fail_after(PROMPT + 2), pytest.raises(StorageError, match=match) as caught:
        await call
    assert trio.current_time() - start < PROMPT
    return caught.value


async def _gone(backend: PostgresBackend) -> None:
    from _stores import pg_execute

    with trio.fail_after(5):
        while pg_execute(
            "SELECT 1 FROM pg_stat_activity WHERE application_name = %s", (backend.app_name,)
        ):
            await trio.sleep(0.02)


async def test_terminated_backends_fail_the_next_call_then_reconnect(pg: PostgresBackend) -> None:
    store = await pg.open()
    await store.add(job("a"))
    await store.wait_changed(poll_interval=0.3)  # starts the listening connection
    assert pg.terminate() == 3  # the store's connection, its write connection, its listener
    await _gone(pg)
    error = await _fails_promptly(store.load(), r"127\.0\.0\.1:5432/test.*connection was lost")
    assert "terminating connection" in str(error) or "closed" in str(error)
    assert [j.job_id for j in (await store.load()).jobs] == ["a"]  # reconnected
    error = await _fails_promptly(store.add(job("b")), r"127\.0\.0\.1:5432/test.*cannot write")
    assert "connection was lost" in str(error)
    await store.add(job("b"))  # the write connection reconnected
    other = await pg.open()
    with trio.fail_after(10):  # the listener reconnected too and sees other's change
        while await store.wait_changed(poll_interval=0.3):
            pass
        await other.add(job("c"))
        assert await store.wait_changed(poll_interval=5)


class Proxy:
    """A TCP proxy to the PostgreSQL server that can be stopped (an outage) and restarted."""

    def __init__(self) -> None:
        from psycopg.conninfo import conninfo_to_dict

        params = conninfo_to_dict(PG_URL)
        self.target = (str(params.get("host", "127.0.0.1")), int(params.get("port", 5432)))
        self.port = 0
        self._scope: trio.CancelScope | None = None

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as self._scope:
            listeners = await trio.open_tcp_listeners(self.port, host="127.0.0.1")
            self.port = listeners[0].socket.getsockname()[1]
            task_status.started()
            await trio.serve_listeners(self._handle, listeners)

    def stop(self) -> None:
        assert self._scope is not None
        self._scope.cancel()

    async def _handle(self, client: trio.SocketStream) -> None:
        server = await trio.open_tcp_stream(*self.target)
        async with client, server, trio.open_nursery() as nursery:
            nursery.start_soon(self._pipe, client, server, nursery.cancel_scope)
            nursery.start_soon(self._pipe, server, client, nursery.cancel_scope)

    @staticmethod
    async def _pipe(
        src: trio.SocketStream, dst: trio.SocketStream, scope: trio.CancelScope
    ) -> None:
        try:
            async for data in src:
                await dst.send_all(data)
        except trio.BrokenResourceError:
            pass
        scope.cancel()


async def test_calls_during_an_outage_fail_promptly_and_work_after_it(
    pg: PostgresBackend,
) -> None:
    from jobify_trio.storage import PostgresStorage

    proxy = Proxy()
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.serve)
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/test?application_name={pg.app_name}"
        store: Storage = PostgresStorage(url, schema=pg.schema, connect_timeout=2)
        await store.startup()
        pg.opened.append(store)
        await store.add(job("a"))
        proxy.stop()  # the server "goes down": every connection drops, nobody answers
        await trio.sleep(0.05)
        where = rf"127\.0\.0\.1:{proxy.port}/test"
        await _fails_promptly(
            store.add(job("b")), rf"{where}.*(connection was lost|server running)"
        )
        # the reads' connection (writes have their own) finds the loss, then reconnects
        await _fails_promptly(store.load(), rf"{where}.*(connection was lost|server running)")
        error = await _fails_promptly(store.load(), rf"{where}.*is the server running")
        assert "Connection refused" in str(error)
        claim = store.claim_due(owner="A", now=T0, lease=timedelta(seconds=30), limit=1)
        await _fails_promptly(claim, "server running")
        await _fails_promptly(store.add(job("b")), rf"{where}.*cannot write.*server running")
        await nursery.start(proxy.serve)  # back, on the same port
        await store.add(job("c"))
        assert sorted(j.job_id for j in (await store.load()).jobs) == ["a", "c"]
        proxy.stop()


@pytest.mark.parametrize(
    ("conninfo", "hint"),
    [
        ("postgresql://postgres@127.0.0.1:1/test", r"127\.0\.0\.1:1/test.*server running"),
        (
            "postgresql://postgres@127.0.0.1:5432/no_such_db_x",
            r"5432/no_such_db_x.*database is missing",
        ),
        ("postgresql://no_such_role_x@127.0.0.1:5432/test", r"authentication refused"),
    ],
)
async def test_startup_errors_name_the_server_and_a_hint(conninfo: str, hint: str) -> None:
    require_postgres()
    from jobify_trio.storage import PostgresStorage

    await _fails_promptly(PostgresStorage(conninfo, connect_timeout=2).startup(), hint)


async def test_bad_arguments_are_refused_at_the_call_site() -> None:
    from jobify_trio.storage import PostgresStorage

    with pytest.raises(ValueError, match="PostgresStorage schema: invalid table name 'bad-schema'"):
        PostgresStorage("postgresql://x/y", schema="bad-schema")
    with pytest.raises(ValueError, match="invalid table name"):
        PostgresStorage("postgresql://x/y", table_prefix="1x")
    with pytest.raises(TypeError, match="conninfo must be a non-empty str"):
        PostgresStorage("")
    with pytest.raises(ValueError, match="statement_timeout must be > 0"):
        PostgresStorage("postgresql://x/y", statement_timeout=0)


async def test_a_failing_write_rolls_back_its_whole_batch(pg: PostgresBackend) -> None:
    from jobify_trio.storage import Delete, Upsert

    store = await pg.open()
    await store.add(job("kept"))
    bad = job("bad", task="nul\x00byte")  # PostgreSQL text cannot hold NUL
    with pytest.raises(StorageError, match=r"cannot write"):
        await store.apply([Upsert(job=job("new")), Delete(job_id="kept"), Upsert(job=bad)])
    assert [j.job_id for j in (await store.load()).jobs] == ["kept"]
    await store.add(job("after"))
    assert [j.job_id for j in (await store.load()).jobs] == ["after", "kept"]
