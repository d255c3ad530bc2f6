"""Validation and resolution of exception handlers (pure, no trio here).

Resolution is level-first: the levels are given in precedence order (the task's map,
then each router from the task's own up to the root, then the app's); the first level
that has a handler for any class of ``type(exc).__mro__`` decides, and inside that level
the earliest class of the MRO wins. A more specific class on a later level never beats
a handler on an earlier level.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeAlias, TypeVar

import attrs

__all__ = [
    "ExceptionHandler",
    "HandlerTable",
    "is_async_handler",
    "resolve_handler",
    "validate_exception_handlers",
]

H = TypeVar("H")

ExceptionHandler: TypeAlias = Callable[..., Any]
"""``handler(exc, context)``, a plain function (run in a thread) or an async function."""

_CACHE_LIMIT = 1024
"""Entries kept per table before the cache is dropped (bounds memory if a program
keeps creating exception classes at run time)."""


def _accepts_exc_and_context(handler: Callable[..., Any]) -> bool:
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):  # no introspectable signature (some builtins)
        return True
    try:
        signature.bind(None, None)
    except TypeError:
        return False
    return True


def _check_entry(owner: str, key: object, handler: object) -> None:
    if not (isinstance(key, type) and issubclass(key, BaseException)):
        raise TypeError(
            f"{owner}: exception_handlers key {key!r} is not an exception class "
            "(a subclass of BaseException)"
        )
    if not callable(handler):
        raise TypeError(
            f"{owner}: exception_handlers[{key.__qualname__}] = {handler!r} is not callable"
        )
    if not _accepts_exc_and_context(handler):
        raise TypeError(
            f"{owner}: exception_handlers[{key.__qualname__}] = {handler!r} must accept "
            "two positional arguments (exc, context)"
        )


def validate_exception_handlers(
    mapping: object, *, owner: str
) -> dict[type[BaseException], ExceptionHandler]:
    """Check a user's ``exception_handlers`` option and return a private copy.

    ``mapping`` is ``None`` or a mapping of exception classes to handlers; anything
    else is rejected at run time, hence the ``object`` annotation.

    ``owner`` describes where the map came from, e.g. ``"task 'app:send'"`` or
    ``"router 'billing'"``; every error message starts with it.
    """
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping):
        raise TypeError(
            f"{owner}: exception_handlers must be a mapping of exception classes to "
            f"handlers, got {mapping!r}"
        )
    for key, handler in mapping.items():
        _check_entry(owner, key, handler)
    return dict(mapping)


def is_async_handler(handler: ExceptionHandler) -> bool:
    """True for an async function, a partial of one, or an object with an async ``__call__``."""
    if inspect.iscoroutinefunction(handler):
        return True
    return inspect.iscoroutinefunction(type(handler).__call__)


def _resolve_type(levels: Iterable[Mapping[Any, H]], exc_type: type[BaseException]) -> H | None:
    mro = exc_type.__mro__
    for level in levels:
        if not level:
            continue
        for cls in mro:
            if cls in level:
                return level[cls]
    return None


def resolve_handler(levels: Sequence[Mapping[Any, H]], exc: BaseException) -> H | None:
    """The handler for ``exc``: first level with a match, earliest MRO class inside it."""
    return _resolve_type(levels, type(exc))


@attrs.frozen(kw_only=True, eq=False)
class HandlerTable(Generic[H]):
    """A task's handler levels, frozen at build time, with a per-exception-type cache."""

    _levels: tuple[Mapping[type[BaseException], H], ...]
    _cache: dict[type[BaseException], H | None] = attrs.field(factory=dict, init=False, repr=False)

    @classmethod
    def build(cls, levels: Iterable[Mapping[Any, H]]) -> HandlerTable[H]:
        """Snapshot ``levels`` (precedence order); later edits to the maps are not seen."""
        return cls(levels=tuple(dict(level) for level in levels if level))

    @property
    def empty(self) -> bool:
        """No level has any handler."""
        return not self._levels

    def lookup(self, exc_type: type[BaseException]) -> H | None:
        """The handler for an exception of type ``exc_type``, or ``None``."""
        try:
            return self._cache[exc_type]
        except KeyError:
            pass
        found = _resolve_type(self._levels, exc_type)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[exc_type] = found
        return found

    def resolve(self, exc: BaseException) -> H | None:
        """The handler for ``exc``, or ``None``."""
        return self.lookup(type(exc))
