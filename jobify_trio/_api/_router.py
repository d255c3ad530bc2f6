"""Routers: groups of tasks with a name prefix and their own middleware, handlers,
lifespan and state. ``Layer`` is what the app and routers share.

Names: a router's tasks are named ``"<prefix>:<name>"``, where the prefix joins the
prefixes of the router and the routers it is nested in with dots, outermost first
(``"P.Q:name"``); routers without a prefix add nothing. Names are final once the router
is included; ``app.tasks`` then lists them, and duplicates raise
``RouteAlreadyRegisteredError`` when the router is included.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._core._state import State
from .._policy._handler_resolution import ExceptionHandler, validate_exception_handlers
from ..exceptions import ApplicationStateError, RouteAlreadyRegisteredError
from ._lifespan import Lifespan, check_lifespan
from ._registrar import Registrar

if TYPE_CHECKING:
    from .._runtime._runtime import Runtime
    from ..middleware import BaseMiddleware, BaseOuterMiddleware
    from ._task import Task

__all__ = ["JobRouter", "Layer"]


def _check_middleware(values: Sequence[object] | None, *, owner: str, kind: str) -> list[Any]:
    if values is None:
        return []
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise TypeError(f"{owner}: {kind} must be a sequence of middleware, got {values!r}")
    for mw in values:
        if not callable(mw):
            raise TypeError(f"{owner}: {kind} entry {mw!r} is not callable")
    return list(values)


class Layer(Registrar):
    """The app or a router: tasks plus middleware, handlers, lifespan, state, sub-routers."""

    _is_app = False
    exception_handlers: dict[type[BaseException], ExceptionHandler]
    state: State

    def _init_layer(
        self,
        *,
        owner: str,
        middleware: Sequence[BaseMiddleware] | None,
        outer_middleware: Sequence[BaseOuterMiddleware] | None,
        lifespan: Lifespan | None,
    ) -> None:
        self._owner_label = owner
        self._middleware: list[BaseMiddleware] = _check_middleware(
            middleware, owner=owner, kind="middleware"
        )
        self._outer_middleware: list[BaseOuterMiddleware] = _check_middleware(
            outer_middleware, owner=owner, kind="outer_middleware"
        )
        self.lifespan = check_lifespan(lifespan, owner=owner)
        self._parent: Layer | None = None
        self._routers: list[JobRouter] = []
        self._local: dict[str, Task[..., Any]] = {}

    # -- configuration -------------------------------------------------------------------

    def _check_open(self, what: str) -> None:
        if not self._registration_open():
            raise ApplicationStateError(f"cannot {what} on an app that is running")

    def add_middleware(self, middleware: BaseMiddleware) -> None:
        """Append an inner middleware, run around each attempt of this level's tasks.

        ``middleware`` is called as ``await middleware(call_next, context)`` (see
        :class:`~jobify_trio.middleware.BaseMiddleware`). Before the app starts only:
        afterwards it raises :class:`~jobify_trio.exceptions.ApplicationStateError`.
        """
        self._check_open("add middleware")
        self._middleware.extend(
            _check_middleware([middleware], owner=self._owner_label, kind="middleware")
        )

    def add_outer_middleware(self, middleware: BaseOuterMiddleware) -> None:
        """Append an outer middleware, run around each scheduling call of this level's tasks.

        See :class:`~jobify_trio.middleware.BaseOuterMiddleware`. Before the app starts
        only, like :meth:`add_middleware`.
        """
        self._check_open("add outer middleware")
        self._outer_middleware.extend(
            _check_middleware([middleware], owner=self._owner_label, kind="outer_middleware")
        )

    def add_exception_handler(
        self, exc_class: type[BaseException], handler: ExceptionHandler
    ) -> None:
        """Handle ``exc_class`` (and subclasses) at this level once retries are exhausted.

        ``handler(exc, context)`` may be sync or async; what it returns becomes the job's
        result, what it raises the job's failure. The task's handlers are consulted first,
        then each router's from the task's own outwards, then the app's (see
        :doc:`/retries`). Before the app starts only.
        """
        self._check_open("add an exception handler")
        self.exception_handlers.update(
            validate_exception_handlers({exc_class: handler}, owner=self._owner_label)
        )

    @property
    def middleware(self) -> tuple[BaseMiddleware, ...]:
        """This level's inner middleware."""
        return tuple(self._middleware)

    @property
    def outer_middleware(self) -> tuple[BaseOuterMiddleware, ...]:
        """This level's outer middleware."""
        return tuple(self._outer_middleware)

    @property
    def routers(self) -> tuple[JobRouter, ...]:
        """The routers included here directly."""
        return tuple(self._routers)

    # -- the tree ------------------------------------------------------------------------

    def _root(self) -> Layer:
        node = self
        while node._parent is not None:
            node = node._parent
        return node

    def _root_app(self) -> Any:
        """The app at the top of this tree, or None (typed Any: the app imports us)."""
        root = self._root()
        return root if root._is_app else None

    def _walk(self) -> Iterator[Layer]:
        """This layer and every router below it, parents before children."""
        yield self
        for router in self._routers:
            yield from router._walk()

    def _full_prefix(self) -> str:
        return ""

    def _store_task(self, local_name: str, task: Task[..., Any]) -> None:
        self._local[local_name] = task
        self._tasks[task.name] = task

    def include_router(self, router: JobRouter) -> None:
        """Include ``router`` (and the routers inside it) here, before the app starts.

        Its tasks take their full names (``"<prefix>:<name>"``) now. A name already taken
        raises :class:`~jobify_trio.exceptions.RouteAlreadyRegisteredError` and nothing is
        included; a router can be included only once, and not inside itself.
        """
        if not isinstance(router, JobRouter):
            raise TypeError(f"include_router() needs a JobRouter, got {router!r}")
        self._check_open("include a router")
        if router is self:
            raise RuntimeError(f"{router!r} cannot include itself")
        if router._parent is not None:
            raise RuntimeError(f"{router!r} is already included in {router._parent!r}")
        node: Layer | None = self
        while node is not None:
            if node is router:
                raise RuntimeError(f"including {router!r} in {self!r} would make a cycle")
            node = node._parent
        names = router._planned_names(self._full_prefix())
        self._check_new_names(names)
        router._parent = self
        self._routers.append(router)
        router._apply_names(names)
        app = self._root_app()
        if app is not None:
            for task, name in names:
                app._tasks[name] = task

    def include_routers(self, *routers: JobRouter) -> None:
        """Include several routers, in order; at least one."""
        if not routers:
            raise ValueError("include_routers() needs at least one router")
        for router in routers:
            self.include_router(router)

    def _check_new_names(self, names: list[tuple[Task[..., Any], str]]) -> None:
        app = self._root_app()
        taken: set[str] = set() if app is None else set(app._tasks)
        for _, name in names:
            if name in taken:
                raise RouteAlreadyRegisteredError(name)
            taken.add(name)


