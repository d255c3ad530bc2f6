"""PROCESS-mode tasks raising a BaseException; importable by worker processes."""

from __future__ import annotations

from jobify_trio import Jobify, RunMode

app = Jobify(storage=False)


class ProcessBaseError(BaseException):
    """Neither an Exception nor one of the exceptions that keep their meaning."""


@app.task(run_mode=RunMode.PROCESS)
def raise_base() -> None:
    raise ProcessBaseError("from the worker process")


@app.task(run_mode=RunMode.PROCESS)
def answer() -> int:
    return 42
