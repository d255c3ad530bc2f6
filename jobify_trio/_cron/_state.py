"""The stored form of a cron job: its schedule and progress, as JSON text (pure, no trio).

Storage keeps a cron job's call arguments in the row's ``arguments`` and everything else
in the row's ``cron`` column, written by :func:`cron_to_json` after each run and read back
by :func:`cron_from_json` at restore. The schedule's own ``args``/``kwargs`` are not in
the JSON (they are the row's arguments); compare schedules with :func:`same_schedule`.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import attrs

from ._values import AnyMisfirePolicy, Cron, GracePolicy, MisfirePolicy

__all__ = ["CronState", "cron_from_json", "cron_to_json", "same_schedule"]

_VERSION = 1


@attrs.frozen(kw_only=True)
class CronState:
    """The progress of one cron job: what storage persists after each run.

    ``next_run_at`` is the next slot to run (None once the job has ended); ``offset``
    the previous scheduled slot (or the creation time): the next slot is computed from
    it; ``run_count`` counts ended runs; ``failures`` counts consecutive non-successful
    runs (reset by a success); ``paused`` is True while the job is paused (stored so a
    paused cron stays paused across a restart).
    """

    next_run_at: datetime | None
    offset: datetime
    run_count: int = 0
    failures: int = 0
    paused: bool = False


def same_schedule(a: Cron, b: Cron) -> bool:
    """Equal crons, ignoring ``args``/``kwargs`` (compared as the job's arguments instead)."""
    return attrs.evolve(a, args=(), kwargs={}) == attrs.evolve(b, args=(), kwargs={})


def _policy_to_json(policy: AnyMisfirePolicy) -> Any:
    if isinstance(policy, GracePolicy):
        return {"grace_seconds": policy.value.total_seconds()}
    return policy.value


def _policy_from_json(value: Any) -> AnyMisfirePolicy:
    if isinstance(value, dict):
        return GracePolicy(timedelta(seconds=float(value["grace_seconds"])))
    return MisfirePolicy(value)


def _when(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_when(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def cron_to_json(cron: Cron, state: CronState) -> str:
    """The ``cron`` column of a stored cron job."""
    return json.dumps(
        {
            "v": _VERSION,
            "expression": cron.expression,
            "max_runs": cron.max_runs,
            "max_failures": cron.max_failures,
            "misfire_policy": _policy_to_json(cron.misfire_policy),
            "start_date": _when(cron.start_date),
            "tz": None if cron.tz is None else cron.tz.key,
            "offset": state.offset.isoformat(),
            "next_run_at": _when(state.next_run_at),
            "run_count": state.run_count,
            "failures": state.failures,
            **({"paused": True} if state.paused else {}),
        },
        separators=(",", ":"),
    )


def cron_from_json(text: str) -> tuple[Cron, CronState]:
    """Read :func:`cron_to_json` output back; ``ValueError`` naming the problem if bad."""
    try:
        data = json.loads(text)
        cron = Cron(
            data["expression"],
            max_runs=data["max_runs"],
            max_failures=data["max_failures"],
            misfire_policy=_policy_from_json(data["misfire_policy"]),
            start_date=_parse_when(data["start_date"]),
            tz=data.get("tz"),  # absent in rows written before per-cron zones
        )
        offset = _parse_when(data["offset"])
        if offset is None:
            raise ValueError("offset is missing")
        state = CronState(
            next_run_at=_parse_when(data["next_run_at"]),
            offset=offset,
            run_count=int(data["run_count"]),
            failures=int(data["failures"]),
            paused=data.get("paused", False) is True,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"unreadable cron state {text[:200]!r}: {exc}") from exc
    return cron, state
