"""Several app instances in one trio run, sharing one MemoryStorage under one MockClock."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import trio

from jobify_trio import INJECT, JobContext, Jobify, SharingOptions
from jobify_trio.testing import MemoryStorage, VirtualWallClock

LEASE = 3.0
POLL = 0.2


class Unencodable:
    """A value the JSON serializers cannot store."""


class RunningApp:
    """An app instance run in a nursery (``nursery.start(node.run)``) that can be killed."""

    app: Jobify
    scope: trio.CancelScope

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with self.scope:
            async with self.app:
                task_status.started()
                await trio.sleep_forever()

    def kill(self) -> None:
        """The instance dies: it stops without unregistering (its leases run out)."""
        runtime = self.app._runtime
        assert runtime is not None
        assert runtime.sharing is not None
        runtime.sharing.unregister_on_stop = False
        self.scope.cancel()


class Instance(RunningApp):
    """One app instance with the shared test tasks; ``ran`` is the shared log of runs."""

    def __init__(
        self,
        name: str,
        store: MemoryStorage,
        clock: VirtualWallClock,
        ran: list[tuple[str, str, Any]],
        **options: Any,
    ) -> None:
        self.name = name
        max_concurrency = options.pop("max_concurrency", 100)
        options.setdefault("poll_interval", POLL)
        sharing = SharingOptions(lease=LEASE, instance_id=name, **options)
        self.app = app = Jobify(
            storage=store, wall_clock=clock, sharing=sharing, max_concurrency=max_concurrency
        )
        self.scope = trio.CancelScope()

        @app.task(name="work")
        async def work(tag: str, seconds: float = 0.0, context: JobContext = INJECT) -> str:
            ran.append((name, tag, context.attempt))
            await trio.sleep(seconds)
            return f"{tag}-done"

        @app.task(name="fail")
        async def fail(tag: str) -> None:
            ran.append((name, tag, 1))
            raise ValueError(f"bad {tag}")

        @app.task(name="slow", timeout=1.0)
        async def slow(tag: str) -> None:
            ran.append((name, tag, 1))
            await trio.sleep(10)

        @app.task(name="odd")
        async def odd(tag: str) -> Unencodable:
            ran.append((name, tag, 1))
            return Unencodable()

        @app.task(name="flaky", retry=2)
        async def flaky(tag: str, context: JobContext = INJECT) -> str:
            ran.append((name, tag, context.attempt))
            if context.attempt == 1:
                raise ValueError("first attempt fails")
            return "ok"

        @app.task(name="tick")
        async def tick(context: JobContext = INJECT) -> None:
            ran.append((name, "tick", context.job.exec_at))

        self.tasks = {"work": work, "fail": fail, "slow": slow, "odd": odd, "flaky": flaky}
        self.tick = tick

    def stall(self) -> trio.Event:
        """Freeze the instance's protocol actors (as if paused); set the event to resume."""
        runtime = self.app._runtime
        assert runtime is not None
        assert runtime.sharing is not None
        event = runtime.sharing.stalled = trio.Event()
        return event

    def resume(self) -> None:
        runtime = self.app._runtime
        assert runtime is not None
        assert runtime.sharing is not None
        stalled, runtime.sharing.stalled = runtime.sharing.stalled, None
        if stalled is not None:
            stalled.set()


def slots_of(ran: list[tuple[str, str, Any]]) -> list[datetime]:
    return [when for _, tag, when in ran if tag == "tick"]
