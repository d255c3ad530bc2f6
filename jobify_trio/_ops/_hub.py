"""The one job listener the operations features share per app.

History and metrics are *sinks* of one :class:`OpsListener`: the runtime dispatches each
event once, and the wall clock is read once per event for all of them. With no sink
attached there is no listener at all, so the runtime builds no event.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, TypeVar

from .._runtime._events import JobEvent, JobEventKind
from ..exceptions import ApplicationStateError

if TYPE_CHECKING:
    from .._api._app import Jobify

__all__ = ["OpsListener", "Sink", "attach", "hub_of", "sinks_of"]

S = TypeVar("S")


class Sink(Protocol):
    """Receives the attempt events (STARTED, RETRYING, ENDED) with the time each was seen
    and when its attempt started; events of other kinds are not passed on.

    ``started`` is the start of the attempt the event is about (``now`` for STARTED;
    None if the attempt never started, e.g. a job cancelled while scheduled).
    A sink whose ``wants_starts`` is False is not called for STARTED events.
    """

    wants_starts: bool

    def record(self, event: JobEvent, now: datetime, started: datetime | None) -> None: ...


class OpsListener:
    """A job listener fanning each event out to the attached sinks.

    It reads the wall clock once per event and remembers when each running attempt
    started, so the sinks share both.
    """

    __slots__ = ("_end_sinks", "_now", "_start_sinks", "started")

    def __init__(self, app: Jobify) -> None:
        self._now = app.wall_clock.now
        self._start_sinks: tuple[Sink, ...] = ()
        self._end_sinks: tuple[Sink, ...] = ()
        self.started: dict[str, datetime] = {}
        """When the running attempt of each job (by id) started."""

    @property
    def sinks(self) -> tuple[Sink, ...]:
        return self._end_sinks

    def add(self, sink: Sink) -> None:
        self._end_sinks += (sink,)
        if sink.wants_starts:
            self._start_sinks += (sink,)

    def __call__(self, event: JobEvent) -> None:
        kind = event.kind
        if kind is _STARTED:
            now = self._now()
            self.started[event.job._id] = now
            for sink in self._start_sinks:
                sink.record(event, now, now)
        elif kind is _ENDED or kind is _RETRYING:
            now = self._now()
            started = self.started.pop(event.job._id, None)
            for sink in self._end_sinks:
                sink.record(event, now, started)
        # other kinds (decision events, pauses...) are not attempts: the sinks skip them


_STARTED, _RETRYING, _ENDED = JobEventKind.STARTED, JobEventKind.RETRYING, JobEventKind.ENDED


def hub_of(app: Jobify) -> OpsListener | None:
    """The operations listener of ``app``, if any."""
    for listener in app._listeners:
        if isinstance(listener, OpsListener):
            return listener
    return None


def attach(app: Jobify, sink: Sink, what: str) -> OpsListener:
    """Feed ``sink`` with ``app``'s job events (before the app starts)."""
    if app.is_running:
        raise ApplicationStateError(f"create the {what} before the app starts")
    listener = hub_of(app)
    if listener is None:
        listener = OpsListener(app)
        app.add_listener(listener)
    listener.add(sink)
    return listener


def sinks_of(app: Jobify, kind: type[S]) -> Iterator[S]:
    """The sinks of type ``kind`` attached to ``app``."""
    listener = hub_of(app)
    for sink in () if listener is None else listener.sinks:
        if isinstance(sink, kind):
            yield sink
