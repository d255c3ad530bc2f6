"""Every example runs green: under virtual time by import, and the README demo for real."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
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


async def test_cron_misfire_under_virtual_time(
    autojump_clock: object, capsys: pytest.CaptureFixture[str]
) -> None:
    example = load("cron_misfire")
    await example.main(example.make_app(**virtual_app_options()))
    assert capsys.readouterr().out.splitlines() == [
        "declarative cron 'cron:cleanup' first runs at 02:00:00",
        "ONCE:",  # the slow 00:01 run ends at 00:04:30; one catch-up run for 00:02
        "  00:01:00  slot 00:01  starts, takes 3.5 minutes",
        "  00:04:30  slot 00:02  runs",
        "  00:05:00  slot 00:05  runs",
        "  00:06:00  slot 00:06  runs",
        "  00:07:00  slot 00:07  runs",
        "SKIP:",  # 00:12-00:14 missed: nothing until 00:15
        "  00:11:00  slot 00:11  starts, takes 3.5 minutes",
        "  00:15:00  slot 00:15  runs",
        "  00:16:00  slot 00:16  runs",
        "  00:17:00  slot 00:17  runs",
        "  00:18:00  slot 00:18  runs",
        "ALL:",  # every missed slot, back to back
        "  00:21:00  slot 00:21  starts, takes 3.5 minutes",
        "  00:24:30  slot 00:22  runs",
        "  00:24:30  slot 00:23  runs",
        "  00:24:30  slot 00:24  runs",
        "  00:25:00  slot 00:25  runs",
        "GRACE(2 min):",  # only the slots at most 2 minutes old at 00:34:30
        "  00:31:00  slot 00:31  starts, takes 3.5 minutes",
        "  00:34:30  slot 00:33  runs",
        "  00:34:30  slot 00:34  runs",
        "  00:35:00  slot 00:35  runs",
        "  00:36:00  slot 00:36  runs",
        "max_failures=3:",
        "  00:45:00  slot 00:45  fails",
        "  00:50:00  slot 00:50  fails",
        "  00:55:00  slot 00:55  fails",
        "  -> permanently_failed",
        "replace=True:",
        "  'digest' next at Thu 09:00",
        "  replaced: same job: True, next at Thu 01:20",
        "  01:20:00  slot 01:20  frequent digest",
        "  01:40:00  slot 01:40  frequent digest",
        "  02:00:00  slot 02:00  nightly cleanup (declarative cron)",
        "all cron jobs ended",
    ]


async def test_routers_and_middleware_under_virtual_time(
    autojump_clock: object, capsys: pytest.CaptureFixture[str]
) -> None:
    example = load("routers_and_middleware")
    await example.main(example.make_app(**virtual_app_options()))
    assert capsys.readouterr().out.splitlines() == [
        "lifespan: database opened",
        "tasks: billing.invoices:send, reports:bulk, reports:urgent",
        "[0.0s] billing.invoices:send: invoice for ACME (attempt 1, trace t1)",
        "[0.0s] timing: billing.invoices:send took 0.00s",
        "[0.0s] result: 'sent to ACME'",
        "[0.0s] freeze: not scheduling billing.invoices:send",
        "[0.0s] refused job: status pending",
        "[0.0s] reports:bulk #1 starts",
        "[0.5s] timing: reports:bulk took 0.50s",
        "[0.5s] reports:urgent starts",  # pushed last, runs second: priority 10
        "[1.0s] timing: reports:urgent took 0.85s",  # 0.35 s of it in the queue
        "[1.0s] reports:bulk #2 starts",
        "[1.5s] timing: reports:bulk took 1.45s",
        "[1.5s] reports:bulk #3 starts",
        "[2.0s] timing: reports:bulk took 1.90s",
        "lifespan: database closed (5 rows written)",
        "rows: ['invoice for ACME', 'bulk report 1', 'urgent report', 'bulk report 2', "
        "'bulk report 3']",
    ]


@pytest.mark.parametrize(
    "test_name", ["test_a_week_of_cron_runs", "test_retry_schedule", "test_retries_give_up"]
)
def test_testing_schedules_checks_pass(test_name: str) -> None:
    example = load("testing_schedules")
    assert [test.__name__ for test in example.TESTS] == [
        "test_a_week_of_cron_runs",
        "test_retry_schedule",
        "test_retries_give_up",
    ]
    getattr(example, test_name)()  # each runs its own trio.run under a MockClock


def test_testing_schedules_checks_can_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example's checks are not vacuous: one more failure moves the attempt times."""
    example = load("testing_schedules")

    flaky = example.FlakyInventory
    monkeypatch.setattr(
        example, "FlakyInventory", lambda clock, failures: flaky(clock, failures + 1)
    )
    with pytest.raises(AssertionError):
        example.test_retry_schedule()


def test_every_example_has_a_test() -> None:
    source = Path(__file__).read_text()
    tested = set(re.findall(r'load\("(\w+)"\)', source))
    tested |= set(re.findall(r'import_module\("(\w+)"\)', source))
    assert {p.stem for p in EXAMPLES.glob("*.py")} <= tested


def test_every_example_is_listed_in_the_docs_and_readme() -> None:
    listed = (ROOT / "docs" / "examples.rst").read_text()
    readme = (ROOT / "README.md").read_text()
    for example in EXAMPLES.glob("*.py"):
        assert f"``{example.name}``" in listed, example.name
        assert f"`{example.name}`" in readme, example.name


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


@pytest.mark.parametrize(
    ("name", "last_line"),
    [
        ("cron_misfire", "all cron jobs ended"),  # on a MockClock even when run by hand
        ("routers_and_middleware", "rows: ['invoice for ACME', 'bulk report 1', "),
        ("testing_schedules", "ok test_retries_give_up"),
    ],
)
def test_example_runs_as_a_script(tmp_path: Path, name: str, last_line: str) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith(last_line)
    assert list(tmp_path.iterdir()) == []  # no job database left behind


def test_readme_shows_the_commands_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = next(line for line in ci.splitlines() if line.startswith("python3 -m venv"))
    assert test_command in readme
    assert "examples/quickstart.py" in readme


def test_readme_short_example_finishes_in_seconds_and_says_where_it_stores(
    tmp_path: Path,
) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## A short example", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    intro = section.split("```python", 1)[0]
    assert "`Jobify()`" in intro
    assert "`jobify.db`" in intro
    assert "working directory" in intro
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=45,  # the old example waited a whole minute
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "sent to ops@example.com\n"
    assert time.monotonic() - began < 30
    assert [p.name for p in tmp_path.iterdir()] == ["jobify.db"]  # where the README says
