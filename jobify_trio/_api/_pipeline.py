"""What the app prepares at start for each task: handler levels and middleware chains.

Levels, in precedence order: the task, each router from the task's own up to the root,
then the app. Middleware runs app first, then routers from the root down to the task's
own. Everything is computed once per start, so nothing is looked up per job.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .._policy._handler_resolution import HandlerTable
from .._runtime._middleware_chain import OuterChain, build_runner
from ..middleware import QueueMiddleware, check_priority
from ._router import JobRouter

if TYPE_CHECKING:
    from .._core._state import State
    from ._app import Jobify
    from ._lifespan import Lifespan
    from ._task import Task

__all__ = ["app_lifespans", "prepare_pipelines", "task_routers"]


def task_routers(task: Task[..., Any]) -> list[JobRouter]:
    """The routers a task sits in, from its own up to the root."""
    routers: list[JobRouter] = []
    node = task._owner
    while isinstance(node, JobRouter):
        routers.append(node)
        node = node._parent  # type: ignore[assignment]
    return routers


def prepare_pipelines(app: Jobify) -> None:
    """Build every task's handler table, attempt runner and outer chain."""
    for task in app._tasks.values():
        routers = task_routers(task)
        task.handlers = HandlerTable.build(
            [
                task.options.exception_handlers,
                *(r.exception_handlers for r in routers),
                app.exception_handlers,
            ]
        )
        top_down = routers[::-1]
        inner = [*app._middleware, *(m for r in top_down for m in r._middleware)]
        outer = [*app._outer_middleware, *(m for r in top_down for m in r._outer_middleware)]
        if any(isinstance(m, QueueMiddleware) for m in inner):
            check_priority(task)
        task._runner = build_runner(app, task, inner, task._inject)
        task._outer = OuterChain(app, task, outer) if outer else None


def app_lifespans(app: Jobify) -> Iterator[tuple[Lifespan, State | None]]:
    """The app's lifespan, then each router's (parents before children).

    Each router's initial ``state`` is merged into ``app.state`` just before its
    lifespan would run.
    """
    for layer in app._walk():
        if layer is not app:
            app.state.update(layer.state)
        if layer.lifespan is not None:
            yield layer.lifespan, (None if layer is app else layer.state)
