"""The public facade: :class:`Jobify`."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, tzinfo
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

import trio
import trio_parallel

from .._core._clock import SystemWallClock, WallClock, check_wall_clock
from .._core._job import Job
from .._core._state import State
from .._policy._handler_resolution import ExceptionHandler, validate_exception_handlers
from .._runtime._cron_runtime import start_declared_crons
from .._runtime._events import JobListener
from .._runtime._runtime import Runtime
from .._sharing._options import SharingOptions
from .._storage._config import check_storage
from ..exceptions import ApplicationStateError
from ._lifespan import Lifespan, Plugin, check_plugins, enter_lifespans, start_plugins
from ._pipeline import app_lifespans, prepare_pipelines
from ._router import Layer
from ._task import Task

if TYPE_CHECKING:
    from ..middleware import BaseMiddleware, BaseOuterMiddleware
    from ..serializers import Serializer
    from ..storage import Storage

__all__ = ["Jobify"]

DEFAULT_MAX_CONCURRENCY = 10_000


def _check_tz(tz: object) -> tzinfo:
    if tz is None:
        return UTC
    if isinstance(tz, str):
        return ZoneInfo(tz)
    if not isinstance(tz, tzinfo):
        raise TypeError(f"tz must be a tzinfo, a zone name or None, got {tz!r}")
    return tz


def _check_grace(value: object) -> float:
    """A shutdown grace: a number of seconds >= 0 (``math.inf`` waits as long as it takes)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"grace must be a number of seconds, got {value!r}")
    if value < 0 or value != value:  # (NaN is the only value unequal to itself)
        raise ValueError(f"grace must be >= 0 seconds, got {value!r}")
    try:
        return float(value)
    except OverflowError:  # an int too large for a float: as good as forever
        return math.inf


def _check_max_concurrency(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"max_concurrency must be an int >= 1, got {value!r}")
    return value


