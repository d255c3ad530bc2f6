"""Every example runs green: under virtual time by import, and the README demo for real."""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from jobify_trio import Jobify
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
    options: dict[str, Any] = {"wall_clock": VirtualWallClock(START)}
    if "storage" in inspect.signature(Jobify).parameters:
        options["storage"] = False
    return options


def cron_supported() -> bool:
    from jobify_trio._runtime import Runtime

    return "not available" not in inspect.getsource(Runtime.cron)


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
    ]
    if cron_supported():
        expected += [f"[ {s}.0s] tick (cron, every second)" for s in (1, 2, 3)]
    events = [line for line in lines if line.startswith("[")]
    assert sorted(events) == sorted(expected)
    assert lines[-3:] == [
        "soon:  success -> 'greeted Alan'",
        "later: success -> 'greeted Ada'",
        "flaky: success after 3 attempts -> 42",
    ]


def test_every_example_has_a_virtual_time_test() -> None:
    tested = set(re.findall(r'load\("(\w+)"\)', Path(__file__).read_text()))
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
