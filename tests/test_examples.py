"""Every example runs green: under virtual time by import, and the README demo for real."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import trio

from jobify_trio import JobEvent
from jobify_trio.testing import VirtualWallClock

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
START = datetime(2026, 1, 1, tzinfo=UTC)


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def virtual_app_options() -> dict[str, Any]:
    return {"wall_clock": VirtualWallClock(START), "storage": False}


async def test_quickstart_under_virtual_time(
    autojump_clock: object, capsys: pytest.CaptureFixture[str]
) -> None:
    quickstart = load("quickstart")
    await quickstart.main(quickstart.make_app(**virtual_app_options()))
    lines = capsys.readouterr().out.splitlines()
    expected = [
        "[ 0.0s] flaky: attempt 1 fails",
        "[ 0.3s] flaky: attempt 2 fails",
        "[ 0.5s] hello, Alan (delayed job)",
        "[ 0.9s] flaky: attempt 3 succeeds",
        "[ 1.5s] hello, Ada (delayed job)",
        "[ 1.0s] tick (cron, every second)",
        "[ 2.0s] tick (cron, every second)",
        "[ 3.0s] tick (cron, every second)",
    ]
    events = [line for line in lines if line.startswith("[")]
    assert sorted(events) == sorted(expected)
    assert lines[-3:] == [
        "soon:  success -> 'greeted Alan'",
        "later: success -> 'greeted Ada'",
        "flaky: success after 3 attempts -> 42",
    ]


async def test_worker_under_virtual_time(autojump_clock: object) -> None:
    worker = load("worker")
    app = worker.make_app(**virtual_app_options())
    seen: list[tuple[str, str, str, float]] = []

    def listen(event: JobEvent) -> None:
        at = (app.wall_clock.now() - START).total_seconds()
        seen.append((event.task_name, event.kind.value, event.status.value, at))

    app.add_listener(listen)
    async with app:
        await trio.sleep(25)
        await app.shutdown(grace=1)
        report = app.find_job("cron:report")
        assert report is not None
        assert report.exec_at == START + timedelta(seconds=30)
    assert seen == [
        ("report", "started", "running", 10.0),
        ("report", "ended", "success", 13.0),
        ("report", "started", "running", 20.0),
        ("report", "ended", "success", 23.0),
    ]


async def test_retries_and_handlers_under_virtual_time(
    autojump_clock: object, capsys: pytest.CaptureFixture[str]
) -> None:
    example = load("retries_and_handlers")
    await example.main(example.make_app(**virtual_app_options()))
    lines = capsys.readouterr().out.splitlines()
    assert sorted(lines[:8]) == sorted(
        [
            "flaky: attempt 1 at 0.00s",
            "broken: attempt 1 at 0.00s",
            "picky: attempt 1 at 0.00s",
            "billing:slow: attempt 1 at 0.00s",
            "flaky: attempt 2 at 0.10s",
            "broken: attempt 2 at 0.10s",
            "flaky: attempt 3 at 0.30s",
            "broken: attempt 3 at 0.30s",
        ]
    )
    assert lines[8:11] == [
        "success: 'flaky: ok'",
        "success: 'fallback after 3 attempts (ConnectionError)'",
        "success: 'task handler saw no route'",
    ]
    assert re.fullmatch(r"success: \"gave up waiting: job '.+' timed out after 0.2 s\"", lines[11])


async def test_embedding_under_virtual_time(
    autojump_clock: object, capsys: pytest.CaptureFixture[str]
) -> None:
    example = load("embedding")
    await example.main(example.make_app(**virtual_app_options()))
    assert capsys.readouterr().out.splitlines() == [
        "server: scheduled +2s",
        "server: scheduled +1s",
        "reminder: drink water",
        "reminder: stand up",
        "server and scheduler stopped",
    ]


async def test_process_mode_in_real_processes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))  # worker processes import it by name
    example = importlib.import_module("process_mode")  # load("process_mode") would not pickle
    await example.main()
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["primes: 1229", "primes: 9592"]
    assert lines[2].startswith("spin: timeout (job ")


def test_every_example_has_a_test() -> None:
    source = Path(__file__).read_text()
    tested = set(re.findall(r'load\("(\w+)"\)', source))
    tested |= set(re.findall(r'import_module\("(\w+)"\)', source))
    assert {p.stem for p in EXAMPLES.glob("*.py")} <= tested


def test_readme_demo_runs_for_real(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "flaky: success after 3 attempts -> 42" in done.stdout
    assert list(tmp_path.iterdir()) == []  # the demo's database lives in a temporary directory


def test_readme_shows_the_commands_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = next(line for line in ci.splitlines() if line.startswith("python3 -m venv"))
    assert test_command in readme
    assert "examples/quickstart.py" in readme
