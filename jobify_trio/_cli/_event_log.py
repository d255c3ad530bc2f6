"""The worker's log: one line per job event, readable text or a JSON object.

Every job line has ``event`` (the kind, or for an ended run its outcome), ``task``,
``job_id``, ``attempt`` and ``status``; each kind adds its own fields (see
``docs/worker.rst``). Times are ISO 8601 strings, durations seconds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from .._runtime._decision_events import (
    DstEvent,
    LeaseTakenOverEvent,
    SlotClaimedElsewhereEvent,
    SlotsSkippedEvent,
)
from .._runtime._events import JobEvent, JobEventKind, RetryingEvent, StartedEvent

if TYPE_CHECKING:
    from .._api._app import Jobify

__all__ = ["LATE_SHOWN", "EventLog"]

LATE_SHOWN = 0.001
"""A start later than this many seconds says so in a text line (JSON always has it)."""

_ENDED, _STARTED = JobEventKind.ENDED, JobEventKind.STARTED
_ATTEMPT_ENDS = (JobEventKind.RETRYING, JobEventKind.ENDED)

# what one event adds to its line: JSON fields, and the readable parts of a text line
_Described = tuple[dict[str, Any], list[str]]


class EventLog:
    """A job listener writing one line per event: readable text, or JSON lines."""

    def __init__(self, app: Jobify, *, json_lines: bool, stream: TextIO) -> None:
        self._app = app
        self._json = json_lines
        self._stream = stream
        self._started: dict[str, float] = {}
        self._clock: Callable[[], float] = time.perf_counter

    def __call__(self, event: JobEvent) -> None:
        job_id = event.job.id
        duration: float | None = None
        if event.kind is _STARTED:
            self._started[job_id] = self._clock()
        elif event.kind in _ATTEMPT_ENDS:
            began = self._started.pop(job_id, None)
            duration = None if began is None else self._clock() - began
        describe = _DESCRIBE.get(type(event), _describe_attempt)
        fields, parts = describe(event, duration)
        kind = event.kind
        record: dict[str, Any] = {
            "event": str(kind if kind is not _ENDED else event.status),
            "task": event.task_name,
            "job_id": job_id,
            "attempt": event.attempt,
            "status": str(event.status),
            **fields,
        }
        text = f"{record['event']:<10} {event.task_name} [{job_id}] " + "; ".join(parts)
        self._write(record, text.rstrip())

    def worker(self, what: str, **fields: Any) -> None:
        """A line about the worker itself (started, stopping, stopped)."""
        details = " ".join(f"{k}={_value(v)}" for k, v in fields.items())
        self._write({"event": f"worker {what}", **fields}, f"worker {what} {details}".rstrip())

    def _write(self, record: dict[str, Any], text: str) -> None:
        now = self._app.wall_clock.now().astimezone(self._app.tz)
        if self._json:
            line = json.dumps({"time": now.isoformat(), **record}, default=str)
        else:
            line = f"{now.isoformat(timespec='milliseconds')} {text}"
        print(line, file=self._stream, flush=True)


def _value(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value)) or "-"
    return str(value)


def _seconds(seconds: float) -> float:
    return round(seconds, 6)


def _describe_attempt(event: JobEvent, duration: float | None) -> _Described:
    """An attempt that ended (and any kind without a richer description)."""
    fields: dict[str, Any] = {}
    parts = [f"attempt {event.attempt}"]
    if duration is not None:
        fields["duration"] = _seconds(duration)
        parts.append(f"in {duration:.3f}s")
    if event.exception is not None:
        fields["error"] = f"{type(event.exception).__name__}: {event.exception}"
        parts.append(f"error: {fields['error']}")
    if event.next_run is not None:
        fields["next_run"] = event.next_run.isoformat()
        parts.append(f"next run {fields['next_run']}")
    return fields, parts


def _describe_started(event: JobEvent, duration: float | None) -> _Described:
    assert isinstance(event, StartedEvent)
    late = event.lateness.total_seconds()
    due = event.scheduled_at.isoformat()
    parts = [f"attempt {event.attempt}"]
    if late > LATE_SHOWN:
        parts.append(f"{late:.3f}s late (due {due})")
    return {"scheduled_at": due, "lateness": _seconds(late)}, parts


def _describe_retrying(event: JobEvent, duration: float | None) -> _Described:
    assert isinstance(event, RetryingEvent)
    fields, parts = _describe_attempt(event, duration)
    parts.pop()  # "next run": said as the retry's time below
    delay = event.delay.total_seconds()
    fields.update(next_attempt=event.next_attempt, delay=_seconds(delay))
    parts.append(f"retry at {fields['next_run']} (attempt {event.next_attempt}, after {delay:g}s)")
    return fields, parts


def _describe_skipped(event: JobEvent, duration: float | None) -> _Described:
    assert isinstance(event, SlotsSkippedEvent)
    fields: dict[str, Any] = {
        "policy": str(event.policy),
        "count": event.count,
        "first": event.first.isoformat(),
        "last": event.last.isoformat(),
    }
    count = f"{event.count}+" if event.truncated else str(event.count)
    slots = "slot" if event.count == 1 else "slots"
    span = fields["first"] if event.count == 1 else f"from {fields['first']} to {fields['last']}"
    if event.truncated:
        fields["truncated"] = True
    if event.coalesced_into is None:
        text = f"skipped {count} {slots} {span}"
    else:
        fields["coalesced_into"] = event.coalesced_into.isoformat()
        text = f"coalesced {count} {slots} {span} into the run of {fields['coalesced_into']}"
    parts = [f"{text} (misfire policy {event.policy})"]
    if event.next_run is not None:
        fields["next_run"] = event.next_run.isoformat()
        parts.append(f"next run {fields['next_run']}")
    return fields, parts


def _describe_dst(event: JobEvent, duration: float | None) -> _Described:
    assert isinstance(event, DstEvent)
    fields: dict[str, Any] = {
        "slot": event.slot.isoformat(),
        "wall_time": event.wall_time.isoformat(),
    }
    wall, day = f"{event.wall_time:%H:%M:%S}", f"{event.wall_time:%Y-%m-%d}"
    if event.skipped is None:
        fields["shift"] = _seconds(event.shift.total_seconds())
        return fields, [f"{wall} does not exist on {day} (DST gap): runs at {fields['slot']}"]
    fields["skipped"] = event.skipped.isoformat()
    text = f"{wall} happens twice on {day} (DST overlap): runs once at {fields['slot']}"
    return fields, [f"{text}, not at {fields['skipped']}"]


def _describe_taken_over(event: JobEvent, duration: float | None) -> _Described:
    assert isinstance(event, LeaseTakenOverEvent)
    fields: dict[str, Any] = {"instance": event.instance, "origin": event.origin}
    text = f"taken over by instance {event.instance} (its owner died or stopped)"
    parts = [text if event.origin is None else f"{text}, scheduled by {event.origin}"]
    if event.next_run is not None:
        fields["next_run"] = event.next_run.isoformat()
        parts.append(f"next run {fields['next_run']}")
    return fields, parts


def _describe_claimed(event: JobEvent, duration: float | None) -> _Described:
    assert isinstance(event, SlotClaimedElsewhereEvent)
    fields = {"slot": event.slot.isoformat(), "instance": event.instance}
    text = f"slot {fields['slot']} was claimed by another instance: the job runs there now"
    return fields, [f"{text}, not on {event.instance}"]


_DESCRIBE: dict[type[JobEvent], Callable[[JobEvent, float | None], _Described]] = {
    StartedEvent: _describe_started,
    RetryingEvent: _describe_retrying,
    SlotsSkippedEvent: _describe_skipped,
    DstEvent: _describe_dst,
    LeaseTakenOverEvent: _describe_taken_over,
    SlotClaimedElsewhereEvent: _describe_claimed,
}
