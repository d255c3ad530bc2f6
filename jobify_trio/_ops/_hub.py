"""The one job listener the operations features share per app.

History and metrics are *sinks* of one :class:`OpsListener`: the runtime dispatches each
event once, and the wall clock is read once per event for all of them. With no sink
attached there is no listener at all, so the runtime builds no event.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, TypeVar

from .._runtime._events import JobEvent
from ..exceptions import ApplicationStateError

if TYPE_CHECKING:
    from .._api._app import Jobify

__all__ = ["OpsListener", "Sink", "attach", "sinks_of"]

S = TypeVar("S")


class Sink(Protocol):
    """Receives every job event with the wall-clock time it was seen."""

    def record(self, event: JobEvent, now: datetime) -> None: ...


class OpsListener:
    """A job listener fanning each event out to the attached sinks."""

    __slots__ = ("_now", "sinks")

    def __init__(self, app: Jobify) -> None:
        self._now = app.wall_clock.now
        self.sinks: list[Sink] = []

    def __call__(self, event: JobEvent) -> None:
        now = self._now()
        for sink in self.sinks:
            sink.record(event, now)


def attach(app: Jobify, sink: Sink, what: str) -> None:
    """Feed ``sink`` with ``app``'s job events (before the app starts)."""
    if app.is_running:
        raise ApplicationStateError(f"create the {what} before the app starts")
    for listener in app._listeners:
        if isinstance(listener, OpsListener):
            listener.sinks.append(sink)
            return
    listener = OpsListener(app)
    app.add_listener(listener)
    listener.sinks.append(sink)


def sinks_of(app: Jobify, kind: type[S]) -> Iterator[S]:
    """The sinks of type ``kind`` attached to ``app``."""
    for listener in app._listeners:
        if isinstance(listener, OpsListener):
            for sink in listener.sinks:
                if isinstance(sink, kind):
                    yield sink
