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
        """Register a function as a task; usable bare, with options, or called directly."""
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
