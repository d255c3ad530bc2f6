"""The table of active jobs (scheduled or running) and the "app is idle" signal."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import trio

from .._core._job import Job

__all__ = ["JobRegistry"]


class JobRegistry:
    """Active jobs by id. ``wait_idle`` returns when the table is empty."""

    __slots__ = ("_active", "_idle")

    def __init__(self) -> None:
        self._active: dict[str, Job[Any]] = {}
        self._idle: trio.Event | None = None

    def __len__(self) -> int:
        return len(self._active)

    def __iter__(self) -> Iterator[Job[Any]]:
        return iter(list(self._active.values()))

    def get(self, job_id: str) -> Job[Any] | None:
        """The active job with this id, if any."""
        return self._active.get(job_id)

    def add(self, job: Job[Any]) -> None:
        """Track a job that was just scheduled."""
        self._active[job.id] = job

    def discard(self, job: Job[Any]) -> None:
        """Stop tracking ``job`` (if it is the job tracked under its id)."""
        active = self._active
        if active.get(job.id) is job:
            del active[job.id]
            if not active and self._idle is not None:
                self._idle.set()
                self._idle = None

    async def wait_idle(self) -> None:
        """Return when no job is active."""
        if not self._active:
            await trio.lowlevel.checkpoint()
            return
        if self._idle is None:
            self._idle = trio.Event()
        await self._idle.wait()
