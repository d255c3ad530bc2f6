"""Binding call arguments to a task's signature, quickly.

``inspect.Signature.bind`` costs several microseconds, which is a large share of a
job's cost. :class:`ArgumentBinder` checks the common signatures (positional-or-keyword
parameters, with or without defaults) with a few set and length tests, and only falls
back to ``Signature.bind`` for the rest and to produce the error message.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["ArgumentBinder"]

_SIMPLE_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


class ArgumentBinder:
    """Checks that ``(args, kwargs)`` bind to a signature; raises ``TypeError`` naming the task."""

    __slots__ = ("_fast", "_names", "_positional", "_required", "_signature", "_task_name")

    def __init__(self, signature: inspect.Signature, *, task_name: str) -> None:
        self._signature = signature
        self._task_name = task_name
        params = list(signature.parameters.values())
        self._fast = all(p.kind in _SIMPLE_KINDS for p in params)
        self._positional = sum(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params)
        self._names = [p.name for p in params]
        self._required = frozenset(p.name for p in params if p.default is inspect.Parameter.empty)

    @classmethod
    def for_callable(
        cls, func: Callable[..., Any], *, task_name: str, hidden: Iterable[str] = ()
    ) -> ArgumentBinder:
        """A binder for ``func`` without the parameters in ``hidden`` (injected ones)."""
        signature = inspect.signature(func)
        hidden_names = set(hidden)
        if hidden_names:
            kept = [p for p in signature.parameters.values() if p.name not in hidden_names]
            signature = signature.replace(parameters=kept)
        return cls(signature, task_name=task_name)

    def check(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Raise ``TypeError`` naming the task if the arguments do not bind."""
        if self._fast and len(args) <= self._positional:
            names = self._names
            if not kwargs:
                if len(args) == len(names) or self._required.issubset(names[: len(args)]):
                    return
            elif kwargs.keys().isdisjoint(names[: len(args)]) and kwargs.keys() <= set(names):
                given = set(names[: len(args)]) | kwargs.keys()
                if self._required <= given:
                    return
        self._slow_check(args, kwargs)

    def _slow_check(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        try:
            self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(
                f"task {self._task_name!r}: arguments {_describe(args, kwargs)} do not match "
                f"its signature {self._signature}: {exc}"
            ) from None

    @property
    def signature(self) -> inspect.Signature:
        """The signature arguments are bound to (injected parameters removed)."""
        return self._signature


def _describe(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    text = "(" + ", ".join(parts) + ")"
    return text if len(text) <= 200 else text[:197] + "...)"
