"""``INJECT``: parameters filled from the job's context instead of its arguments.

A parameter whose default is ``INJECT`` is filled, by its annotation, from the
:class:`~jobify_trio.JobContext` of the attempt. The plan (which parameter gets which
value) is made and checked when the task is decorated; injected parameters are removed
from argument binding and never persisted.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import attrs

from .._policy._run_mode import RunMode

if TYPE_CHECKING:
    from .._core._context import JobContext

__all__ = ["INJECT", "InjectPlan", "injectable_types"]


class _InjectMarker:
    __slots__ = ()

    def __repr__(self) -> str:
        return "INJECT"

    def __reduce__(self) -> str:
        return "INJECT"


INJECT: Final[Any] = _InjectMarker()
"""Default value marking a parameter to be injected from the job's context."""

Getter = Callable[["JobContext"], Any]


def _getters() -> dict[type, Getter]:
    from .._core._context import JobContext
    from .._core._job import Job
    from .._core._state import RequestState, State
    from ._app import Jobify
    from ._task import Task, TaskOptions

    return {
        JobContext: lambda c: c,
        Jobify: lambda c: c.app,
        Job: lambda c: c.job,
        Task: lambda c: c.task,
        State: lambda c: c.state,
        RequestState: lambda c: c.request_state,
        TaskOptions: lambda c: c.task.options,
    }


def injectable_types() -> tuple[str, ...]:
    """Names of the annotations ``INJECT`` understands."""
    return tuple(t.__name__ for t in _getters())


@attrs.frozen(kw_only=True)
class InjectPlan:
    """Which parameters are injected, and how to read each from a context."""

    names: tuple[str, ...]
    getters: tuple[Getter, ...]

    @classmethod
    def for_callable(
        cls, func: Callable[..., Any], *, task_name: str, run_mode: RunMode
    ) -> InjectPlan | None:
        """The plan for ``func``, None if it injects nothing; ``TypeError`` if it is wrong."""
        try:
            params = inspect.signature(func).parameters.values()
        except (TypeError, ValueError):
            return None
        wanted = [p for p in params if p.default is INJECT]
        if not wanted:
            return None
        if run_mode is RunMode.PROCESS:
            raise TypeError(
                f"task {task_name!r}: INJECT parameters cannot be sent to a worker process "
                f"(run_mode=PROCESS); remove INJECT from {', '.join(p.name for p in wanted)}"
            )
        hints = _type_hints(func)
        table = _getters()
        getters = [_getter(task_name, p, hints.get(p.name, p.annotation), table) for p in wanted]
        return cls(names=tuple(p.name for p in wanted), getters=tuple(getters))

    def values(self, context: JobContext) -> dict[str, Any]:
        """The injected keyword arguments for one attempt."""
        return {name: get(context) for name, get in zip(self.names, self.getters, strict=True)}


def _type_hints(func: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func)
    except Exception:  # unresolvable names: fall back to the raw (maybe string) annotations
        return {}


def _getter(
    task_name: str, param: inspect.Parameter, ann: Any, table: dict[type, Getter]
) -> Getter:
    where = f"task {task_name!r}: parameter {param.name!r} defaults to INJECT"
    if param.kind is inspect.Parameter.POSITIONAL_ONLY:
        raise TypeError(f"{where} but is positional-only; injected parameters are passed by name")
    if ann is inspect.Parameter.empty:
        raise TypeError(f"{where} but has no annotation saying what to inject")
    found = _match(ann, table)
    if found is None:
        raise TypeError(
            f"{where} but its annotation {ann!r} cannot be injected; "
            f"injectable: {', '.join(injectable_types())}"
        )
    return found


def _match(ann: Any, table: dict[type, Getter]) -> Getter | None:
    """The getter for ``ann``: its exact type, or any subclass of :class:`Jobify`."""
    from ._app import Jobify

    if isinstance(ann, str):  # an annotation that could not be resolved: match by name
        base = ann.split("[", 1)[0].strip().rsplit(".", 1)[-1]
        return next((g for t, g in table.items() if t.__name__ == base), None)
    origin = typing.get_origin(ann) or ann
    if not isinstance(origin, type):
        return None
    for cls, getter in table.items():
        if origin is cls or (cls is Jobify and issubclass(origin, Jobify)):
            return getter
    return None
