"""Lifespans and plugins: what starts before the actors and stops after them.

A lifespan is an async context manager factory called with the app; a mapping it
yields is merged into ``app.state``. Plugins get ``await startup(app)`` and
``await shutdown()``, both in registration order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

if TYPE_CHECKING:
    from .._core._state import State
    from ._app import Jobify

__all__ = [
    "Lifespan",
    "Plugin",
    "check_lifespan",
    "check_plugins",
    "enter_lifespans",
    "start_plugins",
]

Lifespan: TypeAlias = Callable[
    ["Jobify"], contextlib.AbstractAsyncContextManager[Mapping[str, Any] | None]
]
"""``lifespan(app)`` returns an async context manager; what it yields may be a mapping."""


@runtime_checkable
class Plugin(Protocol):
    """Lifecycle hooks: ``startup(app)`` before lifespans, ``shutdown()`` after them."""

    async def startup(self, app: Jobify) -> None:
        """Called when the app starts, before the lifespans."""

    async def shutdown(self) -> None:
        """Called when the app has stopped, after the lifespans exited."""


def check_lifespan(value: object, *, owner: str) -> Lifespan | None:
    """``value`` if it is None or callable, else a ``TypeError`` naming ``owner``."""
    if value is not None and not callable(value):
        raise TypeError(
            f"{owner}: lifespan must be a callable returning an async context manager, "
            f"got {value!r}"
        )
    return value


def check_plugins(values: Iterable[object]) -> list[Plugin]:
    """The plugins as a list; each must have async ``startup`` and ``shutdown``."""
    plugins: list[Plugin] = []
    for plugin in values:
        if not isinstance(plugin, Plugin):
            raise TypeError(f"plugin {plugin!r} must have startup(app) and shutdown() methods")
        plugins.append(plugin)
    return plugins


async def start_plugins(
    stack: contextlib.AsyncExitStack, app: Jobify, plugins: Sequence[Plugin]
) -> None:
    """Start ``plugins`` in order; the stack shuts the started ones down, in the same order."""
    started: list[Plugin] = []
    stack.push_async_callback(_shutdown_plugins, started)
    for plugin in plugins:
        await plugin.startup(app)
        started.append(plugin)


async def _shutdown_plugins(started: list[Plugin]) -> None:
    errors: list[BaseException] = []
    for plugin in started:
        try:
            await plugin.shutdown()
        except Exception as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


async def enter_lifespans(
    stack: contextlib.AsyncExitStack,
    app: Jobify,
    lifespans: Iterable[tuple[Lifespan, State | None]],
) -> None:
    """Enter each lifespan in order (the stack exits them in reverse) and merge state.

    A yielded mapping goes into ``app.state`` and into the owner's ``state`` if given.
    """
    for factory, own_state in lifespans:
        manager = factory(app)
        if not isinstance(manager, contextlib.AbstractAsyncContextManager):
            raise TypeError(
                f"lifespan {factory!r} must return an async context manager, got {manager!r}"
            )
        value = await stack.enter_async_context(manager)
        if value is None:
            continue
        if not isinstance(value, Mapping):
            raise TypeError(f"lifespan {factory!r} yielded {value!r}; expected a mapping or None")
        app.state.update(value)
        if own_state is not None:
            own_state.update(value)