class JobRouter(Layer):
    """A group of tasks: ``@router.task`` like ``@app.task``; include it with
    ``app.include_router(router)`` (or into another router) before the app starts.

    A router's tasks are named ``"<prefix>:<name>"``; nested routers join their prefixes
    with dots, outermost first (``"billing.eu:charge"``). Its middleware, handlers,
    lifespan and state apply to its own tasks and those of the routers inside it. See
    :doc:`/middleware`.

    :param prefix: Prepended to the names of the router's tasks (no ``":"``). Default: no
        prefix, the names stay as registered.
    :param middleware: Inner middleware, around every attempt of this router's tasks,
        inside the app's and the outer routers' middleware.
    :param outer_middleware: Outer middleware, around every scheduling call of this
        router's tasks.
    :param exception_handlers: ``{exception class: handler}`` at this router's level,
        consulted after the task's own handlers and before the outer routers' and the
        app's.
    :type exception_handlers: ~collections.abc.Mapping[type[BaseException],
        ~collections.abc.Callable[..., ~typing.Any]] | None
    :param lifespan: ``lifespan(app)`` (it receives the app) returning an async context
        manager, entered when the app starts (after the app's lifespan and those of the
        routers included before it) and exited when it stops; a mapping it yields is
        merged into the app's state and this router's.
    :param state: Initial :attr:`state` of this router; merged into the app's state when
        the app starts.
    :type state: ~collections.abc.Mapping[str, ~typing.Any] | None
    """

    def __init__(
        self,
        prefix: str | None = None,
        *,
        middleware: Sequence[BaseMiddleware] | None = None,
        outer_middleware: Sequence[BaseOuterMiddleware] | None = None,
        exception_handlers: Mapping[type[BaseException], ExceptionHandler] | None = None,
        lifespan: Lifespan | None = None,
        state: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if prefix is not None and (not isinstance(prefix, str) or ":" in prefix):
            raise ValueError(f"router prefix must be a str without ':', got {prefix!r}")
        #: This router's own prefix (``""`` for none).
        self.prefix = prefix or ""
        owner = f"router {self.prefix!r}" if self.prefix else "router"
        self._init_layer(
            owner=owner, middleware=middleware, outer_middleware=outer_middleware, lifespan=lifespan
        )
        #: The handlers at this router's level (:meth:`add_exception_handler` adds one).
        self.exception_handlers = validate_exception_handlers(exception_handlers, owner=owner)
        #: This router's state, readable as attributes or as a mapping.
        self.state = State(state)

    @property
    def parent(self) -> Layer | None:
        """The app or router this router is included in."""
        return self._parent

    def _registration_open(self) -> bool:
        app = self._root_app()
        return True if app is None else bool(app._registration_open())

    def _full_prefix(self) -> str:
        outer = "" if self._parent is None else self._parent._full_prefix()
        return ".".join(p for p in (outer, self.prefix) if p)

    def _qualify_name(self, name: str) -> str:
        prefix = self._full_prefix()
        return f"{prefix}:{name}" if prefix else name

    def _check_name_free(self, name: str) -> None:
        super()._check_name_free(name)
        app = self._root_app()
        if app is not None and name in app._tasks:
            raise RouteAlreadyRegisteredError(name)

    def _store_task(self, local_name: str, task: Task[..., Any]) -> None:
        super()._store_task(local_name, task)
        app = self._root_app()
        if app is not None:
            app._tasks[task.name] = task

    def _planned_names(self, outer_prefix: str) -> list[tuple[Task[..., Any], str]]:
        """(task, full name) for every task of this subtree if included under ``outer_prefix``."""
        out: list[tuple[Task[..., Any], str]] = []
        self._collect_names(outer_prefix, out)
        return out

    def _collect_names(self, outer_prefix: str, out: list[tuple[Task[..., Any], str]]) -> None:
        prefix = ".".join(p for p in (outer_prefix, self.prefix) if p)
        for local, task in self._local.items():
            out.append((task, f"{prefix}:{local}" if prefix else local))
        for router in self._routers:
            router._collect_names(prefix, out)

    def _apply_names(self, names: list[tuple[Task[..., Any], str]]) -> None:
        renamed = dict(names)
        for layer in self._walk():
            for task in layer._local.values():
                task._rename(renamed[task])
            layer._tasks = {task.name: task for task in layer._local.values()}

    def _running_runtime(self, task: Task[..., Any]) -> Runtime:
        app = self._root_app()
        if app is None:
            raise RuntimeError(
                f"task {task.name!r} belongs to a router that is not included in an app; "
                "call app.include_router(router) before the app starts"
            )
        runtime: Runtime = app._running_runtime(task)
        return runtime

    def __repr__(self) -> str:
        return f"<JobRouter prefix={self.prefix!r} tasks={len(self._tasks)}>"
