"""The table of active jobs (scheduled or running) and the "app is idle" signal."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import trio

from .._core._job import Job

__all__ = ["JobRegistry"]


class JobRegistry:
    """Active jobs by id. ``wait_idle`` returns when every active job is held (paused)."""

    __slots__ = ("_active", "_held", "_idle")

    def __init__(self) -> None:
        self._active: dict[str, Job[Any]] = {}
        self._held: set[Job[Any]] = set()
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
        self._active[job._id] = job

    def discard(self, job: Job[Any]) -> None:
        """Stop tracking ``job`` (if it is the job tracked under its id)."""
        active, job_id = self._active, job._id
        if active.get(job_id) is job:
            del active[job_id]
            if self._held:
                self._held.discard(job)
            if self._idle is not None:
                self._check_idle()

    def hold(self, job: Job[Any], held: bool) -> None:
        """A paused job is held: it no longer keeps :meth:`wait_idle` waiting."""
        if held:
            if self._active.get(job.id) is job:
                self._held.add(job)
        else:
            self._held.discard(job)
        self._check_idle()

    def _check_idle(self) -> None:
        if self._idle is not None and len(self._active) == len(self._held):
            self._idle.set()
            self._idle = None

    async def wait_idle(self) -> None:
        """Return when no job is active but held (paused) ones."""
        if len(self._active) == len(self._held):
            await trio.lowlevel.checkpoint()
            return
        if self._idle is None:
            self._idle = trio.Event()
        await self._idle.wait()