class Jobify(Layer):
    """A job scheduler app for trio. Register tasks, then run it with ``async with app:``.

    Tasks are registered with :meth:`task`, routers included with :meth:`include_router`,
    middleware and handlers added, all before the app starts. Inside ``async with app:``
    tasks schedule jobs (:meth:`Task.push <jobify_trio.Task.push>`,
    :meth:`Task.schedule <jobify_trio.Task.schedule>`); leaving the block stops the app and
    waits for every running attempt to end. All arguments are keyword-only and checked
    here.

    :param tz: The time zone of cron schedules and of naive datetimes: a
        :class:`~datetime.tzinfo` or an IANA zone name (``"Europe/Paris"``). Default: UTC.
    :param state: Initial app state (:attr:`state`); lifespans may add to it.
    :type state: ~collections.abc.Mapping[str, ~typing.Any] | None
    :param exception_handlers: ``{exception class: handler}`` at the app level, consulted
        after the task's and the routers' once a job's retries are exhausted; a handler is
        called as ``handler(exc, context)`` (sync or async). See :doc:`/retries`.
    :type exception_handlers: ~collections.abc.Mapping[type[BaseException],
        ~collections.abc.Callable[..., ~typing.Any]] | None
    :param wall_clock: Where "now" comes from for cron and ``at()`` (anything with an
        aware ``now()``). Default: the system clock; tests pass a
        :class:`~jobify_trio.testing.VirtualWallClock`.
    :param max_concurrency: How many attempts run at once (``>= 1``, default 10,000);
        past it, scheduling calls wait for a free slot (backpressure) instead of piling up
        tasks.
    :param storage: Where durable jobs are kept across restarts: a
        :class:`~jobify_trio.storage.Storage`; ``None`` (the default) means
        ``SQLiteStorage("jobify.db")`` in the working directory; ``False`` disables
        persistence. See :doc:`/durability`.
    :param serializer: Encodes durable jobs' arguments (a
        :class:`~jobify_trio.serializers.Serializer`); default
        :class:`~jobify_trio.serializers.ExtendedJSONSerializer`. See :doc:`/serialization`.
    :param lifespan: ``lifespan(app)`` returning an async context manager, entered when the
        app starts and exited when it stops; a mapping it yields is merged into
        :attr:`state`.
    :param middleware: Inner middleware, around every attempt of every task (see
        :mod:`jobify_trio.middleware` and :doc:`/middleware`).
    :param outer_middleware: Outer middleware, around every scheduling call.
    :param plugins: :class:`~jobify_trio.Plugin` objects started before the lifespans and
        shut down after them.
    :param sharing: How this instance shares a store that several instances of the app
        use at once (lease, heartbeat, polling, retention): a
        :class:`~jobify_trio.SharingOptions`; ``None`` means ``SharingOptions()``. See
        :doc:`/sharing`.
    """

    def __init__(
        self,
        *,
        tz: tzinfo | str | None = None,
        state: Mapping[str, Any] | None = None,
        exception_handlers: Mapping[type[BaseException], ExceptionHandler] | None = None,
        wall_clock: WallClock | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        storage: Storage | Literal[False] | None = None,
        serializer: Serializer | None = None,
        lifespan: Lifespan | None = None,
        middleware: Sequence[BaseMiddleware] | None = None,
        outer_middleware: Sequence[BaseOuterMiddleware] | None = None,
        plugins: Iterable[Plugin] = (),
        sharing: SharingOptions | None = None,
    ) -> None:
        super().__init__()
        self._init_layer(
            owner="app", middleware=middleware, outer_middleware=outer_middleware, lifespan=lifespan
        )
        #: The plugins, in start order (:meth:`add_plugin` appends).
        self.plugins: list[Plugin] = check_plugins(plugins)
        #: The app's time zone (a :class:`~datetime.tzinfo`).
        self.tz = _check_tz(tz)
        #: App-wide state, readable as attributes or as a mapping; lifespans add to it.
        self.state = State(state)
        #: The app-level exception handlers (:meth:`add_exception_handler` adds one).
        self.exception_handlers = validate_exception_handlers(exception_handlers, owner="app")
        #: The clock cron and ``at()`` read.
        self.wall_clock: WallClock = (
            SystemWallClock() if wall_clock is None else check_wall_clock(wall_clock)
        )
        #: How many attempts may run at once.
        self.max_concurrency = _check_max_concurrency(max_concurrency)
        self._runtime: Runtime | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._listeners: list[JobListener] = []
        #: The serializer of durable jobs' arguments.
        self._storage, self.serializer = check_storage(storage, serializer)
        if sharing is not None and not isinstance(sharing, SharingOptions):
            raise TypeError(f"sharing must be a SharingOptions or None, got {sharing!r}")
        self.sharing = sharing

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        """True between ``__aenter__`` and the end of ``__aexit__``."""
        return self._stack is not None

    _is_app = True

    def _registration_open(self) -> bool:
        return self._stack is None

    def add_plugin(self, plugin: Plugin, /) -> None:
        """Register a plugin (``startup(app)`` / ``shutdown()``) before the app starts."""
        self._check_open("add a plugin")
        self.plugins.extend(check_plugins([plugin]))

    def _running_runtime(self, task: Task[..., Any]) -> Runtime:
        runtime = self._runtime
        if runtime is None:
            raise ApplicationStateError(
                f"task {task.name!r}: the app is not running; "
                "schedule jobs inside `async with app:`"
            )
        return runtime

    async def __aenter__(self) -> Jobify:
        if self._stack is not None:
            raise ApplicationStateError("the app is already running")
        stack = contextlib.AsyncExitStack()
        self._stack = stack
        try:
            await self._start(stack)
        except BaseException:
            self._stack = None
            self._runtime = None
            await stack.aclose()
            raise
        return self

    async def _start(self, stack: contextlib.AsyncExitStack) -> None:
        prepare_pipelines(self)  # handler levels, middleware chains and INJECT, per task
        await start_plugins(stack, self, self.plugins)
        await enter_lifespans(stack, self, app_lifespans(self))
        processes = await stack.enter_async_context(
            trio_parallel.open_worker_context(grace_period=5.0)
        )
        if self._storage is not None:  # opened after lifespans, closed after the actors
            await self._storage.startup()
            stack.push_async_callback(_shielded, self._storage.shutdown)
        nursery = await stack.enter_async_context(trio.open_nursery())
        runtime = Runtime(self, nursery=nursery, processes=processes)
        stack.push_async_callback(runtime.after_stop)
        stack.push_async_callback(runtime.stop)
        self._runtime = runtime  # restored jobs may run (and look it up) while it starts
        await runtime.start()
        # self._tasks holds the included routers' tasks too, under their full names
        await start_declared_crons(runtime, self._tasks.values())  # armed before we return

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        stack = self._stack
        assert stack is not None
        try:
            await stack.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as group:
            unwrapped = _unwrap(group, exc)
            if unwrapped is exc:
                return False  # the body's exception propagates as itself, cause intact
            raise unwrapped from unwrapped.__cause__  # keeps its own cause, hides the group
        finally:
            self._stack = None
            self._runtime = None
        return False

    def add_listener(self, listener: JobListener) -> None:
        """Call ``listener(event)`` with a :class:`~jobify_trio.JobEvent` for every attempt
        that starts, every retry and every run that ends (registered before the app starts).

        Listeners run synchronously inside the runtime, so they must be quick; an exception
        they raise is logged and ignored. With no listener, events cost nothing.
        """
        if not callable(listener):
            raise TypeError(f"a listener must be callable, got {listener!r}")
        if not self._registration_open():
            raise ApplicationStateError("add listeners before the app starts")
        self._listeners.append(listener)

    async def shutdown(self, grace: float = 0.0) -> None:
        """Begin a graceful stop inside ``async with app:``, then leave the block.

        From this call on no job is accepted and no attempt starts (due jobs stay
        scheduled, durable ones stay stored); attempts already running get up to
        ``grace`` seconds to finish. It returns when they have all finished or the grace
        has passed; leaving the ``async with`` block then cancels whatever still runs.
        The app cannot schedule again until it is restarted. An invalid ``grace`` (negative,
        NaN, not a number) raises ``ValueError`` and changes nothing.
        """
        grace = _check_grace(grace)  # before anything changes: a refused call changes nothing
        runtime = self._runtime
        if runtime is None:
            raise ApplicationStateError("shutdown() needs a running app")
        await runtime.drain(grace)

    # -- introspection -------------------------------------------------------------------

    def find_job(self, job_id: str) -> Job[Any] | None:
        """The scheduled or running job with this id, or None."""
        runtime = self._runtime
        return None if runtime is None else runtime.registry.get(job_id)

    async def lookup_job(self, job_id: str) -> Job[Any] | None:
        """The job with this id, wherever it is: active here (as :meth:`find_job`), else
        stored by any instance sharing the store (a handle that follows it: ``await job``
        gives its outcome, ``cancel()`` cancels it where it runs), else None."""
        runtime = self._runtime
        if runtime is None:
            raise ApplicationStateError("lookup_job() needs a running app")
        job = runtime.registry.get(job_id)
        sharing = runtime.sharing
        if job is not None or sharing is None or not sharing.active:
            await trio.lowlevel.checkpoint()
            return job
        return await sharing.remote.lookup(job_id)

    def get_active_jobs(self) -> list[Job[Any]]:
        """Every scheduled or running job."""
        runtime = self._runtime
        return [] if runtime is None else list(runtime.registry)

    async def wait_all(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Return when no job is scheduled or running; ``TimeoutError`` if ``timeout`` passes."""
        runtime = self._runtime
        if runtime is None:
            raise ApplicationStateError("wait_all() needs a running app")
        if timeout is None:
            await runtime.registry.wait_idle()
            return
        with trio.move_on_after(timeout):
            await runtime.registry.wait_idle()
            return
        raise TimeoutError(f"jobs still active after {timeout:g} s: {len(runtime.registry)}")

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<Jobify tasks={len(self._tasks)} tz={self.tz} {state}>"


async def _shielded(close: Callable[[], Awaitable[None]]) -> None:
    with trio.CancelScope(shield=True):
        await close()


def _unwrap(
    group: BaseExceptionGroup[BaseException], body_exc: BaseException | None
) -> BaseException:
    """The exception to raise instead of a group: the body's own, or the only one inside."""
    leaves = _leaves(group)
    if body_exc is not None and any(leaf is body_exc for leaf in leaves):
        return body_exc
    non_cancel = [leaf for leaf in leaves if not isinstance(leaf, trio.Cancelled)]
    if len(non_cancel) == 1:
        return non_cancel[0]
    if not non_cancel:
        return leaves[0]
    return group


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            out.extend(_leaves(exc))
        else:
            out.append(exc)
    return out
