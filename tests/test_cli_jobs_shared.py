"""``jobify-trio jobs`` on a shared store (a SQLite file and a PostgreSQL schema): listing
instances, leases and claims, and delete / purge / pause / resume that never yank a job
from the live instance that holds it."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trio
from _stores import PG_URL, Backend, SQLiteBackend, make_backend

from jobify_trio import Jobify, JobStatus, SharingOptions
from jobify_trio._cli._jobs import jobs_main
from jobify_trio._cli._jobs_ops import holder
from jobify_trio._cli._tables import Instance, is_live
from jobify_trio._sharing._heartbeat import beat_once
from jobify_trio._sharing._options import host_name
from jobify_trio.storage import (
    CommandKind,
    InstanceInfo,
    ResultStatus,
    SlotClaim,
    SQLiteStorage,
    StoredJob,
    Trigger,
)

NOW = datetime.now(UTC)  # reset by _fresh_now before each test
MINUTE = timedelta(seconds=60)


@pytest.fixture(autouse=True)
def _fresh_now() -> None:
    """Heartbeats written 'now' are judged by the CLI against the real clock: taken at
    import, NOW aged with the suite, and a test that ran a minute after collection saw
    its live instance as dead."""
    global NOW
    NOW = datetime.now(UTC)


@pytest.fixture(params=["sqlite", "postgres"])
async def shared(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    store = make_backend(request.param, tmp_path)
    try:
        yield store
    finally:
        await store.close()


def _argv(backend: Backend) -> list[str]:
    if isinstance(backend, SQLiteBackend):
        return ["--db", str(backend.path)]
    return ["--db", PG_URL, "--schema", backend.schema]  # type: ignore[attr-defined]


async def _cli(backend: Backend, *argv: str) -> tuple[int, str]:
    def run() -> tuple[int, str]:
        out = io.StringIO()
        return jobs_main([*_argv(backend), *argv], out=out), out.getvalue()

    return await trio.to_thread.run_sync(run)


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _info(instance_id: str, *, age: float = 0, host: str = "other", pid: int = 7) -> InstanceInfo:
    beat = NOW - timedelta(seconds=age)
    return InstanceInfo(
        instance_id=instance_id, host=host, pid=pid, started_at=beat, heartbeat_at=beat
    )


def _row(job_id: str, *, owner: str | None = None, until: datetime | None = None,
         origin: str | None = None, trigger: Trigger = Trigger.AT) -> StoredJob:  # fmt: skip
    return StoredJob(
        job_id=job_id, task_name="work", trigger=trigger, next_run_at=NOW + MINUTE,
        arguments=b"[]", lease_owner=owner, lease_expires_at=until, origin=origin,
    )  # fmt: skip


async def test_listing_shows_instances_with_age_and_liveness_leases_and_claims(
    shared: Backend,
) -> None:
    store = await shared.open()
    await store.register_instance(_info("live-1"))
    await store.register_instance(_info("dead-1", age=120))
    await store.register_instance(_info("gone-1", host=host_name(), pid=_dead_pid()))
    await store.add(_row("held", owner="live-1", until=NOW + MINUTE), _row("free"))
    tick = _row("tick", trigger=Trigger.CRON)
    await store.add(tick)
    claim = SlotClaim(
        job_id="tick", slot=tick.next_run_at, expected_next_run_at=tick.next_run_at,
        owner="live-1", cron='{"expr":"* * * * *"}', next_run_at=tick.next_run_at + MINUTE,
    )  # fmt: skip
    assert await store.claim_cron_slots([claim], now=NOW, lease=MINUTE) == {"tick"}
    code, out = await _cli(shared, "instances")
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()[1:-1]}
    assert out.splitlines()[0].split()[-2:] == ["AGE", "STATUS"]
    assert lines["live-1"].endswith("live")
    assert lines["dead-1"].endswith("dead")
    assert 120 <= float(lines["dead-1"].split()[-3]) < 300  # AGE, in seconds
    assert lines["gone-1"].endswith("dead (no process)")
    assert out.splitlines()[-1] == "3 instance(s)"
    code, out = await _cli(shared, "list")
    assert code == 0
    assert out.splitlines()[0].split()[-3:] == ["OWNER", "LEASE", "UNTIL"]
    held = next(line for line in out.splitlines() if line.startswith("held"))
    assert "live-1" in held
    assert out.splitlines()[-1] == "3 stored job(s)"
    code, out = await _cli(shared, "claims", "--limit", "5")
    assert code == 0
    assert out.splitlines()[1].split()[0] == "tick"
    assert "live-1" in out.splitlines()[1]
    assert out.splitlines()[-1] == "1 slot claim(s)"


async def test_listing_a_sqlite_file_never_writes_it(tmp_path: Path) -> None:
    backend = SQLiteBackend(tmp_path)
    store = await backend.open()
    await store.register_instance(_info("live-1"))
    await store.add(_row("held", owner="live-1", until=NOW + MINUTE))
    await backend.close()
    before = backend.path.read_bytes()
    backend.path.chmod(0o444)
    try:
        for action in ("list", "instances", "claims"):
            code, _ = await _cli(backend, action)
            assert code == 0
    finally:
        backend.path.chmod(0o644)
    assert backend.path.read_bytes() == before


async def test_delete_sends_a_cancel_to_a_live_holder_and_deletes_what_no_one_holds(
    shared: Backend,
) -> None:
    store = await shared.open()
    await store.register_instance(_info("live-1"))
    await store.register_instance(_info("dead-1", age=120))
    await store.add(
        _row("held", owner="live-1", until=NOW + MINUTE),
        _row("free", origin="live-1"),
        _row("orphan", owner="dead-1", until=NOW - MINUTE, origin="dead-1"),
    )
    code, out = await _cli(shared, "delete", "held", "free", "orphan", "nope")
    assert code == 1  # "nope" was not found
    assert "cancel of 'held' sent to instance 'live-1'" in out
    assert (
        out.splitlines()[-1] == "deleted 2 of 4 job(s); 1 sent to the live instance(s) holding them"
    )
    assert await store.get_job("held") is not None  # not yanked from its live holder
    assert await store.get_job("free") is None
    assert await store.get_job("orphan") is None
    results = {r.job_id: r for r in await store.fetch_results(["free", "orphan"])}
    assert results["free"].status is ResultStatus.CANCELLED  # its origin's handle ends so
    assert results["orphan"].origin == "dead-1"
    beat = await store.heartbeat(instance_id="live-1", now=NOW, lease_until=NOW + MINUTE)
    cancels = {(c.job_id, c.kind) for c in beat.commands}
    assert ("held", CommandKind.CANCEL) in cancels


async def test_a_live_holder_on_this_host_whose_process_is_gone_is_not_waited_for(
    shared: Backend,
) -> None:
    store = await shared.open()
    await store.register_instance(_info("gone-1", host=host_name(), pid=_dead_pid()))
    await store.add(_row("held", owner="gone-1", until=NOW + MINUTE))
    code, out = await _cli(shared, "delete", "held")
    assert code == 0
    assert out.splitlines()[-1] == "deleted 1 of 1 job(s)"
    assert await store.get_job("held") is None


def _app(storage: object) -> Jobify:
    app = Jobify(storage=storage)  # type: ignore[arg-type]

    @app.task(name="work")
    async def work() -> None:
        pass

    return app


async def test_delete_and_pause_reach_the_live_app_holding_the_job(shared: Backend) -> None:
    async with _app(shared.new()) as app:
        job = await app.tasks["work"].schedule().delay(3600, job_id="later")
        sharing = app._runtime.sharing  # type: ignore[union-attr]
        assert sharing is not None
        await beat_once(sharing)  # its row is committed and leased
        code, out = await _cli(shared, "pause", "later")
        assert code == 0
        assert "sent to instance" in out
        await beat_once(sharing)  # its next heartbeat applies it
        assert job.paused
        code, _ = await _cli(shared, "resume", "later")
        await beat_once(sharing)
        assert not job.paused
        code, out = await _cli(shared, "delete", "later")
        assert code == 0
        assert "cancel of 'later' sent to instance" in out
        assert await app._storage.get_job("later") is not None
        await beat_once(sharing)
        assert job.status is JobStatus.CANCELLED
        await trio.sleep(0.2)  # the row's delete is written by the app's writer
        assert await app._storage.get_job("later") is None


async def test_delete_wait_returns_once_the_live_holder_applied_the_cancel(
    shared: Backend,
) -> None:
    app = Jobify(storage=shared.new(), sharing=SharingOptions(lease=0.6))  # beats: 0.2 s

    @app.task(name="work")
    async def work() -> None:
        pass

    async with app:
        job = await work.schedule().delay(3600, job_id="later")
        await trio.sleep(0.5)  # its row is committed and leased by a heartbeat
        with trio.fail_after(20):
            code, out = await _cli(shared, "delete", "later", "--wait", "10")
        assert code == 0
        assert "cancel of 'later' sent to instance" in out
        assert out.splitlines()[-1].startswith("all 1 cancel(s) applied after ")
        assert job.status is JobStatus.CANCELLED
        assert await app._storage.get_job("later") is None


async def test_delete_wait_gives_up_on_a_holder_that_never_applies_it(shared: Backend) -> None:
    store = await shared.open()
    await store.register_instance(_info("live-1"))  # registered, but no app behind it
    await store.add(_row("held", owner="live-1", until=NOW + MINUTE))
    code, out = await _cli(shared, "delete", "held", "--wait", "0.3")
    assert code == 1
    assert out.splitlines()[-1] == "after 0.3 s, still held: held"
    assert await store.get_job("held") is not None


async def test_delete_on_an_unshared_file_reaches_the_lone_app_too(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    async with _app(SQLiteStorage(db)) as app:
        job = await app.tasks["work"].schedule().delay(3600, job_id="later")
        sharing = app._runtime.sharing  # type: ignore[union-attr]
        assert sharing is not None
        out = io.StringIO()
        code = await trio.to_thread.run_sync(
            lambda: jobs_main(["--db", str(db), "delete", "later"], out=out)
        )
        assert code == 0
        assert "deleted 1 of 1 job(s)" in out.getvalue()  # unleased: deleted at once
        assert not job.is_done()
        await beat_once(sharing)  # ... and the app holding it in memory drops it
        assert job.status is JobStatus.CANCELLED


async def test_pause_stored_cron_and_one_off_with_no_live_app_then_restore_them_paused(
    shared: Backend,
) -> None:
    async with _app(shared.new()) as app:
        await app.tasks["work"].schedule().cron("0 0 1 1 *", job_id="yearly")
        await app.tasks["work"].schedule().delay(3600, job_id="later")
    code, out = await _cli(shared, "pause", "yearly")
    assert code == 0
    assert "'yearly' paused in the store" in out
    code, out = await _cli(shared, "pause", "later")
    assert code == 0  # a one-off's paused column is set (schema version 3)
    assert "'later' paused in the store" in out
    async with _app(shared.new()) as app:
        job = app.find_job("yearly")
        assert job is not None
        assert job.paused
        one_off = app.find_job("later")
        assert one_off is not None
        assert one_off.paused


async def test_purge_unknown_on_postgres(tmp_path: Path) -> None:
    backend = make_backend("postgres", tmp_path)
    try:
        store = await backend.open()
        gone = StoredJob(
            job_id="g", task_name="gone", trigger=Trigger.AT, next_run_at=NOW, arguments=b"[]"
        )
        await store.add(_row("k"), gone)
        (tmp_path / "cliapp_pg.py").write_text(
            "from jobify_trio import Jobify\napp = Jobify()\n"
            "@app.task(name='work')\nasync def work() -> None: ...\n"
        )
        app_args = ["--app", "cliapp_pg:app", "--app-dir", str(tmp_path)]
        code, out = await _cli(backend, *app_args, "list")
        assert code == 0
        assert "(unknown task)" in next(line for line in out.splitlines() if line.startswith("g "))
        code, out = await _cli(backend, *app_args, "purge-unknown", "--dry-run")
        assert "would delete g" in out
        assert await store.get_job("g") is not None
        code, out = await _cli(backend, *app_args, "purge-unknown")
        assert code == 0
        assert "deleting g" in out
        assert await store.get_job("g") is None
        assert await store.get_job("k") is not None
    finally:
        await backend.close()


def _instance(instance_id: str, *, age: float = 0, lease_until: datetime | None = None) -> Instance:
    beat = NOW - timedelta(seconds=age)
    return Instance(instance_id, "other", 7, beat, beat, lease_until)


def test_holder_is_a_live_lease_owner_or_the_lone_app_of_a_file() -> None:
    leased = _row("j", owner="A", until=NOW + MINUTE)
    assert holder(leased, [_instance("A")], NOW, always_leased=True) == "A"
    assert holder(leased, [], NOW, always_leased=True) is None  # A stopped cleanly
    expired = _row("j", owner="A", until=NOW - MINUTE)
    assert holder(expired, [_instance("A")], NOW, always_leased=True) is None
    free = _row("j")
    assert holder(free, [_instance("A")], NOW, always_leased=True) is None
    assert holder(free, [_instance("A")], NOW, always_leased=False) == "A"
    two = [_instance("A"), _instance("B")]
    assert holder(free, two, NOW, always_leased=False) is None
    assert holder(free, [_instance("A", age=31)], NOW, always_leased=False) is None


def test_liveness_follows_the_leases_an_instance_holds() -> None:
    assert is_live(_instance("A", age=100, lease_until=NOW + MINUTE), NOW)  # long lease
    assert not is_live(_instance("A", age=1, lease_until=NOW - MINUTE), NOW)
    assert is_live(_instance("A", age=29), NOW)
    assert not is_live(_instance("A", age=30), NOW)
    here = Instance("A", host_name(), 7, NOW, NOW, None)
    assert not is_live(here, NOW, pid_runs=lambda pid: False)
    assert is_live(here, NOW, pid_runs=lambda pid: True)
