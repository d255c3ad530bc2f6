"""Quickstart: a cron job, delayed jobs and a retried job in one trio program.

Run it with ``python examples/quickstart.py``: it prints what happens and exits by itself
after about three seconds. Its SQLite file lives in a temporary directory, so running it
twice starts fresh each time.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import trio

from jobify_trio import Cron, Jobify, SmartRetry
from jobify_trio.storage import SQLiteStorage


def make_app(**options: Any) -> Jobify:
    """Build the app and its tasks (tests pass a virtual ``wall_clock`` and no storage)."""
    app = Jobify(**options)
    start = [0.0]
    attempts = [0]

    def say(message: str) -> None:
        print(f"[{trio.current_time() - start[0]:4.1f}s] {message}")

    @app.task(name="tick", cron=Cron("* * * * * * *", max_runs=3))  # every second, 3 times
    async def tick() -> None:
        say("tick (cron, every second)")

    @app.task(name="greet")
    async def greet(name: str) -> str:
        say(f"hello, {name} (delayed job)")
        return f"greeted {name}"

    @app.task(name="flaky", retry=SmartRetry(2, initial_delay=0.3, jitter=False))
    async def flaky() -> int:
        attempts[0] += 1
        if attempts[0] < 3:
            say(f"flaky: attempt {attempts[0]} fails")
            raise ConnectionError("service unavailable")
        say(f"flaky: attempt {attempts[0]} succeeds")
        return 42

    app.state.start = start
    return app


async def main(app: Jobify) -> None:
    """Schedule a few jobs, wait until every job (the cron too) has finished, report."""
    async with app:
        app.state.start[0] = trio.current_time()
        later = await app.tasks["greet"].schedule("Ada").delay(1.5)
        soon = await app.tasks["greet"].schedule("Alan").delay(0.5)
        flaky = await app.tasks["flaky"].push()
        await app.wait_all(timeout=30)
    print(f"soon:  {soon.status.value} -> {soon.result()!r}")
    print(f"later: {later.status.value} -> {later.result()!r}")
    print(f"flaky: {flaky.status.value} after 3 attempts -> {flaky.result()!r}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:  # a fresh job database on every run
        db = Path(tmp) / "jobify.db"
        print(f"durable jobs are stored in {db} (SQLite, the default store)")
        trio.run(main, make_app(storage=SQLiteStorage(db)))
