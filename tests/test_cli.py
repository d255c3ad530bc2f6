"""The ``jobify-trio`` command line, run in real subprocesses (and in-process for errors)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import jobify_trio
from jobify_trio.__main__ import main
from jobify_trio._storage._sqlite import SQLiteDatabase
from jobify_trio.storage import StoredJob, Trigger, Upsert

ROOT = Path(__file__).resolve().parent.parent

DEMO_APP = textwrap.dedent(
    """
    from jobify_trio import Jobify

    app = Jobify(storage=False)
    not_an_app = 42
    """
)
WORKER = ROOT / "examples" / "worker.py"
BROKEN_APP = textwrap.dedent(
    """
    from jobify_trio import Jobify

    app = Jobify(storage=False)
    raise RuntimeError("config missing")
    """
)


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
    assert done.stderr == (
        "jobify-trio cron: error: invalid cron expression: "
        "minute '61' is out of range 0-59 in '61 * * * *'\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["cron", "* * * * *", "--tz", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
        (["cron", "* * * * *", "-n", "0"], "-n must be between 1 and 10,000, got 0"),
        (["cron", "* * * * *", "-n", "10001"], "-n must be between 1 and 10,000, got 10,001"),
        (["run", "broken_app:app"], "importing 'broken_app': RuntimeError: config missing"),
        (
            ["run", "imports_missing:app"],
            "importing 'imports_missing': ModuleNotFoundError: No module named 'no_such_dep_xyz'",
        ),
        (["run", "broken_app.py:app"], "importing 'broken_app.py': RuntimeError: config missing"),
        (["cron", "* * * * *", "--after", "yesterday"], "not an ISO date-time: 'yesterday'"),
        (["run", "no_colon"], "expected MODULE:ATTRIBUTE"),
        (["run", "no_such_module_xyz:app"], "cannot import module 'no_such_module_xyz'"),
        (["run", "demo_app:missing"], "module 'demo_app' has no attribute 'missing'"),
        (["run", "demo_app:not_an_app"], "is not a Jobify app but int"),
        (["run", "missing.py:app"], "no such file: 'missing.py'"),
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
    (tmp_path / "broken_app.py").write_text(BROKEN_APP)
    (tmp_path / "imports_missing.py").write_text("import no_such_dep_xyz\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "modules", dict(sys.modules))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith(f"jobify-trio {argv[0]}: error:")
    assert err.count("\n") == 1, err  # one line, no traceback


def test_import_error_traceback_on_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "broken_app.py").write_text(BROKEN_APP)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "modules", dict(sys.modules))
    assert main(["run", "broken_app:app", "--traceback"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert 'raise RuntimeError("config missing")' in "\n".join(lines)
    assert lines[-2:] == [
        "RuntimeError: config missing",
        "jobify-trio run: error: importing 'broken_app': RuntimeError: config missing",
    ]
    assert "broken_app" not in sys.modules  # the failed import left nothing behind


@pytest.mark.parametrize("grace", ["nan", "-1", "inf", "-inf", "soon"])
def test_invalid_grace_is_rejected_when_parsing(
    grace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The app is never imported: the arguments are refused first.
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "no_such_module_xyz:app", f"--grace={grace}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "jobify-trio run: error: argument --grace: " in err
    assert repr(grace) in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"jobify-trio {jobify_trio.__version__}\n"


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


def _foreign_db(path: Path) -> bytes:
    """A SQLite file of some other program (rollback journal, two tables); its bytes."""
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE users (id INTEGER); CREATE TABLE orders (id INTEGER);")
    conn.commit()
    conn.close()
    return path.read_bytes()


def _job_db(path: Path) -> bytes:
    """A jobify_trio job store holding one row; its bytes once the app closed it."""
    db = SQLiteDatabase(path, "jobify_jobs")
    row = StoredJob(
        job_id="j1",
        task_name="report",
        trigger=Trigger.PUSH,
        next_run_at=datetime(2026, 1, 1, tzinfo=UTC),
        arguments=b"x",
    )
    db.apply([Upsert(job=row)])
    db.close()
    return path.read_bytes()


@pytest.mark.parametrize(
    "action", [["list"], ["delete", "j1"], ["purge-unknown", "--dry-run"], ["purge-unknown"]]
)
def test_jobs_on_a_foreign_database_names_its_tables_and_writes_nothing(
    action: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "other.db"
    before = _foreign_db(path)
    app = ["--app", "demo_app:app", "--app-dir", str(tmp_path)]
    (tmp_path / "demo_app.py").write_text(DEMO_APP)
    assert main(["jobs", "--db", str(path), *app, *action]) == 2
    assert capsys.readouterr().err == (
        f"jobify-trio jobs: error: job database {str(path)!r} has no table 'jobify_jobs' "
        "(its tables: orders, users; use --table NAME)\n"
    )
    assert path.read_bytes() == before  # no table created, journal mode unchanged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo_app.py", "other.db"]


def test_jobs_with_a_mistyped_table_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "jobs.db"
    before = _job_db(path)
    for action in (["list"], ["delete", "j1"]):
        assert main(["jobs", "--db", str(path), "--table", "jobify_job", *action]) == 2
        assert capsys.readouterr().err == (
            f"jobify-trio jobs: error: job database {str(path)!r} has no table 'jobify_job' "
            "(its tables: jobify_jobs, jobify_jobs_meta; use --table NAME)\n"
        )
    assert path.read_bytes() == before
    assert main(["jobs", "--db", str(path), "--table", "jobify_jobs_meta"]) == 2
    assert "is not a jobify_trio job table" in capsys.readouterr().err


@pytest.mark.parametrize("table", ["jobs; DROP TABLE x", "1jobs", "", "a" * 64])
def test_jobs_with_an_invalid_table_name_is_one_line(
    table: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "jobs.db"
    before = _job_db(path)
    assert main(["jobs", "--db", str(path), "--table", table, "list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"jobify-trio jobs: error: --table: invalid table name {table!r}")
    assert err.count("\n") == 1
    assert path.read_bytes() == before


def test_jobs_list_reads_without_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "jobs.db"
    before = _job_db(path)
    path.chmod(0o444)  # SQLite opens a read-only file read-only; the listing still works
    assert main(["jobs", "--db", str(path), "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[:3] == ["j1", "report", "push"]
    assert out[-1] == "1 stored job(s)"
    assert path.read_bytes() == before
    path.chmod(0o644)
    assert main(["jobs", "--db", str(path), "delete", "j1"]) == 0
    assert "deleted 1 of 1 job(s)" in capsys.readouterr().out
    assert main(["jobs", "--db", str(path), "list"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "0 stored job(s)"


def test_jobs_refuses_an_unsupported_schema_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "jobs.db"
    _job_db(path)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE jobify_jobs_meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    assert main(["jobs", "--db", str(path), "list"]) == 2
    assert "schema version '99' is not supported" in capsys.readouterr().err
