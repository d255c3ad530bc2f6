"""``JobContext`` (what a running job, its middleware and its handlers see) and
``OuterContext`` (what outer middleware sees around a scheduling call)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import attrs

from ._job import Job
from ._state import RequestState, State

if TYPE_CHECKING:
    from .._api._app import Jobify
    from .._api._task import Task, TaskOptions
    from .._cron._values import Cron

__all__ = ["JobContext", "OuterContext", "Trigger"]

Trigger = Literal["push", "at", "cron"]
"""Which scheduling call an :class:`OuterContext` stands for (``delay`` is ``"at"``)."""


class _TaskViews:
    """Read-only views of the task's options shared by both contexts."""

    __slots__ = ()
    task: Task[..., Any]

    @property
    def options(self) -> TaskOptions:
        """The task's registration options."""
        return self.task.options

    @property
    def route_options(self) -> TaskOptions:
        """The task's registration options (Jobify's name for them)."""
        return self.task.options

    @property
    def metadata(self) -> Mapping[str, Any]:
        """The task's ``metadata``."""
        return self.task.options.metadata


@attrs.frozen(kw_only=True)
class JobContext(_TaskViews):
    """The context of one attempt of a job (also given to exception handlers).

    ``request_state`` is fresh for each attempt and shared by the inner middleware and
    the task (through ``INJECT``); ``state`` is the app's :class:`State`.
    """

    #: The running app.
    app: Jobify
    #: The job this attempt belongs to.
    job: Job[Any]
    #: The job's task.
    task: Task[..., Any]
    #: The app's state.
    state: State
    #: State of this attempt, fresh for each one.
    request_state: RequestState
    #: The attempt number, 1 for the first.
    attempt: int

    @classmethod
    def for_attempt(cls, app: Jobify, job: Job[Any], attempt: int) -> JobContext:
        """A context for one attempt of ``job`` (or its handler), with a fresh RequestState."""
        return cls(
            app=app,
            job=job,
            task=job._task,
            state=app.state,
            request_state=RequestState(),
            attempt=attempt,
        )

    @property
    def runnable(self) -> Task[..., Any]:
        """The task being run (Jobify's name for it)."""
        return self.task


@attrs.frozen(kw_only=True)
class OuterContext(_TaskViews):
    """One scheduling call as outer middleware sees it.

    Middleware may pass a changed copy to ``call_next`` (``attrs.evolve(context,
    exec_at=...)``); the scheduling is done from the context that reaches the end of
    the chain. ``exec_at`` is the requested run time (``push``: now; ``cron``: None).
    """

    #: The running app.
    app: Jobify
    #: The task being scheduled.
    task: Task[..., Any]
    #: The app's state.
    state: State
    #: State of this scheduling call, fresh for each one.
    request_state: RequestState
    #: Which call: ``"push"``, ``"at"`` (also for ``delay``) or ``"cron"``.
    trigger: Trigger
    #: The job's positional arguments.
    args: tuple[Any, ...]
    #: The job's keyword arguments.
    kwargs: dict[str, Any]
    #: The ``job_id`` given to the call, or None.
    job_id: str | None
    #: When the job is to run (``push``: now; ``cron``: None).
    exec_at: datetime | None
    #: The schedule of a ``cron`` call, else None.
    cron: Cron | None
    #: The ``replace`` flag of the call.
    replace: bool
    #: The ``force`` flag of the call.
    force: bool
