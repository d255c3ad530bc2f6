"""The ``jobify-trio`` command line, run in real subprocesses (and in-process for errors)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from jobify_trio.__main__ import main

ROOT = Path(__file__).resolve().parent.parent

DEMO_APP = textwrap.dedent(
    """
    from jobify_trio import Jobify

    app = Jobify(storage=False)
    not_an_app = 42
    """
)
WORKER = ROOT / "examples" / "worker.py"


def cli(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobify_trio", *args],
        cwd=cwd,
        env=_env(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _env(extra: dict[str, str]) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


def test_cron_prints_fire_times_with_dst_notes() -> None:
    done = cli("cron", "30 2 * * *", "--tz", "Europe/Berlin", "-n", "3", "--after", "2026-03-27")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "cron '30 2 * * *' in Europe/Berlin (minute hour day-of-month month day-of-week)",
        "next 3 fire times after 2026-03-27T00:00:00+01:00:",
        "    1  2026-03-27 02:30:00 Fri (UTC+01:00)",
        "    2  2026-03-28 02:30:00 Sat (UTC+01:00)",
        "    3  2026-03-29 03:00:00 Sun (UTC+02:00)  DST gap: clocks jumped from 02:00 to "
        "03:00; fires due inside the gap run here, once",
    ]


def test_cron_notes_fall_overlap(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["cron", "0 30 2 * * * *", "--tz", "Europe/Berlin", "-n", "2"]
    assert main([*args, "--after", "2026-10-24T12:00"]) == 0
    fixed = capsys.readouterr().out.splitlines()[2:]
    assert fixed == [
        "    1  2026-10-25 02:30:00 Sun (UTC+02:00)  DST overlap: this wall time happens "
        "twice; a fixed-time schedule fires once",
        "    2  2026-10-26 02:30:00 Mon (UTC+01:00)",
    ]
    assert main(["cron", "*/30 * * * *", "--tz", "Europe/Berlin", "-n", "4", "--after",
                 "2026-10-25T01:50"]) == 0  # fmt: skip
    lines = capsys.readouterr().out.splitlines()[2:]
    assert [line.strip().split("  ")[1] for line in lines] == [
        "2026-10-25 02:00:00 Sun (UTC+02:00)",
        "2026-10-25 02:30:00 Sun (UTC+02:00)",
        "2026-10-25 02:00:00 Sun (UTC+01:00)",
        "2026-10-25 02:30:00 Sun (UTC+01:00)",
    ]
    assert "first pass" in lines[0]
    assert "second pass" in lines[2]


def test_cron_stops_when_the_expression_runs_out(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cron", "0 0 1 1 * 2027", "-n", "3", "--after", "2026-06-01"]) == 0
    assert capsys.readouterr().out.splitlines()[2:] == [
        "    1  2027-01-01 00:00:00 Fri (UTC+00:00)",
        "  (no more fire times)",
    ]


def test_bad_expression_is_a_clear_error_in_a_subprocess() -> None:
    done = cli("cron", "61 * * * *")
    assert done.returncode == 2
    assert done.stdout == ""
    assert "jobify-trio cron: error:" in done.stderr
    assert "'61 * * * *'" in done.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["cron", "* * * * *", "--tz", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
        (["cron", "* * * * *", "-n", "0"], "-n must be at least 1"),
        (["cron", "* * * * *", "--after", "yesterday"], "not an ISO date-time: 'yesterday'"),
        (["run", "no_colon"], "expected MODULE:ATTRIBUTE"),
        (["run", "no_such_module_xyz:app"], "cannot import module 'no_such_module_xyz'"),
        (["run", "demo_app:missing"], "module 'demo_app' has no attribute 'missing'"),
        (["run", "demo_app:not_an_app"], "is not a Jobify app but int"),
        (["run", "missing.py:app"], "no such file: 'missing.py'"),
        (["run", "demo_app:app", "--grace", "-1"], "--grace must be >= 0"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(
    argv: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "demo_app.py").write_text(DEMO_APP)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "modules", dict(sys.modules))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith(f"jobify-trio {argv[0]}: error:")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "x:app", "--log-format", "xml"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'xml'" in capsys.readouterr().err


class Worker:
    """A ``jobify-trio run`` subprocess whose output lines can be awaited."""

    def __init__(self, tmp_path: Path, *args: str, report_seconds: float) -> None:
        self.db = tmp_path / "worker.db"
        env = {
            "JOBIFY_DB": str(self.db),
            "REPORT_CRON": "* * * * * * *",  # every second
            "REPORT_SECONDS": str(report_seconds),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jobify_trio", "run", f"{WORKER}:app", *args],
            cwd=tmp_path,
            env=_env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._watchdog = threading.Timer(30, self.proc.kill)
        self._watchdog.start()

    def wait_for(self, text: str) -> str:
        assert self.proc.stdout is not None
        for line in self.lines:
            if text in line:
                return line
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if text in line:
                return line
        raise AssertionError(f"worker exited before printing {text!r}: {self.lines}")

    def stored_jobs(self) -> list[str]:
        done = cli("jobs", "--db", str(self.db), "list")
        assert done.returncode == 0, done.stderr
        return [line.split()[0] for line in done.stdout.splitlines()[1:-1]]

    def finish(self) -> tuple[int, str]:
        if self.proc.stdout is None or self.proc.stdout.closed:
            return self.proc.wait(), ""
        out, err = self.proc.communicate()
        self._watchdog.cancel()
        self.lines += out.splitlines()
        return self.proc.returncode, err


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.kill()
        worker.finish()


def test_run_sigterm_lets_the_running_job_finish_within_grace(
    tmp_path: Path, workers: list[Worker]
) -> None:
    worker = Worker(tmp_path, "--grace", "10", report_seconds=0.6)
    workers.append(worker)
    worker.wait_for("started    report")
    worker.proc.send_signal(signal.SIGTERM)
    code, err = worker.finish()
    assert code == 0, err
    events = [line.split(" ", 1)[1] for line in worker.lines]
    assert f"worker started tasks=cleanup,report pid={worker.proc.pid}" in events[:2]
    assert "worker stopping signal=SIGTERM grace=10.0" in events
    success = next(e for e in events if e.startswith("success"))
    assert success.startswith("success    report [cron:report] attempt 1; in 0.6")
    assert "; next run " in success
    assert events[-1] == "worker stopped"
    assert sorted(worker.stored_jobs()) == ["cron:cleanup", "cron:report"]


def test_run_sigint_cancels_a_job_past_its_grace_json_lines(
    tmp_path: Path, workers: list[Worker]
) -> None:
    worker = Worker(tmp_path, "--grace", "0.3", "--log-format", "json", report_seconds=60)
    workers.append(worker)
    worker.wait_for('"event": "started"')
    began = time.monotonic()
    worker.proc.send_signal(signal.SIGINT)
    code, err = worker.finish()
    assert code == 0, err
    assert time.monotonic() - began < 10
    records = [json.loads(line) for line in worker.lines]
    assert sorted(r["event"] for r in records[:2]) == ["started", "worker started"]
    assert [r["event"] for r in records[2:]] == [
        "worker stopping",
        "cancelled",
        "worker stopped",
    ]
    assert records[2]["signal"] == "SIGINT"
    cancelled = records[3]
    assert cancelled["task"] == "report"
    assert cancelled["job_id"] == "cron:report"
    assert cancelled["duration"] >= 0.3
    assert all(datetime_like(r["time"]) for r in records)
    assert sorted(worker.stored_jobs()) == ["cron:cleanup", "cron:report"]  # still stored


def datetime_like(text: str) -> bool:
    return datetime.fromisoformat(text).tzinfo is not None


def test_jobs_with_a_missing_database_is_a_clear_error(tmp_path: Path) -> None:
    done = cli("jobs", "--db", str(tmp_path / "missing.db"), "list")
    assert done.returncode == 2
    assert "jobify-trio jobs: error:" in done.stderr
    assert "missing.db" in done.stderr
    assert not (tmp_path / "missing.db").exists()
