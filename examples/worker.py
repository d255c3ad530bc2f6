"""A worker app for ``jobify-trio run``: cron jobs on a durable SQLite store.

Run it (stop it with Ctrl-C or SIGTERM; running jobs get ``--grace`` seconds)::

    jobify-trio run examples/worker.py:app --grace 5

It logs every job's start, outcome, duration and next run. Its cron jobs are stored in
``$JOBIFY_DB`` (default ``worker.db``); stop and start it again and they resume from the
store. Inspect the store with ``jobify-trio jobs --db worker.db list``.

Settings come from the environment, as they would in a deployment: ``REPORT_CRON``
(default every 10 seconds) and ``REPORT_SECONDS`` (how long a report takes, default 3).
"""

from __future__ import annotations

import os
from typing import Any

import trio

from jobify_trio import Cron, Jobify
from jobify_trio.storage import SQLiteStorage

REPORT_CRON = os.environ.get("REPORT_CRON", "*/10 * * * * * *")  # seconds field first
REPORT_SECONDS = float(os.environ.get("REPORT_SECONDS", "3"))


def make_app(**options: Any) -> Jobify:
    """The app with its tasks (tests pass ``storage=False`` and a virtual wall clock)."""
    if "storage" not in options:
        options["storage"] = SQLiteStorage(os.environ.get("JOBIFY_DB", "worker.db"))
    app = Jobify(**options)

    @app.task(name="report", cron=Cron(REPORT_CRON), timeout=60)
    async def report() -> str:
        await trio.sleep(REPORT_SECONDS)  # pretend to work
        return "report done"

    @app.task(name="cleanup", cron="0 3 * * *")  # every night at 03:00 (UTC)
    async def cleanup() -> None:
        pass

    return app


app = make_app()
