"""Requests to the owner of a row: the REPLACE payload, and applying received commands."""

from __future__ import annotations

import base64
import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING

from ..storage import Command, CommandKind, Trigger

if TYPE_CHECKING:
    from ._session import Sharing

__all__ = ["apply_command", "decode_replace", "encode_replace"]

log = logging.getLogger("jobify_trio.sharing")


def encode_replace(*, trigger: Trigger, exec_at: datetime, arguments: bytes, force: bool) -> bytes:
    """The payload of a REPLACE command: the new schedule and encoded arguments."""
    data = {
        "trigger": trigger.value,
        "at": exec_at.isoformat(),
        "force": force,
        "arguments": base64.b64encode(arguments).decode("ascii"),
    }
    return json.dumps(data).encode()


def decode_replace(payload: bytes) -> tuple[Trigger, datetime, bytes, bool]:
    """``(trigger, exec_at, arguments, force)`` of a REPLACE payload."""
    data = json.loads(payload)
    return (
        Trigger(data["trigger"]),
        datetime.fromisoformat(data["at"]),
        base64.b64decode(data["arguments"]),
        bool(data["force"]),
    )


async def apply_command(sharing: Sharing, command: Command) -> None:
    """Apply a command as if it were a local call (errors are logged, not raised)."""
    try:
        if command.kind is CommandKind.CANCEL:
            await _cancel(sharing, command)
        elif command.kind in (CommandKind.PAUSE, CommandKind.RESUME):
            await _pause(sharing, command)
        else:
            await _replace(sharing, command)
    except Exception as exc:
        log.warning("command %s on job %r failed: %s", command.kind, command.job_id, exc)


async def _cancel(sharing: Sharing, command: Command) -> None:
    runtime = sharing.runtime
    job = runtime.registry.get(command.job_id)
    if job is not None and not sharing.remote.follows(job):
        await runtime.cancel(job)
    elif job is None and sharing.active:
        # not armed here (claimed a moment ago, or never armed): a row still leased to
        # us is deleted here, as the sender (``jobify-trio jobs delete``) asked
        row = await sharing.storage.get_job(command.job_id)
        if row is not None and row.lease_owner == sharing.me:
            await sharing.storage.try_delete(command.job_id, owner=sharing.me, now=runtime.now())


async def _pause(sharing: Sharing, command: Command) -> None:
    job = sharing.runtime.registry.get(command.job_id)
    if job is not None and not sharing.remote.follows(job):
        await job._set_paused(command.kind is CommandKind.PAUSE)


async def _replace(sharing: Sharing, command: Command) -> None:
    runtime = sharing.runtime
    job = runtime.registry.get(command.job_id)
    if job is None or sharing.remote.follows(job):
        return  # it ended meanwhile: nothing to replace
    trigger, exec_at, arguments, force = decode_replace(command.payload)
    task = job._task
    args, kwargs = sharing.durability.codec.decode(arguments, task.name)
    if trigger is Trigger.PUSH:
        await runtime.push(task, args, kwargs, job_id=job.id, replace=True, force=force)
    else:
        await runtime.at(task, args, kwargs, exec_at, job_id=job.id, replace=True, force=force)
