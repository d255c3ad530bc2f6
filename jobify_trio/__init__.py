"""jobify_trio: a job scheduler for trio applications.

Register tasks with ``@app.task``, run them now, at a time, after a delay or on a cron
schedule, with retries, timeouts and durable storage, all inside ``async with app:``.
"""

from __future__ import annotations

from ._api._app import Jobify
from ._api._inject import INJECT
from ._api._lifespan import Plugin
from ._api._router import JobRouter
from ._api._schedule import ScheduleBuilder
from ._api._task import Task
from ._core._context import JobContext, OuterContext
from ._core._job import Job, JobStatus
from ._core._state import RequestState, State
from ._cron._values import Cron, GracePolicy, MisfirePolicy
from ._ops._history import RunHistory, RunRecord
from ._policy._retry import SmartRetry
from ._policy._run_mode import RunMode
from ._runtime._decision_events import (
    DstEvent,
    LeaseTakenOverEvent,
    SlotClaimedElsewhereEvent,
    SlotsSkippedEvent,
)
from ._runtime._events import JobEvent, JobEventKind, RetryingEvent, StartedEvent
from ._sharing._options import SharingOptions

__all__ = [
    "Cron",
    "DstEvent",
    "INJECT",
    "GracePolicy",
    "Job",
    "JobContext",
    "JobEvent",
    "JobEventKind",
    "JobRouter",
    "JobStatus",
    "Jobify",
    "LeaseTakenOverEvent",
    "MisfirePolicy",
    "OuterContext",
    "Plugin",
    "RequestState",
    "RetryingEvent",
    "RunHistory",
    "RunMode",
    "RunRecord",
    "ScheduleBuilder",
    "SharingOptions",
    "SlotClaimedElsewhereEvent",
    "SlotsSkippedEvent",
    "SmartRetry",
    "StartedEvent",
    "State",
    "Task",
]

__version__ = "0.1.0"
