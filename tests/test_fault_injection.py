"""Fault injection: storage fails ``apply``/``load`` at call numbers hypothesis chooses,
over a random workload of push/at/delay/cron/cancel/sleep/restart (issue 10).

A restart leaves the app and enters a new one on the same (in-memory) store. Whatever
fails, three promises hold:

* no acknowledged job is lost: every scheduling call that returned (and was not cancelled)
  runs at least once, by the end (after the faults stop and the app restarts once more);
* no job whose scheduling call raised ever runs;
* no job runs after its ``cancel()`` returned.

The store lives in memory, so virtual time (autojump) sees everything.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import trio
import trio.testing
from _helpers import START
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_storage_failures import MemoryStorage

from jobify_trio import Cron, Jobify, SmartRetry
from jobify_trio.storage import LoadResult, StorageError, Write
from jobify_trio.testing import VirtualWallClock


class FaultyStorage(MemoryStorage):
    """``apply``/``load`` call number n (from 1) raises if n is in ``fail_apply``/``fail_load``."""

    def __init__(self, fail_apply: set[int], fail_load: set[int], error: type[Exception]):
        super().__init__()
        self.fail_apply, self.fail_load, self.error = fail_apply, fail_load, error
        self.applies = self.loads = 0

    async def apply(self, writes: Sequence[Write], /) -> None:
        self.applies += 1
        if self.applies in self.fail_apply:
            await trio.lowlevel.checkpoint()
            raise self.error(f"injected failure of apply #{self.applies}")
        await super().apply(writes)

    async def load(self) -> LoadResult:
        self.loads += 1
        if self.loads in self.fail_load:
            await trio.lowlevel.checkpoint()
            raise StorageError(f"injected failure of load #{self.loads}")
        return await super().load()


@dataclass
class Ledger:
    """What the workload saw; ``seq`` orders runs against returned cancels."""

    seq: itertools.count[int] = field(default_factory=itertools.count)
    acked: dict[str, str] = field(default_factory=dict)  # token -> job id
    raised: set[str] = field(default_factory=set)
    cancelled: dict[str, int] = field(default_factory=dict)  # token -> seq when cancel returned
    runs: list[tuple[str, int]] = field(default_factory=list)
    tokens: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


def build_app(storage: FaultyStorage, clock: VirtualWallClock, ledger: Ledger) -> Jobify:
    app = Jobify(storage=storage, wall_clock=clock)
    failed_once: set[str] = set()

    @app.task(name="work", retry=SmartRetry(1, initial_delay=30, max_delay=30, jitter=False))
    async def work(token: str) -> None:
        ledger.runs.append((token, next(ledger.seq)))
        if int(token[1:]) % 3 == 0 and token not in failed_once:
            failed_once.add(token)
            raise RuntimeError("first attempt fails")  # exercises the stored retry rows

    return app


async def schedule(app: Jobify, kind: str, seconds: int, ledger: Ledger) -> None:
    token = f"j{next(ledger.tokens)}"
    builder = app.tasks["work"].schedule(token)
    try:
        if kind == "push":
            job = await builder.push()
        elif kind == "at":
            job = await builder.at(app.wall_clock.now() + timedelta(seconds=seconds))
        elif kind == "delay":
            job = await builder.delay(seconds)
        else:
            job = await builder.cron(Cron("*/10 * * * *", max_runs=1), job_id=f"cron-{token}")
    except StorageError:
        ledger.raised.add(token)
    else:
        ledger.acked[token] = job.id


async def cancel(app: Jobify, index: int, ledger: Ledger) -> None:
    if not ledger.acked:
        return
    token, job_id = list(ledger.acked.items())[index % len(ledger.acked)]
    job = app.find_job(job_id)
    if job is None:
        return
    try:
        await job.cancel()
    except StorageError:
        return
    ledger.cancelled.setdefault(token, next(ledger.seq))


async def session(app: Jobify, ops: list[tuple[str, int]], ledger: Ledger) -> None:
    """Enter ``app`` (retrying a failed load), run ``ops``, leave."""
    for _ in range(10):
        try:
            async with app:
                for kind, number in ops:
                    if kind == "cancel":
                        await cancel(app, number, ledger)
                    elif kind == "sleep":
                        await trio.sleep(number)
                    else:
                        await schedule(app, kind, number, ledger)
            return
        except StorageError as exc:
            if "injected failure of load" not in str(exc):
                raise
    raise AssertionError("the app never started")


ops_strategy = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["push", "at", "delay", "cron"]), st.integers(0, 7200)),
        st.tuples(st.just("cancel"), st.integers(0, 50)),
        st.tuples(st.just("sleep"), st.integers(0, 900)),
        st.tuples(st.just("restart"), st.just(0)),
    ),
    max_size=30,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(  # the delete of a cancel fails: cancel() must raise, not return (then it reran)
    ops=[("push", 0), ("cancel", 0)], fail_apply={2}, fail_load=set(), error=StorageError
)
@example(  # a cancel's delete, then a load fail; a restart
    ops=[("delay", 60), ("cancel", 0), ("restart", 0), ("sleep", 120)],
    fail_apply={2},
    fail_load={2},
    error=RuntimeError,
)
@given(
    ops=ops_strategy,
    fail_apply=st.sets(st.integers(1, 60), max_size=12),
    fail_load=st.sets(st.integers(1, 6), max_size=3),
    error=st.sampled_from([StorageError, RuntimeError]),
)
def test_faults_never_lose_an_acknowledged_job_nor_run_a_refused_or_cancelled_one(
    ops: list[tuple[str, int]], fail_apply: set[int], fail_load: set[int], error: type[Exception]
) -> None:
    storage = FaultyStorage(fail_apply, fail_load, error)
    ledger = Ledger()
    sessions: list[list[tuple[str, int]]] = [[]]
    for op in ops:
        if op[0] == "restart":
            sessions.append([])
        else:
            sessions[-1].append(op)

    async def main() -> None:
        clock = VirtualWallClock(START)
        for ops_of_session in sessions:
            await session(build_app(storage, clock, ledger), ops_of_session, ledger)
        storage.fail_apply, storage.fail_load = set(), set()  # the faults stop: restart
        await session(build_app(storage, clock, ledger), [("sleep", 2 * 86400)], ledger)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # failed unwatched writes warn, as documented
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))

    ran = {token for token, _ in ledger.runs}
    assert not ran & ledger.raised, "a job whose scheduling call raised ran"
    for token, seq in ledger.runs:
        assert seq < ledger.cancelled.get(token, seq + 1), f"{token} ran after its cancel"
    lost = set(ledger.acked) - set(ledger.cancelled) - ran
    assert not lost, f"acknowledged jobs never ran: {sorted(lost)}"
