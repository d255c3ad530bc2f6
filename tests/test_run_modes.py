"""Contract §6: MAIN / THREAD / PROCESS with real threads and real processes."""

from __future__ import annotations

import os
import pickle
import threading
import time
from pathlib import Path

import _process_tasks
import pytest
import trio
from _helpers import new_app

from jobify_trio import Jobify, JobStatus, RunMode, Task
from jobify_trio.exceptions import JobTimeoutError


async def _wait_dead(pid: int, limit: float = 10.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        await trio.sleep(0.02)
    return False


async def _wait_for_pid(pid_file: Path, limit: float = 30.0) -> int:
    """The pid a worker process wrote to ``pid_file``; fails after ``limit`` s of real time.

    (Real time: these tests run without a mock clock, and a worker process can take
    seconds to start on a loaded machine.)
    """
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        text = _read(pid_file)
        if text:
            return int(text)
        await trio.sleep(0.02)
    raise AssertionError(f"no worker wrote {pid_file} within {limit} s")


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


@pytest.fixture
def process_app() -> Jobify:
    """A fresh app with the PROCESS tasks: no test shares a running app with another."""
    return _process_tasks.make_app()


async def test_sync_functions_default_to_a_worker_thread() -> None:
    app = new_app()

    @app.task
    def where() -> int:
        return threading.get_ident()

    assert where.options.run_mode is RunMode.THREAD
    async with app:
        ident = await (await where.push())
    assert ident != threading.get_ident()


async def test_main_mode_calls_sync_functions_inline() -> None:
    app = new_app()

    @app.task(run_mode=RunMode.MAIN)
    def where() -> int:
        return threading.get_ident()

    async with app:
        assert await (await where.push()) == threading.get_ident()


def test_async_function_with_thread_mode_warns_and_uses_main() -> None:
    app = new_app()
    with pytest.warns(RuntimeWarning, match="async function"):

        @app.task(run_mode=RunMode.THREAD)
        async def coro() -> None:
            pass

    assert coro.options.run_mode is RunMode.MAIN


async def test_thread_timeout_abandons_the_thread() -> None:
    app = new_app()
    finished = threading.Event()

    @app.task(timeout=0.05)
    def blocking() -> str:
        time.sleep(0.3)
        finished.set()
        return "late"

    async with app:
        job = await blocking.push()
        start = time.monotonic()
        await job.wait()
        assert time.monotonic() - start < 0.25
        assert job.status is JobStatus.TIMEOUT
        assert isinstance(job.exception, JobTimeoutError)
    # Leaving the block waited for the abandoned thread; its result was discarded.
    assert finished.is_set()
    assert job.status is JobStatus.TIMEOUT


def test_task_pickles_by_reference(process_app: Jobify) -> None:
    task = _process_tasks.whoami
    assert isinstance(task, Task)
    assert pickle.loads(pickle.dumps(task)) is task
    assert task(2, y=3)[1] == 5
    assert task.__name__ == "whoami"


@pytest.mark.slow
async def test_process_mode_runs_in_another_process(tmp_path: Path, process_app: Jobify) -> None:
    app = process_app
    async with app:
        pid, total = await (await _process_tasks.whoami.push(2, y=5))
        assert total == 7
        assert pid != os.getpid()
        failing = await _process_tasks.crash.push()
        await failing.wait()
        assert failing.status is JobStatus.FAILED
        assert isinstance(failing.exception, ValueError)
        assert "raised in the worker" in str(failing.exception)

        pid_file = tmp_path / "pid"
        hung = await _process_tasks.hang.push(str(pid_file))
        await hung.wait()
        assert hung.status is JobStatus.TIMEOUT
        worker = int(pid_file.read_text())  # the job timed out after the worker wrote it
        assert await _wait_dead(worker), "the timed-out worker process is still alive"


@pytest.mark.slow
async def test_shutdown_kills_running_process_job(tmp_path: Path, process_app: Jobify) -> None:
    pid_file = tmp_path / "pid"
    async with process_app:
        job = await _process_tasks.block.schedule(str(pid_file)).push()
        worker = await _wait_for_pid(pid_file)
    assert job.status is JobStatus.CANCELLED
    assert await _wait_dead(worker), "a worker process outlived the app"


async def test_cancelled_before_its_thread_started_does_not_hang_shutdown() -> None:
    trio.to_thread.current_default_thread_limiter().total_tokens = 1
    app = new_app()
    ran: list[str] = []

    @app.task
    def blocking(name: str) -> None:
        time.sleep(0.1)
        ran.append(name)

    with trio.fail_after(5):
        async with app:
            await blocking.push("first")  # takes the only thread token
            waiting = await blocking.push("second")  # waits for the limiter
            await trio.sleep(0.01)
            await waiting.cancel()
    assert ran == ["first"]
    assert waiting.status is JobStatus.CANCELLED
