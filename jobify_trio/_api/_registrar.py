"""Task registration shared by the app and (later) routers: the ``task`` decorator."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar, overload

from .._cron._values import Cron
from .._policy._handler_resolution import ExceptionHandler
from .._policy._retry import SmartRetry
from .._policy._run_mode import RunMode
from ..exceptions import ApplicationStateError, RouteAlreadyRegisteredError
from ._task import Task, TaskOptions, TaskOwner

__all__ = ["Registrar"]

P = ParamSpec("P")
R = TypeVar("R")


class Registrar(TaskOwner):
    """Something tasks are registered on: ``@registrar.task`` / ``@registrar.task(...)``."""

    def __init__(self) -> None:
        self._tasks: dict[str, Task[..., Any]] = {}

    @property
    def tasks(self) -> Mapping[str, Task[..., Any]]:
        """The tasks registered here, by name."""
        return dict(self._tasks)

    def _registration_open(self) -> bool:
        return True

    def _qualify_name(self, name: str) -> str:
        return name

    @overload
    def task(self, func: Callable[P, R], /) -> Task[P, R]: ...

    @overload
    def task(
        self,
        func: None = None,
        /,
        *,
        name: str | None = None,
        cron: str | Cron | None = None,
        retry: int | SmartRetry | None = None,
        timeout: float | None = None,
        durable: bool | None = None,
        run_mode: RunMode | None = None,
        metadata: Mapping[str, Any] | None = None,
        exception_handlers: Mapping[type[BaseException], ExceptionHandler] | None = None,
    ) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    @overload
    def task(
        self,
        func: Callable[P, R],
        /,
        *,
        name: str | None = None,
        cron: str | Cron | None = None,
        retry: int | SmartRetry | None = None,
        timeout: float | None = None,
        durable: bool | None = None,
        run_mode: RunMode | None = None,
        metadata: Mapping[str, Any] | None = None,
        exception_handlers: Mapping[type[BaseException], ExceptionHandler] | None = None,
    ) -> Task[P, R]: ...

    def task(self, func: Callable[..., Any] | None = None, /, **options: Any) -> Any:
        """Register a function as a task; returns the :class:`~jobify_trio.Task`.

        Usable bare (``@app.task``), with options (``@app.task(retry=3, timeout=30)``) or
        called directly (``app.task(func, name="report")``). Async and sync functions both
        work. Every option is checked here, before the app starts: a bad value raises
        ``TypeError`` or ``ValueError`` naming the task and the value, and nothing is
        registered. Tasks are registered before the app starts (registering on a running
        app raises :class:`~jobify_trio.exceptions.ApplicationStateError`); a name already
        taken raises :class:`~jobify_trio.exceptions.RouteAlreadyRegisteredError`.

        All options are keyword-only:

        :param func: The function, when used bare or called directly; omitted when the
            decorator is called with options.
        :param name: The task's name, used in job rows, events and errors. Default:
            ``"<module>:<qualname>"`` of the function (a script run as ``__main__`` uses
            its file name). On a router the name is prefixed: ``"<prefix>:<name>"``.
        :type name: str | None
        :param cron: Run the task on this schedule from the moment the app starts: a cron
            expression (5, 6 or 7 fields, read as Jobify reads them: the sixth of six is a
            year) or a :class:`~jobify_trio.Cron` for ``max_runs``, ``misfire_policy``,
            ``start_date`` and arguments. An invalid
            expression raises :class:`~jobify_trio.exceptions.InvalidCronExpression` here.
            Default ``None``: no declared schedule (``task.schedule(...).cron(...)`` still
            works). See :doc:`/cron`.
        :type cron: str | Cron | None
        :param retry: Retries after a failed attempt: an ``int`` ``n >= 0`` means
            ``SmartRetry(n)`` (exponential backoff from 0.5 s, capped at 60 s, with jitter);
            a :class:`~jobify_trio.SmartRetry` gives every knob. Default ``None``: no
            retry. Timeouts count as failures. See :doc:`/retries`.
        :type retry: int | SmartRetry | None
        :param timeout: Seconds each attempt may run (positive; ``math.inf`` means no
            limit, as ``None`` does); past it the attempt is cancelled and, once retries
            are exhausted, the job ends ``TIMEOUT`` with a
            :class:`~jobify_trio.exceptions.JobTimeoutError`. Default ``None``: no limit.
        :type timeout: float | None
        :param durable: ``False`` keeps this task's jobs in memory only. Default ``None``
            (``True`` means the same): its jobs are stored when the app has storage, so
            they survive restarts. See :doc:`/durability`.
        :type durable: bool | None
        :param run_mode: Where the function runs: :attr:`RunMode.MAIN
            <jobify_trio.RunMode.MAIN>` on the trio loop, :attr:`RunMode.THREAD
            <jobify_trio.RunMode.THREAD>` in a worker thread, :attr:`RunMode.PROCESS
            <jobify_trio.RunMode.PROCESS>` in a worker process (sync functions only).
            Default ``None``: ``MAIN`` for async functions, ``THREAD`` for sync ones. An
            async function asked to run in a thread or process warns
            (``RuntimeWarning``) and runs on the loop.
        :type run_mode: RunMode | None
        :param metadata: Free-form data about the task, kept as a read-only copy and
            visible to middleware and handlers as ``context.metadata``. Default: empty.
        :type metadata: ~collections.abc.Mapping[str, ~typing.Any] | None
        :param exception_handlers: ``{exception class: handler}`` for this task, consulted
            before the routers' and the app's once retries are exhausted. A handler is
            called as ``handler(exc, context)`` (sync or async); what it returns becomes
            the job's result, what it raises the job's failure. Default: none.
        :type exception_handlers: ~collections.abc.Mapping[type[BaseException],
            ~collections.abc.Callable[..., ~typing.Any]] | None
        :param options: The keyword options above; any other name raises ``TypeError``.
        :returns: The :class:`~jobify_trio.Task` when ``func`` is given, else a decorator
            that registers the function it is applied to and returns its ``Task``.
        """
        unknown = set(options) - _OPTION_NAMES
        if unknown:
            raise TypeError(f"task() got unknown option(s): {', '.join(sorted(unknown))}")
        full = dict.fromkeys(_OPTION_NAMES) | options
        if func is not None:
            return self._register(func, full, stacklevel=3)

        def decorator(f: Callable[P, R]) -> Task[P, R]:
            return self._register(f, full, stacklevel=3)  # type: ignore[return-value]

        return decorator

    def _register(
        self, func: Callable[..., Any], options: dict[str, Any], *, stacklevel: int
    ) -> Task[..., Any]:
        if not self._registration_open():
            raise ApplicationStateError("cannot register tasks on an app that is running")
        if isinstance(func, Task):
            raise TypeError(f"{func!r} is already a registered task")
        name = options.pop("name")
        validated = TaskOptions.validate(func, name=name, stacklevel=stacklevel + 2, **options)
        local_name = validated.name
        full_name = self._qualify_name(local_name)
        if full_name != local_name:
            validated = validated.renamed(full_name)
        self._check_name_free(full_name)
        task: Task[..., Any] = Task._create(func, options=validated, owner=self)
        self._store_task(local_name, task)
        return task

    def _store_task(self, local_name: str, task: Task[..., Any]) -> None:
        """Keep ``task`` (routers also remember its name before prefixing)."""
        self._tasks[task.name] = task

    def _check_name_free(self, name: str) -> None:
        if name in self._tasks:
            raise RouteAlreadyRegisteredError(name)


_OPTION_NAMES = frozenset(
    {"name", "cron", "retry", "timeout", "durable", "run_mode", "metadata", "exception_handlers"}
)
