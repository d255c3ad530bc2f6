"""The job table's columns (the same in SQLite and PostgreSQL), and its text enums.

Both stores read and write rows in ``COLUMNS`` order and turn the stored trigger and state
text back into enums with ``TRIGGERS`` / ``STATES`` (a missing key: a corrupt row).
``RUN_COLUMNS`` are the run history table's columns (besides its ``run_id``).
"""

from __future__ import annotations

from typing import Final

from ..storage import StoredState, Trigger

__all__ = ["COLUMNS", "RUN_COLUMNS", "STATES", "TRIGGERS"]

COLUMNS: Final = (
    "job_id, task, trigger, next_run_at, arguments, attempt, state, cron, "
    "lease_owner, lease_expires_at, origin, paused"
)
RUN_COLUMNS: Final = "job_id, task, attempt, status, started_at, ended_at, error, retried, instance"
TRIGGERS: Final = {trigger.value: trigger for trigger in Trigger}
STATES: Final = {state.value: state for state in StoredState}
