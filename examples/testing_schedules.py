"""Testing your own schedules: a week of cron runs and a retry schedule, checked to the
second, in milliseconds.

The app below (``make_app``) is what you would deploy: a weekday stand-up reminder, a
nightly backup in Berlin time (the week tested contains the spring DST change), and an
inventory sync retried with exponential backoff. Its tasks talk to the outside world only
through ``app.state`` (a notifier, an inventory service), so a test can swap in fakes.

The ``test_*`` functions are plain pytest tests: each runs the app with ``trio.run`` under
``trio.testing.MockClock(autojump_threshold=0)`` — whenever every task is waiting, trio
jumps straight to the next deadline — and gives it a
:class:`~jobify_trio.testing.VirtualWallClock`, so the wall clock follows the jumps
exactly. (With pytest-trio, write ``async def`` tests that take the ``autojump_clock``
fixture instead of calling ``trio.run``; see docs/testing.rst.)

Run them with ``pytest examples/testing_schedules.py``, or run this file with
``python examples/testing_schedules.py``: it runs each check and prints an ``ok`` line.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import trio
import trio.testing

from jobify_trio import INJECT, Jobify, JobStatus, SmartRetry, State
from jobify_trio.testing import VirtualWallClock

BERLIN = ZoneInfo("Europe/Berlin")

# -- the app under test -------------------------------------------------------------------


def make_app(*, notifier: Any, inventory: Any, **options: Any) -> Jobify:
    """The production app; its side effects go through ``notifier`` and ``inventory``."""
    app = Jobify(tz=BERLIN, state={"notifier": notifier, "inventory": inventory}, **options)

    @app.task(name="standup", cron="0 9 * * MON-FRI")  # 09:00 Berlin time on weekdays
    async def standup(state: State = INJECT) -> None:
        await state.notifier.send("stand-up in 5 minutes")

    @app.task(name="backup", cron="30 2 * * *")  # every night at 02:30 Berlin time
    async def backup(state: State = INJECT) -> None:
        await state.notifier.send("backup done")

    # Up to 4 more attempts, 30 s, 60 s, then 100 s (max_delay caps 120 and 240) after
    # each failure; no jitter, so the times are exact.
    backoff = SmartRetry(4, initial_delay=30, backoff_factor=2, max_delay=100, jitter=False)

    @app.task(name="sync_inventory", retry=backoff)
    async def sync_inventory(sku: str, state: State = INJECT) -> int:
        return int(await state.inventory.fetch(sku))

    return app


# -- fakes that record what happened, and when ---------------------------------------------


class RecordingNotifier:
    def __init__(self, clock: VirtualWallClock) -> None:
        self.clock = clock
        self.sent: list[tuple[datetime, str]] = []

    async def send(self, text: str) -> None:
        self.sent.append((self.clock.now().astimezone(BERLIN), text))


class FlakyInventory:
    """Fails ``failures`` times, then answers 7; records the time of every call."""

    def __init__(self, clock: VirtualWallClock, failures: int) -> None:
        self.clock = clock
        self.failures = failures
        self.calls: list[datetime] = []

    async def fetch(self, sku: str) -> int:
        self.calls.append(self.clock.now())
        if len(self.calls) <= self.failures:
            raise ConnectionError("inventory service unavailable")
        return 7


def run_virtual(test: Callable[[], Awaitable[None]]) -> None:
    """Run ``test`` on virtual time: a week passes in milliseconds."""
    trio.run(test, clock=trio.testing.MockClock(autojump_threshold=0))


def berlin(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=BERLIN)


# -- the tests ------------------------------------------------------------------------------


def test_a_week_of_cron_runs() -> None:
    """Monday 23 March to Monday 30 March 2026; clocks go forward on Sunday 29th."""
    clock = VirtualWallClock(berlin(23, 0))
    notifier = RecordingNotifier(clock)
    app = make_app(notifier=notifier, inventory=None, wall_clock=clock, storage=False)

    async def week() -> None:
        async with app:
            await trio.sleep(timedelta(days=7).total_seconds())  # virtual: instant
        # leaving the block cancels the crons, which would otherwise run forever

    run_virtual(week)
    standups = [at for at, text in notifier.sent if text.startswith("stand-up")]
    backups = [at for at, text in notifier.sent if text == "backup done"]
    assert standups == [berlin(day, 9) for day in (23, 24, 25, 26, 27)]  # Mon-Fri only
    assert backups == [berlin(day, 2, 30) for day in (23, 24, 25, 26, 27, 28)] + [
        berlin(29, 3, 0),  # 02:30 does not exist on the 29th: it runs at the end of the gap
    ]
    # Across a DST change, subtracting two datetimes of one zone is wall-clock arithmetic
    # (24.5 hours here); compare timestamps (or UTC) for the real time between two runs.
    assert backups[-1] - backups[-2] == timedelta(hours=24, minutes=30)
    assert backups[-1].timestamp() - backups[-2].timestamp() == 23.5 * 3600


def test_retry_schedule() -> None:
    """Fails three times, then succeeds: attempts at 0 s, 30 s, 90 s and 190 s."""
    start = berlin(24, 12)
    clock = VirtualWallClock(start)
    inventory = FlakyInventory(clock, failures=3)
    app = make_app(notifier=None, inventory=inventory, wall_clock=clock, storage=False)

    async def sync() -> None:
        async with app:
            job = await app.tasks["sync_inventory"].push("SKU-42")
            assert await job == 7  # waits through the retries (virtual time)
            assert job.status is JobStatus.SUCCESS

    run_virtual(sync)
    offsets = [(at - start).total_seconds() for at in inventory.calls]
    assert offsets == [0, 30, 90, 190]


def test_retries_give_up() -> None:
    """Always failing: 1 + 4 attempts, then the job fails with the last error."""
    start = berlin(24, 12)
    clock = VirtualWallClock(start)
    inventory = FlakyInventory(clock, failures=100)
    app = make_app(notifier=None, inventory=inventory, wall_clock=clock, storage=False)

    async def sync() -> None:
        async with app:
            job = await app.tasks["sync_inventory"].push("SKU-42")
            await job.wait()  # never raises; job.result() would raise JobFailedError
            assert job.status is JobStatus.FAILED
            assert isinstance(job.exception, ConnectionError)

    run_virtual(sync)
    offsets = [(at - start).total_seconds() for at in inventory.calls]
    assert offsets == [0, 30, 90, 190, 290]


TESTS = [test_a_week_of_cron_runs, test_retry_schedule, test_retries_give_up]

if __name__ == "__main__":
    for test in TESTS:
        test()
        print(f"ok {test.__name__}")
