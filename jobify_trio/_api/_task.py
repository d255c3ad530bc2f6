"""Registered tasks: the object ``@app.task`` returns, and its validated options."""

from __future__ import annotations

import abc
import functools
import sys
import types
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

import attrs
import trio

from .._cron._values import Cron
from .._policy._binding import ArgumentBinder
from .._policy._handler_resolution import (
    ExceptionHandler,
    HandlerTable,
    validate_exception_handlers,
)
from .._policy._retry import SmartRetry
from .._policy._run_mode import RunMode, is_async_callable, resolve_run_mode
from ._inject import InjectPlan

if TYPE_CHECKING:
    from .._core._job import Job
    from .._runtime._middleware_chain import AttemptRunner, OuterChain
    from .._runtime._runtime import Runtime
    from ._schedule import ScheduleBuilder

__all__ = ["Task", "TaskOptions", "TaskOwner", "default_task_name"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class TaskOwner(abc.ABC):
    """What a task is registered on (the app or a router): it resolves the running app."""

    @abc.abstractmethod
    def _running_runtime(self, task: Task[..., Any]) -> Runtime:
        """The running app's runtime; raises when the app is not running."""

    def _scheduling_runtime(self, task: Task[..., Any]) -> Any:
        """What schedules ``task``'s jobs: the runtime, or its outer middleware proxy."""
        runtime = self._running_runtime(task)
        outer = task._outer  # outer middleware: scheduling goes through its chain
        return runtime if outer is None else outer.bind(runtime)


def default_task_name(func: Callable[..., Any]) -> str:
    """``"{module}:{qualname}"``; a script run as ``__main__`` uses its file stem."""
    module = getattr(func, "__module__", None) or "__main__"
    qualname = getattr(func, "__qualname__", None) or getattr(func, "__name__", repr(func))
    if module == "__main__":
        main_file = getattr(sys.modules.get("__main__"), "__file__", None)
        if main_file:
            module = Path(main_file).stem
    return f"{module}:{qualname}"


def _check_timeout(task_name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"task {task_name!r}: timeout must be a number of seconds, got {value!r}")
    if not value > 0:  # NaN fails too; inf means no limit, as in Jobify
        raise ValueError(f"task {task_name!r}: timeout must be positive, got {value!r}")
    return float(value)


def _check_optional_bool(task_name: str, option: str, value: object) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"task {task_name!r}: {option} must be True, False or None, got {value!r}")
    return value


def _check_metadata(task_name: str, value: object) -> Mapping[str, Any]:
    if value is None:
        return types.MappingProxyType({})
    if not isinstance(value, Mapping):
        raise TypeError(f"task {task_name!r}: metadata must be a mapping, got {value!r}")
    return types.MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class TaskOptions:
    """The options a task was registered with, validated."""

    name: str
    cron: Cron | None
    retry: SmartRetry
    timeout: float | None
    durable: bool | None
    run_mode: RunMode
    metadata: Mapping[str, Any]
    exception_handlers: Mapping[type[BaseException], ExceptionHandler]

    def renamed(self, name: str) -> TaskOptions:
        """The same options under another (full) name."""
        return attrs.evolve(self, name=name)

    @classmethod
    def validate(
        cls, func: Callable[..., Any], *, name: object, stacklevel: int, **options: Any
    ) -> TaskOptions:
        """Check every option of ``@app.task(...)``; errors name the task and the value."""
        if not callable(func):
            raise TypeError(f"@task needs a callable, got {func!r}")
        if name is None:
            name = default_task_name(func)
        if not isinstance(name, str) or not name:
            raise TypeError(f"task name must be a non-empty str, got {name!r}")
        try:
            cron = None if options["cron"] is None else Cron.coerce(options["cron"])
        except TypeError as exc:
            raise TypeError(f"task {name!r}: {exc}") from None
        return cls(
            name=name,
            cron=cron,
            retry=SmartRetry.coerce(options["retry"], task_name=name),
            timeout=_check_timeout(name, options["timeout"]),
            durable=_check_optional_bool(name, "durable", options["durable"]),
            run_mode=resolve_run_mode(
                options["run_mode"],
                is_async=is_async_callable(func),
                task_name=name,
                stacklevel=stacklevel + 1,
            ),
            metadata=_check_metadata(name, options["metadata"]),
            exception_handlers=validate_exception_handlers(
                options["exception_handlers"], owner=f"task {name!r}"
            ),
        )


