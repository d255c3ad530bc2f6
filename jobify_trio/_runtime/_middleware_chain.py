"""Per-task middleware chains, built once when the app starts.

A task with no inner middleware and no ``INJECT`` parameter gets no runner: the executor
calls ``task._invoke`` directly, so the plain path costs nothing extra. Otherwise the
task's runner makes a :class:`JobContext` per attempt and calls the chain
``app middleware -> router middleware (outer to inner) -> terminal``; the terminal adds
injected arguments and applies the task's ``timeout`` to the function call alone (time
spent in middleware, e.g. waiting in a :class:`QueueMiddleware`, does not count).

Outer middleware is applied by a small proxy the task's owner returns instead of the
runtime when the task has outer middleware: its ``push``/``at``/``cron`` run the chain
and the terminal makes the real call on the runtime, with the arguments the context
holds when it reaches the end of the chain (for ``cron``: those given to
``schedule(...)``, else the Cron's). Running a job never goes through the proxy.
"""

from __future__ import annotations

import contextvars
import functools
import os
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .._core._context import JobContext, OuterContext, Trigger
from .._core._job import Job
from .._core._state import RequestState
from ..exceptions import JobTimeoutError
from ._actors._cron_trigger import cron_call_arguments

if TYPE_CHECKING:
    from .._api._app import Jobify
    from .._api._inject import InjectPlan
    from .._api._task import Task
    from .._cron._values import Cron
    from ..middleware import BaseMiddleware, BaseOuterMiddleware
    from ._runtime import Runtime

__all__ = ["AttemptRunner", "OuterChain", "build_runner"]

AttemptRunner = Callable[[Job[Any], int], Awaitable[Any]]
"""``await runner(job, attempt)``: one attempt through the task's middleware chain."""


def build_runner(
    app: Jobify,
    task: Task[..., Any],
    middleware: Sequence[BaseMiddleware],
    plan: InjectPlan | None,
) -> AttemptRunner | None:
    """The task's attempt runner, or None when nothing wraps the function call."""
    if not middleware and plan is None:
        return None
    chain: Callable[[JobContext], Awaitable[Any]] = _terminal(task, plan)
    for mw in reversed(middleware):
        chain = functools.partial(mw, chain)

    async def run(job: Job[Any], attempt: int) -> Any:
        return await chain(JobContext.for_attempt(app, job, attempt))

    return run


def _terminal(
    task: Task[..., Any], plan: InjectPlan | None
) -> Callable[[JobContext], Awaitable[Any]]:
    invoke = task._invoke
    timeout = task.options.timeout

    async def call(context: JobContext) -> Any:
        job = context.job
        kwargs = job._kwargs if plan is None else {**job._kwargs, **plan.values(context)}
        if timeout is None:
            return await invoke(job._args, kwargs)
        deadline = trio.current_time() + timeout
        with trio.CancelScope(deadline=deadline) as scope:
            result = await invoke(job._args, kwargs)
        # overran: cut short, or it swallowed its Cancelled, or blocked the loop past the deadline
        if scope.cancel_called or trio.current_time() >= deadline:
            raise JobTimeoutError(job.id, timeout)
        return result

    return call


class OuterChain:
    """A task's outer middleware chain; :meth:`bind` gives the runtime proxy for a session."""

    __slots__ = ("_app", "_chain", "_proxy", "_task")

    def __init__(
        self, app: Jobify, task: Task[..., Any], middleware: Sequence[BaseOuterMiddleware]
    ) -> None:
        self._app = app
        self._task = task
        chain: Callable[[OuterContext], Awaitable[Any]] = self._schedule
        for mw in reversed(middleware):
            chain = functools.partial(mw, chain)
        self._chain = chain
        self._proxy: _OuterRuntime | None = None

    def bind(self, runtime: Runtime) -> _OuterRuntime:
        """The proxy standing in for ``runtime`` when this task schedules."""
        proxy = self._proxy
        if proxy is None or proxy._runtime is not runtime:
            proxy = self._proxy = _OuterRuntime(self, runtime)
        return proxy

    async def run(self, runtime: Runtime, context: OuterContext, extra: dict[str, Any]) -> Any:
        """Run the chain; a job that was not scheduled comes back detached (PENDING)."""
        token = _TARGET.set((runtime, extra))
        try:
            result = await self._chain(context)
        finally:
            _TARGET.reset(token)
        if isinstance(result, Job):
            return result
        return _detached_job(context, runtime)

    @staticmethod
    async def _schedule(context: OuterContext) -> Job[Any]:
        runtime, extra = _TARGET.get()
        task = context.task
        task._binder.check(context.args, context.kwargs)
        args, kwargs = context.args, context.kwargs
        common: dict[str, Any] = {"replace": context.replace, "force": context.force, **extra}
        if context.trigger == "push":
            job = await runtime.push(task, args, kwargs, job_id=context.job_id, **common)
        elif context.trigger == "at":
            assert context.exec_at is not None
            job = await runtime.at(
                task, args, kwargs, context.exec_at, job_id=context.job_id, **common
            )
        else:
            assert context.cron is not None
            assert context.job_id is not None
            cron, args, kwargs = _cron_call(context.cron, args, kwargs)
            job = await runtime.cron(
                task, cron, job_id=context.job_id, args=args, kwargs=kwargs, **common
            )
        return job


