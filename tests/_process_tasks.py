"""Tasks for the PROCESS run-mode tests; importable by worker processes."""

from __future__ import annotations

import os
import time
from pathlib import Path

from jobify_trio import Jobify, RunMode

app = Jobify(storage=False) if "storage" in Jobify.__init__.__code__.co_varnames else Jobify()


@app.task(run_mode=RunMode.PROCESS)
def whoami(x: int, *, y: int = 0) -> tuple[int, int]:
    return os.getpid(), x + y


@app.task(run_mode=RunMode.PROCESS, timeout=0.5)
def hang(pid_file: str) -> None:
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(60)


@app.task(run_mode=RunMode.PROCESS)
def crash() -> None:
    raise ValueError("raised in the worker")
