"""``jobify-trio jobs history JOB_ID``: the stored run history of a job, on SQLite and on
PostgreSQL (issue 12)."""

from __future__ import annotations

import io

import pytest
import trio
from _stores import PG_URL, Backend
from trio.testing import MockClock

from jobify_trio import Jobify, RunHistory, SmartRetry
from jobify_trio._cli._jobs import jobs_main


def _jobs(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    code = jobs_main(argv, out=out)
    return code, out.getvalue()


async def test_jobs_history_prints_the_stored_runs(
    autojump_clock: MockClock, backend: Backend
) -> None:
    if backend.kind == "memory":
        pytest.skip("MemoryStorage has no file or database to point the CLI at")
    autojump_clock.autojump_threshold = 0.02  # commits run in a thread
    app = Jobify(storage=backend.new())
    RunHistory(app)

    @app.task(name="flaky", retry=SmartRetry(1, initial_delay=1, jitter=False))
    async def flaky() -> None:
        raise RuntimeError("boom <b>")

    async with app:
        await (await flaky.schedule().push(job_id="f")).wait()
    if backend.kind == "sqlite":
        base = ["--db", str(backend.path)]  # type: ignore[attr-defined]
    else:
        base = ["--db", PG_URL, "--schema", backend.schema]  # type: ignore[attr-defined]
    code, out = await trio.to_thread.run_sync(_jobs, [*base, "history", "f"])
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["ATTEMPT", "STATUS", "STARTED"]
    assert lines[1].split()[:2] == ["2", "failed"]  # newest first
    assert lines[1].endswith("RuntimeError: boom <b>")
    assert lines[2].split()[:2] == ["1", "failed"]
    assert " yes " in lines[2]  # a retry followed
    assert lines[-1] == "2 stored run(s) of job 'f'"
    code, out = await trio.to_thread.run_sync(_jobs, [*base, "history", "nope"])
    assert (code, out.splitlines()[-1]) == (0, "0 stored run(s) of job 'nope'")
