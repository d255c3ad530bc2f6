"""``JobContext``: what a running job, its middleware and its exception handlers see."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ._job import Job
from ._state import RequestState, State

if TYPE_CHECKING:
    from ._app import Jobify
    from ._task import Task, TaskOptions

__all__ = ["JobContext"]


@attrs.frozen(kw_only=True)
class JobContext:
    """The context of one attempt of a job."""

    app: Jobify
    job: Job[Any]
    task: Task[..., Any]
    state: State
    request_state: RequestState
    attempt: int

    @property
    def options(self) -> TaskOptions:
        """The task's registration options."""
        return self.task.options

    @property
    def metadata(self) -> Mapping[str, Any]:
        """The task's ``metadata``."""
        return self.task.options.metadata