class Task(Generic[P, R]):
    """A registered task. Calling it calls the plain function; ``push``/``schedule`` make jobs.

    It pickles by reference (module and qualified name), so ``RunMode.PROCESS`` can send
    it to a worker process without the function being renamed.
    """

    #: The decorated function, unchanged.
    func: Callable[P, R]
    #: The validated options the task was registered with.
    options: TaskOptions
    #: The task's full name (with its routers' prefix).
    name: str
    handlers: HandlerTable[ExceptionHandler]
    _owner: TaskOwner
    _binder: ArgumentBinder
    _invoke: Callable[[tuple[Any, ...], dict[str, Any]], Awaitable[Any]]
    # the function itself when _invoke would only await it (an async def run in the event
    # loop): the executor calls it directly, one coroutine less per attempt
    _direct: Callable[..., Awaitable[Any]] | None
    _inject: InjectPlan | None
    _runner: AttemptRunner | None  # set when the app starts: middleware and/or INJECT
    _outer: OuterChain | None  # set when the app starts: outer middleware

    def __init__(self) -> None:
        raise TypeError("Task has no public constructor; use @app.task")

    @classmethod
    def _create(cls, func: Callable[P, R], *, options: TaskOptions, owner: TaskOwner) -> Task[P, R]:
        self = object.__new__(cls)
        functools.update_wrapper(self, func)
        self.func = func
        self.options = options
        self.name = options.name
        self._owner = owner
        self._inject = InjectPlan.for_callable(
            func, task_name=options.name, run_mode=options.run_mode
        )
        self._binder = self._make_binder()
        self.handlers = HandlerTable.build([options.exception_handlers])
        self._invoke = self._pick_invoker()
        self._direct = self.func if self._invoke == self._run_async else None  # type: ignore[assignment]
        self._runner = None
        self._outer = None
        return self

    def _make_binder(self) -> ArgumentBinder:
        hidden = () if self._inject is None else self._inject.names
        return ArgumentBinder.for_callable(self.func, task_name=self.name, hidden=hidden)

    def _rename(self, name: str) -> None:
        """Give the task its full name (a router was included); before the app starts."""
        self.name = name
        self.options = self.options.renamed(name)
        self._binder = self._make_binder()

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.func(*args, **kwargs)

    def __reduce__(self) -> str:
        qualname: str = self.__dict__["__qualname__"]
        return qualname

    def __repr__(self) -> str:
        return f"<Task {self.name!r} run_mode={self.options.run_mode.value}>"

    # -- scheduling ----------------------------------------------------------------------

    # The job's value is what the function returns, awaited for an ``async def``: the
    # first overload of each method types ``await job`` as the coroutine's result.
    @overload
    async def push(
        self: Task[P, Coroutine[Any, Any, T]], *args: P.args, **kwargs: P.kwargs
    ) -> Job[T]: ...

    @overload
    async def push(self: Task[P, T], *args: P.args, **kwargs: P.kwargs) -> Job[T]: ...

    async def push(self, *args: P.args, **kwargs: P.kwargs) -> Job[Any]:
        """Run the function with these arguments as soon as possible; returns the job."""
        self._binder.check(args, kwargs)
        if self._outer is None:  # (the body of _scheduling_runtime, inlined: once per job)
            return await self._owner._running_runtime(self).push(self, args, kwargs)
        runtime = self._owner._scheduling_runtime(self)
        return await runtime.push(self, args, kwargs)  # type: ignore[no-any-return]

    @overload
    def schedule(
        self: Task[P, Coroutine[Any, Any, T]], *args: P.args, **kwargs: P.kwargs
    ) -> ScheduleBuilder[T]: ...

    @overload
    def schedule(self: Task[P, T], *args: P.args, **kwargs: P.kwargs) -> ScheduleBuilder[T]: ...

    def schedule(self, *args: P.args, **kwargs: P.kwargs) -> ScheduleBuilder[Any]:
        """Bind arguments now; choose when to run with ``.push/.at/.delay/.cron``."""
        from ._schedule import ScheduleBuilder

        self._binder.check(args, kwargs)
        return ScheduleBuilder._create(self, args, kwargs)

    # -- running -------------------------------------------------------------------------

    def _pick_invoker(self) -> Callable[[tuple[Any, ...], dict[str, Any]], Awaitable[Any]]:
        mode = self.options.run_mode
        if mode is RunMode.MAIN:
            return self._run_async if is_async_callable(self.func) else self._run_inline
        if mode is RunMode.THREAD:
            return self._run_in_thread
        return self._run_in_process

    async def _run_async(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return await self.func(*args, **kwargs)  # type: ignore[misc]

    async def _run_inline(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        await trio.lowlevel.checkpoint()
        return self.func(*args, **kwargs)

    async def _run_in_thread(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        runtime = self._owner._running_runtime(self)
        return await runtime.run_in_thread(functools.partial(self.func, *args, **kwargs))

    async def _run_in_process(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        runtime = self._owner._running_runtime(self)
        return await runtime.run_in_process(functools.partial(self, *args, **kwargs))
