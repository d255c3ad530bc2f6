"""Contract §2.4: wall clock vs trio clock, VirtualWallClock, wall-clock jumps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import trio
import trio.testing
from _helpers import START, new_app

from jobify_trio._core._clock import SystemWallClock
from jobify_trio._runtime._actors._scheduler import MAX_SLEEP
from jobify_trio.testing import VirtualWallClock


class SteppedClock:
    """A virtual wall clock that an operator can step, like NTP or a suspend would."""

    def __init__(self) -> None:
        self.inner = VirtualWallClock(START)
        self.step = timedelta(0)

    def now(self) -> datetime:
        return self.inner.now() + self.step


async def test_virtual_wall_clock_follows_trio_time(autojump_clock: trio.testing.MockClock) -> None:
    clock = VirtualWallClock(START)
    assert clock.now() == START
    await trio.sleep(90.5)
    assert clock.now() == START + timedelta(seconds=90.5)


def test_virtual_wall_clock_continues_in_a_new_run() -> None:
    clock = VirtualWallClock(START)

    async def advance(seconds: float) -> datetime:
        clock.now()
        await trio.sleep(seconds)
        return clock.now()

    first = trio.run(advance, 10, clock=trio.testing.MockClock(autojump_threshold=0))
    assert first == START + timedelta(seconds=10)
    assert clock.now() == first  # outside trio.run: the last value
    second = trio.run(advance, 5, clock=trio.testing.MockClock(autojump_threshold=0))
    assert second == START + timedelta(seconds=15)


async def test_virtual_wall_clock_advances_in_real_time_across_dst(
    autojump_clock: trio.testing.MockClock,
) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 3, 29, 1, 30, tzinfo=berlin)  # clocks jump 02:00 -> 03:00
    clock = VirtualWallClock(start)
    assert clock.now() == start
    await trio.sleep(3600)
    now = clock.now()
    assert now.timestamp() - start.timestamp() == 3600  # an hour of real time passed
    assert (now.tzinfo, now.hour, now.minute) == (berlin, 3, 30)
    assert now.utcoffset() == timedelta(hours=2)


def test_virtual_wall_clock_needs_aware_start() -> None:
    with pytest.raises(ValueError, match="aware"):
        VirtualWallClock(datetime(2026, 1, 1))


def test_system_clock_is_aware_utc() -> None:
    now = SystemWallClock().now()
    assert now.tzinfo is UTC
    assert abs((now - datetime.now(UTC)).total_seconds()) < 5


async def test_wall_clock_set_back_delays_the_timer(autojump_clock: trio.testing.MockClock) -> None:
    clock = SteppedClock()
    app = new_app(wall_clock=clock)
    ran: list[float] = []

    @app.task
    async def job() -> None:
        ran.append(trio.current_time())

    async with app:
        await job.schedule().at(START + timedelta(seconds=100))
        await trio.sleep(10)
        clock.step = timedelta(seconds=-50)  # the wall clock is set back 50 s
        await app.wait_all()
    assert ran == [150.0]


async def test_wall_clock_jump_forward_is_noticed(autojump_clock: trio.testing.MockClock) -> None:
    clock = SteppedClock()
    app = new_app(wall_clock=clock)
    ran: list[tuple[float, datetime]] = []

    @app.task
    async def job() -> None:
        ran.append((trio.current_time(), clock.now()))

    async with app:
        await job.schedule().at(START + timedelta(hours=2))
        await trio.sleep(5)
        clock.step = timedelta(hours=3)  # e.g. the machine woke from suspend
        await app.wait_all()
    ((at_trio, at_wall),) = ran
    assert at_trio <= 5 + MAX_SLEEP
    assert at_wall >= START + timedelta(hours=2)


class CountingVirtualClock(VirtualWallClock):
    """A virtual wall clock that counts how often the runtime reads it."""

    __slots__ = ("reads",)

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self.reads = 0

    def now(self) -> datetime:
        self.reads += 1
        return super().now()


async def test_virtual_clock_needs_no_jump_watching(autojump_clock: trio.testing.MockClock) -> None:
    clock = CountingVirtualClock(START)
    app = new_app(wall_clock=clock)
    ran: list[float] = []

    @app.task
    async def later() -> None:
        ran.append(trio.current_time())

    async with app:
        await later.schedule().delay(timedelta(days=7))
        await later.schedule().cron("0 0 1 1 *", job_id="yearly")
        await trio.sleep(8 * 86400)
        await app.find_job("yearly").cancel()  # type: ignore[union-attr]
    assert ran == [7 * 86400.0]
    # A clock that may jump would be read on a wake-up every minute: 11,520 in 8 days.
    assert clock.reads < 50


async def test_a_clock_that_may_jump_is_watched(autojump_clock: trio.testing.MockClock) -> None:
    clock = SteppedClock()
    app = new_app(wall_clock=clock)
    async with app:
        reads_before = clock.inner._last
        await trio.sleep(3600)
    assert clock.inner._last > reads_before  # the watchers kept reading the wall clock