def _cron_call(
    cron: Cron, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Cron, tuple[Any, ...], dict[str, Any]]:
    """The cron and the arguments to schedule it with, from the chain's final context.

    Arguments equal to the Cron's own stay in the Cron; others replace them (the runtime
    refuses arguments given both to ``schedule(...)`` and to the Cron).
    """
    if not (cron.args or cron.kwargs):
        return cron, args, kwargs
    if (args, kwargs) == (tuple(cron.args), dict(cron.kwargs)):
        return cron, (), {}
    return attrs.evolve(cron, args=(), kwargs={}), args, kwargs


_TARGET: contextvars.ContextVar[tuple[Runtime, dict[str, Any]]] = contextvars.ContextVar(
    "jobify_trio_outer_target"
)


async def _no_cancel(job: Job[Any]) -> None:
    await trio.lowlevel.checkpoint()


def _detached_job(context: OuterContext, runtime: Runtime) -> Job[Any]:
    """The job a scheduling call returns when outer middleware did not schedule it.

    It stays PENDING: never registered, stored or run; ``wait()`` returns at once,
    ``result()`` raises ``JobNotCompletedError`` and ``cancel()`` does nothing.
    """
    job: Job[Any] = Job._create(
        job_id=context.job_id or os.urandom(16).hex(),
        task=context.task,
        args=context.args,
        kwargs=context.kwargs,
        exec_at=context.exec_at or runtime.now(),
        cancel_hook=_no_cancel,
    )
    done = trio.Event()
    done.set()
    job._done_event = done
    return job


class _OuterRuntime:
    """Stands in for the runtime when a task schedules: its calls go through the chain."""

    __slots__ = ("_outer", "_runtime")

    def __init__(self, outer: OuterChain, runtime: Runtime) -> None:
        self._outer = outer
        self._runtime = runtime

    def now(self) -> datetime:
        """The runtime's current time (``schedule(...).delay`` needs it)."""
        return self._runtime.now()

    def _context(
        self,
        trigger: Trigger,
        task: Task[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        **fields: Any,
    ) -> OuterContext:
        app = self._outer._app
        return OuterContext(
            app=app,
            task=task,
            state=app.state,
            request_state=RequestState(),
            trigger=trigger,
            args=args,
            kwargs=kwargs,
            **fields,
        )

    async def push(
        self,
        task: Task[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        job_id: str | None = None,
        replace: bool = False,
        force: bool = False,
        **extra: Any,
    ) -> Any:
        context = self._context(
            "push",
            task,
            args,
            kwargs,
            job_id=job_id,
            exec_at=self._runtime.now(),
            cron=None,
            replace=replace,
            force=force,
        )
        return await self._outer.run(self._runtime, context, extra)

    async def at(
        self,
        task: Task[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        at: datetime,
        *,
        job_id: str | None = None,
        replace: bool = False,
        force: bool = False,
        **extra: Any,
    ) -> Any:
        context = self._context(
            "at",
            task,
            args,
            kwargs,
            job_id=job_id,
            exec_at=at,
            cron=None,
            replace=replace,
            force=force,
        )
        return await self._outer.run(self._runtime, context, extra)

    async def cron(
        self,
        task: Task[..., Any],
        cron: Cron,
        *,
        job_id: str,
        replace: bool = False,
        force: bool = False,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        **extra: Any,
    ) -> Any:
        args, kwargs = cron_call_arguments(task, cron, args, dict(kwargs or {}))
        context = self._context(
            "cron",
            task,
            args,
            kwargs,
            job_id=job_id,
            exec_at=None,
            cron=cron,
            replace=replace,
            force=force,
        )
        return await self._outer.run(self._runtime, context, extra)
