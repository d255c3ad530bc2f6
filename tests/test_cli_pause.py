"""``jobify-trio jobs pause ID`` / ``resume ID`` on a SQLite store (issue 12)."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest
import trio

from jobify_trio import Jobify
from jobify_trio._cli._jobs import jobs_main
from jobify_trio._sharing._heartbeat import beat_once
from jobify_trio.storage import SQLiteStorage


def _app(db: Path) -> Jobify:
    app = Jobify(storage=SQLiteStorage(db))

    @app.task(name="report")
    async def report() -> None:
        pass

    return app


def _jobs(db: Path, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = jobs_main(["--db", str(db), *argv], out=out)
    return code, out.getvalue()


def _cron_json(db: Path, job_id: str) -> dict[str, object]:
    with sqlite3.connect(db) as conn:
        (text,) = conn.execute(
            "SELECT cron FROM jobify_jobs WHERE job_id = ?", (job_id,)
        ).fetchone()
    conn.close()
    return dict(json.loads(text))


async def test_cli_pauses_and_resumes_a_stored_cron_with_no_live_app(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    async with _app(db) as app:
        await app.tasks["report"].schedule().cron("0 0 1 1 *", job_id="yearly")
    code, out = _jobs(db, "pause", "yearly")
    assert code == 0
    assert "'yearly' paused in the store" in out
    assert _cron_json(db, "yearly")["paused"] is True
    async with _app(db) as app:
        job = app.find_job("yearly")
        assert job is not None
        assert job.paused  # restored paused
    code, out = _jobs(db, "resume", "yearly")
    assert code == 0
    assert "paused" not in _cron_json(db, "yearly")
    async with _app(db) as app:
        job = app.find_job("yearly")
        assert job is not None
        assert not job.paused


async def test_cli_pauses_a_stored_one_off_job_with_no_live_app(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "jobs.db"
    async with _app(db) as app:
        await app.tasks["report"].schedule().delay(3600, job_id="later")
    code, out = _jobs(db, "pause", "later")
    assert code == 0
    assert "'later' paused in the store" in out
    async with _app(db) as app:
        job = app.find_job("later")
        assert job is not None
        assert job.paused  # restored paused
    code, _ = _jobs(db, "resume", "later")
    assert code == 0
    async with _app(db) as app:
        job = app.find_job("later")
        assert job is not None
        assert not job.paused
    code, _ = _jobs(db, "pause", "nope")
    assert code == 2
    assert "no stored job 'nope'" in capsys.readouterr().err


async def test_cli_refuses_to_pause_a_one_off_job_in_a_version_2_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_sqlite_migration_v2 import make_v2_file

    db = tmp_path / "v2.db"
    make_v2_file(db)
    code, _ = _jobs(db, "pause", "later")
    assert code == 2
    assert "cannot store its paused state" in capsys.readouterr().err


async def test_cli_sends_pause_and_resume_to_the_live_app(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    async with _app(db) as app:
        job = await app.tasks["report"].schedule().delay(3600, job_id="later")
        runtime = app._runtime
        assert runtime is not None
        assert runtime.sharing is not None
        code, out = await trio.to_thread.run_sync(_jobs, db, "pause", "later")
        assert code == 0
        assert "sent to instance" in out
        await beat_once(runtime.sharing)  # the next heartbeat applies it
        assert job.paused
        code, _ = await trio.to_thread.run_sync(_jobs, db, "resume", "later")
        assert code == 0
        await beat_once(runtime.sharing)
        assert not job.paused
        await job.cancel()
