"""jobify_trio: a job scheduler for trio applications.

Register tasks with ``@app.task``, run them now, at a time, after a delay or on a cron
schedule, with retries, timeouts and durable storage, all inside ``async with app:``.
"""

from __future__ import annotations

from ._app import Jobify
from ._context import JobContext, OuterContext
from ._cron import Cron, GracePolicy, MisfirePolicy
from ._events import JobEvent, JobEventKind
from ._inject import INJECT
from ._job import Job, JobStatus
from ._lifespan import Plugin
from ._retry import SmartRetry
from ._router import JobRouter
from ._run_mode import RunMode
from ._schedule import ScheduleBuilder
from ._state import RequestState, State
from ._task import Task

__all__ = [
    "Cron",
    "INJECT",
    "GracePolicy",
    "Job",
    "JobContext",
    "JobEvent",
    "JobEventKind",
    "JobRouter",
    "JobStatus",
    "Jobify",
    "MisfirePolicy",
    "OuterContext",
    "Plugin",
    "RequestState",
    "RunMode",
    "ScheduleBuilder",
    "SmartRetry",
    "State",
    "Task",
]

__version__ = "0.1.0"
