"""A hypothesis state machine of the whole app under virtual time.

Each example runs one app in its own ``trio.run`` (in a helper thread) with a
``MockClock`` whose autojump is switched on only while a rule advances time; the
rules are fed to it one at a time with ``trio.from_thread.run`` and the app settles
(``wait_all_tasks_blocked``) before each rule returns. Rules push jobs that fail a
chosen number of times (with retries, backoff and run time), cancel jobs, and advance
virtual time. Invariants: attempts never exceed ``retries + 1``; a finished job's
status and attempt count match the model; no attempt starts after a cancel.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import attrs
import trio
import trio.testing
from _helpers import new_app
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from jobify_trio import INJECT, Job, JobContext, JobStatus, SmartRetry
from jobify_trio.middleware import CallNext

T = TypeVar("T")
CALL_LIMIT = 30.0  # seconds of real time for one call into the app's trio thread
RETRIES = range(4)
DELAYS = (0, 1, 3)


@attrs.define
class Expected:
    job: Job[Any]
    fails: int
    retries: int
    cancelled_at: int | None = None  # attempts seen when cancel() hit an active job

    @property
    def attempts(self) -> int:
        return min(self.fails, self.retries) + 1

    @property
    def status(self) -> JobStatus:
        return JobStatus.SUCCESS if self.fails <= self.retries else JobStatus.FAILED


class TrioHost:
    """One ``trio.run`` in a thread, running ``body`` and taking calls until stopped."""

    def __init__(self, body: Callable[[trio.Event, threading.Event], Awaitable[None]]) -> None:
        self.clock = trio.testing.MockClock()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._body = body
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        try:
            trio.run(self._main, clock=self.clock)
        except BaseException as exc:  # reported by stop()
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self.token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        await self._body(self._stop, self._ready)

    def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn`` in the trio thread and wait until all is quiet (at most 30 s real time)."""
        scope = trio.CancelScope()

        async def settled() -> T:
            with scope:
                result = await fn()
                await trio.testing.wait_all_tasks_blocked()
                return result
            raise TimeoutError(f"{fn!r} did not settle within {CALL_LIMIT} s of real time")

        def expire() -> None:
            with contextlib.suppress(trio.RunFinishedError):
                self.token.run_sync_soon(scope.cancel)

        timer = threading.Timer(CALL_LIMIT, expire)
        timer.daemon = True
        timer.start()
        try:
            return trio.from_thread.run(settled, trio_token=self.token)
        finally:
            timer.cancel()

    def advance(self, seconds: float) -> None:
        async def sleep() -> None:
            self.clock.autojump_threshold = 0
            try:
                await trio.sleep(seconds)
            finally:
                self.clock.autojump_threshold = math.inf

        self.call(sleep)

    def stop(self) -> None:
        if self._thread.is_alive():
            trio.from_thread.run_sync(self._stop.set, trio_token=self.token)
            self._thread.join(10)
        if self._error is not None:
            raise self._error


class AppMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.starts: dict[str, int] = {}
        self.violations: list[str] = []
        self.expected: list[Expected] = []
        self.app = new_app(middleware=[self._guard])
        self.tasks = {(r, d): self._make_task(r, d) for r in RETRIES for d in DELAYS}

        async def body(stop: trio.Event, ready: threading.Event) -> None:
            async with self.app:
                ready.set()
                await stop.wait()

        self.host = TrioHost(body)

    async def _guard(self, call_next: CallNext, context: JobContext) -> Any:
        if context.job.status is not JobStatus.RUNNING:
            self.violations.append(f"{context.job.id} entered middleware as {context.job.status}")
        return await call_next(context)

    def _make_task(self, retries: int, delay: int) -> Any:
        policy = SmartRetry(retries, initial_delay=delay, max_delay=10, jitter=False)
        starts = self.starts

        async def work(fails: int, duration: int, job: Job[int] = INJECT) -> int:
            n = starts[job.id] = starts.get(job.id, 0) + 1
            if duration:
                await trio.sleep(duration)
            if n <= fails:
                raise ValueError(n)
            return n

        return self.app.task(work, name=f"work_r{retries}_d{delay}", retry=policy)

    @rule(
        fails=st.integers(0, 5),
        retries=st.sampled_from(RETRIES),
        delay=st.sampled_from(DELAYS),
        duration=st.integers(0, 2),
    )
    def push(self, fails: int, retries: int, delay: int, duration: int) -> None:
        task = self.tasks[(retries, delay)]
        job = self.host.call(lambda: task.push(fails, duration))
        self.expected.append(Expected(job=job, fails=fails, retries=retries))

    @precondition(lambda self: bool(self.expected))
    @rule(index=st.integers(0, 10**6))
    def cancel(self, index: int) -> None:
        entry = self.expected[index % len(self.expected)]
        active = not entry.job.is_done()
        self.host.call(entry.job.cancel)
        if active and entry.cancelled_at is None:
            entry.cancelled_at = self.starts.get(entry.job.id, 0)

    @rule(seconds=st.sampled_from([0.5, 1, 2, 5, 30]))
    def advance(self, seconds: float) -> None:
        self.host.advance(seconds)

    @invariant()
    def attempts_are_bounded(self) -> None:
        for e in self.expected:
            assert self.starts.get(e.job.id, 0) <= e.retries + 1

    @invariant()
    def nothing_runs_after_cancel(self) -> None:
        assert not self.violations
        for e in self.expected:
            if e.cancelled_at is not None:
                assert self.starts.get(e.job.id, 0) == e.cancelled_at
                assert e.job.status is JobStatus.CANCELLED

    @invariant()
    def finished_jobs_match_the_model(self) -> None:
        for e in self.expected:
            if not e.job.is_done() or e.cancelled_at is not None:
                continue
            assert e.job.status is e.status, e
            assert self.starts[e.job.id] == e.attempts
            if e.status is JobStatus.SUCCESS:
                assert e.job.result() == e.attempts

    def teardown(self) -> None:
        try:
            self.host.advance(1000)  # enough for every backoff and run
            for e in self.expected:
                assert e.job.is_done(), e
                expected = JobStatus.CANCELLED if e.cancelled_at is not None else e.status
                assert e.job.status is expected, e
            self.finished_jobs_match_the_model()
            assert self.app.get_active_jobs() == []
        finally:
            self.host.stop()


AppMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
test_app_state_machine = AppMachine.TestCase
