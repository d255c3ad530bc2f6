"""Public exception hierarchy.

Every error this library raises on purpose derives from :class:`BaseJobifyError`,
except where Python already has the right type (``TypeError`` for arguments that
do not bind, ``ValueError`` for bad option values), and some errors are both.
"""

from __future__ import annotations

__all__ = [
    "ApplicationStateError",
    "BaseJobifyError",
    "DuplicateJobError",
    "InvalidCronExpression",
    "JobCancelledError",
    "JobFailedError",
    "JobNotCompletedError",
    "JobTimeoutError",
    "RemoteJobError",
    "RouteAlreadyRegisteredError",
]


class BaseJobifyError(Exception):
    """Root of every error raised by jobify_trio."""


class ApplicationStateError(BaseJobifyError):
    """The app is in the wrong state for this call (not started, or already started)."""


class DuplicateJobError(BaseJobifyError):
    """A job with this id is already scheduled or running and ``replace`` was not given."""

    def __init__(self, job_id: str, detail: str = "pass replace=True") -> None:
        super().__init__(f"job {job_id!r} is already scheduled or running; {detail}")
        self.job_id = job_id


class JobNotCompletedError(BaseJobifyError):
    """``Job.result()`` was called before the job finished."""


class JobFailedError(BaseJobifyError):
    """The job raised; the original exception is ``__cause__``."""

    def __init__(self, job_id: str, message: str = "") -> None:
        super().__init__(message or f"job {job_id!r} failed")
        self.job_id = job_id


class JobTimeoutError(BaseJobifyError, TimeoutError):
    """An attempt of the job ran longer than its ``timeout``."""

    def __init__(self, job_id: str, timeout: float) -> None:
        super().__init__(f"job {job_id!r} timed out after {timeout:g} s")
        self.job_id = job_id
        self.timeout = timeout


class RemoteJobError(BaseJobifyError):
    """How a job that ran on another app instance failed, as that instance stored it.

    The original exception stays on the instance that ran the job; ``str()`` is its
    ``"ExceptionType: message"`` (see docs/sharing.rst).
    """

    def __init__(self, job_id: str, error: str) -> None:
        super().__init__(f"job {job_id!r} failed on another instance: {error}")
        self.job_id = job_id
        self.error = error


class JobCancelledError(BaseJobifyError):
    """The job was cancelled before it finished."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id!r} was cancelled")
        self.job_id = job_id


class RouteAlreadyRegisteredError(BaseJobifyError):
    """Two tasks were registered under the same name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"a task named {name!r} is already registered")
        self.name = name


class InvalidCronExpression(BaseJobifyError, ValueError):
    """A cron expression does not parse; the message names the expression.

    When one field is at fault, ``field`` names it (``"minute"``, ``"day of week"``...)
    and the message reads in the user's own terms:
    ``invalid cron expression: minute '61' is out of range 0-59 in '61 * * * *'``.
    """

    def __init__(self, expression: str, reason: str = "", *, field: str | None = None) -> None:
        if field is None:
            detail = f": {reason}" if reason else ""
            super().__init__(f"invalid cron expression {expression!r}{detail}")
        else:
            super().__init__(f"invalid cron expression: {field} {reason} in {expression!r}")
        self.expression = expression
        self.field = field
