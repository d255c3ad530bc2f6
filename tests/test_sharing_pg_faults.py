"""Several app instances on PostgreSQL under database faults, at the runtime level: every
backend of the app terminated mid-run, and an outage of a few seconds (a TCP proxy that is
stopped and restarted; the shared server itself is never stopped). Real clock, 1 s lease."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from _stores import PostgresBackend, require_postgres
from test_postgres_faults import Proxy
from test_sharing_real_stores import LEASE, POLL, Ran

from jobify_trio import INJECT, JobContext, Jobify, SharingOptions
from jobify_trio.storage import StorageError

PROMPT = 5.0  # seconds: a scheduling call during an outage fails within this


@pytest.fixture
async def pg() -> AsyncIterator[PostgresBackend]:
    require_postgres()
    backend = PostgresBackend()
    try:
        yield backend
    finally:
        await backend.close()


def node(name: str, url: str, schema: str, ran: Ran) -> Jobify:
    from jobify_trio.storage import PostgresStorage

    sharing = SharingOptions(lease=LEASE, poll_interval=POLL, instance_id=name)
    app = Jobify(storage=PostgresStorage(url, schema=schema, connect_timeout=2), sharing=sharing)

    @app.task(name="work")
    async def work(tag: str, seconds: float = 0.0, context: JobContext = INJECT) -> str:
        ran.append((name, tag, context.attempt))
        await trio.sleep(seconds)
        return f"{tag}-done"

    return app


async def run(app: Jobify, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    async with app:
        task_status.started()
        await trio.sleep_forever()


# A write nobody waits for (a finished job's delete, deferred to ride with the next push)
# may be the one that meets the terminated backend: it is warned about and retried.
@pytest.mark.filterwarnings(r"ignore:.*were not saved \(they are retried\):RuntimeWarning")
async def test_terminated_backends_mid_run_instances_carry_on(pg: PostgresBackend) -> None:
    ran: Ran = []
    a, b = node("A", pg.conninfo(), pg.schema, ran), node("B", pg.conninfo(), pg.schema, ran)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(run, a)
            await nursery.start(run, b)
            before = [await a.tasks["work"].schedule(f"d{i}").delay(1.0) for i in range(10)]
            running = await b.tasks["work"].push("running", 1.5)
            await trio.sleep(0.3)
            assert pg.terminate() >= 4  # both instances: store and listener connections
            after = []
            with trio.fail_after(10):  # the next calls reconnect
                while len(after) < 10:
                    try:
                        after.append(await a.tasks["work"].push(f"p{len(after)}"))
                    except StorageError:
                        await trio.sleep(0.1)
            for job in [*before, running, *after]:
                with trio.fail_after(10):
                    await job.wait()
            await trio.sleep(LEASE)  # heartbeats and claimers went on: still registered
            reader = await pg.open()
            assert {i.instance_id for i in await reader.instances()} == {"A", "B"}
            nursery.cancel_scope.cancel()
    tags = [tag for _, tag, _ in ran]
    assert set(tags) >= {f"d{i}" for i in range(10)} | {f"p{i}" for i in range(10)} | {"running"}


@pytest.mark.filterwarnings(r"ignore:.*were not saved \(they are retried\):RuntimeWarning")
async def test_an_outage_fails_calls_promptly_and_loses_nothing_acknowledged(
    pg: PostgresBackend,
) -> None:
    ran: Ran = []
    proxy = Proxy()
    with trio.fail_after(40):
        async with trio.open_nursery() as outer:
            await outer.start(proxy.serve)
            url = (
                f"postgresql://postgres@127.0.0.1:{proxy.port}/test?application_name={pg.app_name}"
            )
            a, b = node("A", url, pg.schema, ran), node("B", url, pg.schema, ran)
            async with trio.open_nursery() as nursery:  # the apps stop before the proxy
                await _outage(nursery, outer, proxy, a, b)
            outer.cancel_scope.cancel()
    tags = [tag for _, tag, _ in ran]
    assert set(tags) == {f"d{i}" for i in range(10)} | {"after"}
    assert "during" not in tags


async def _outage(
    nursery: trio.Nursery, outer: trio.Nursery, proxy: Proxy, a: Jobify, b: Jobify
) -> None:
    await nursery.start(run, a)
    await nursery.start(run, b)
    acked = [await a.tasks["work"].schedule(f"d{i}").delay(1.5) for i in range(10)]
    proxy.stop()  # the database is unreachable for ~3 s
    start = trio.current_time()
    with trio.fail_after(PROMPT + 5), pytest.raises(StorageError):
        await b.tasks["work"].push("during")
    assert trio.current_time() - start < PROMPT
    await trio.sleep(max(0.0, 3.0 - (trio.current_time() - start)))
    await outer.start(proxy.serve)  # back on the same port
    with trio.fail_after(15):
        while True:
            try:
                late = await b.tasks["work"].push("after")
                break
            except StorageError:
                await trio.sleep(0.2)
        for job in [*acked, late]:
            await job.wait()
    nursery.cancel_scope.cancel()
