"""``ScheduleBuilder``: arguments already bound, the trigger still to choose."""

from __future__ import annotations

import functools
import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .._cron._values import Cron

if TYPE_CHECKING:
    from .._core._job import Job
    from ._task import Task

__all__ = ["ScheduleBuilder"]

R = TypeVar("R")


@functools.lru_cache(maxsize=256)
def _parse_cron(expression: str) -> Cron:
    """``Cron(expression)``, parsed once per distinct string (parsing costs ~0.3 ms)."""
    return Cron(expression)


def _check_job_id(task: Task[..., Any], job_id: object) -> str | None:
    if job_id is not None and (not isinstance(job_id, str) or not job_id):
        raise TypeError(f"task {task.name!r}: job_id must be a non-empty str, got {job_id!r}")
    return job_id


class ScheduleBuilder(Generic[R]):
    """Returned by ``task.schedule(*args, **kwargs)``. There is no public constructor."""

    __slots__ = ("_args", "_kwargs", "_task")

    _task: Task[..., R]
    _args: tuple[Any, ...]
    _kwargs: dict[str, Any]

    def __init__(self) -> None:
        raise TypeError("ScheduleBuilder has no public constructor; use task.schedule(...)")

    @classmethod
    def _create(
        cls, task: Task[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> ScheduleBuilder[R]:
        self = object.__new__(cls)
        self._task = task
        self._args = args
        self._kwargs = kwargs
        return self

    async def push(
        self, *, job_id: str | None = None, replace: bool = False, force: bool = False
    ) -> Job[R]:
        """Run as soon as possible."""
        runtime = self._task._owner._scheduling_runtime(self._task)
        return await runtime.push(  # type: ignore[no-any-return]
            self._task,
            self._args,
            self._kwargs,
            job_id=_check_job_id(self._task, job_id),
            replace=replace,
            force=force,
        )

    async def at(
        self,
        at: datetime,
        *,
        job_id: str | None = None,
        replace: bool = False,
        force: bool = False,
    ) -> Job[R]:
        """Run at the wall-clock time ``at`` (naive means the app's tz; past means now)."""
        if not isinstance(at, datetime):
            raise TypeError(f"task {self._task.name!r}: at must be a datetime, got {at!r}")
        runtime = self._task._owner._scheduling_runtime(self._task)
        return await runtime.at(  # type: ignore[no-any-return]
            self._task,
            self._args,
            self._kwargs,
            at,
            job_id=_check_job_id(self._task, job_id),
            replace=replace,
            force=force,
        )

    async def delay(
        self,
        seconds: float | timedelta,
        *,
        job_id: str | None = None,
        replace: bool = False,
    ) -> Job[R]:
        """Run ``seconds`` (a number or a timedelta) from now: the same as ``at(now + seconds)``.

        A negative delay is a time in the past, so the job runs at once, as in Jobify.
        """
        delta = self._check_delay(seconds)
        runtime = self._task._owner._scheduling_runtime(self._task)
        try:
            when = runtime.now() + delta
        except OverflowError:
            raise ValueError(
                f"task {self._task.name!r}: delay {seconds!r} is too large: it ends after "
                "the last date Python can represent (year 9999)"
            ) from None
        return await self.at(when, job_id=job_id, replace=replace)

    async def cron(
        self,
        cron: str | Cron,
        *,
        job_id: str,
        replace: bool = False,
        force: bool = False,
    ) -> Job[R]:
        """Run on a cron schedule under the id ``job_id``."""
        try:
            value = _parse_cron(cron) if isinstance(cron, str) else Cron.coerce(cron)
        except TypeError as exc:
            raise TypeError(f"task {self._task.name!r}: {exc}") from None
        if not isinstance(job_id, str) or not job_id:
            raise TypeError(
                f"task {self._task.name!r}: cron jobs need a non-empty str job_id, got {job_id!r}"
            )
        runtime = self._task._owner._scheduling_runtime(self._task)
        return await runtime.cron(  # type: ignore[no-any-return]
            self._task,
            value,
            job_id=job_id,
            replace=replace,
            force=force,
            args=self._args,
            kwargs=self._kwargs,
        )

    def _check_delay(self, seconds: object) -> timedelta:
        if isinstance(seconds, timedelta):
            delta = seconds
        elif isinstance(seconds, int | float) and not isinstance(seconds, bool):
            if not math.isfinite(seconds):
                raise ValueError(f"task {self._task.name!r}: delay must be finite, got {seconds!r}")
            try:
                delta = timedelta(seconds=seconds)
            except OverflowError:
                raise ValueError(
                    f"task {self._task.name!r}: delay {seconds!r} s is too large "
                    "(the largest is 999999999 days)"
                ) from None
        else:
            raise TypeError(
                f"task {self._task.name!r}: delay must be seconds or a timedelta, got {seconds!r}"
            )
        return delta  # negative is a time in the past: it runs at once, as in Jobify

    def __repr__(self) -> str:
        return f"<ScheduleBuilder task={self._task.name!r} args={self._args!r}>"
