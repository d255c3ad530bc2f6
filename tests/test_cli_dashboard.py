"""``jobify-trio run module:app --dashboard HOST:PORT``: a worker serving its dashboard."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("hypercorn")
httpx = pytest.importorskip("httpx")

from jobify_trio import Jobify, RunHistory  # noqa: E402
from jobify_trio._cli._cron import CliError  # noqa: E402
from jobify_trio._cli._dashboard import TOKEN_ENV, plan  # noqa: E402
from jobify_trio._ops._history import find_history  # noqa: E402

ROOT = Path(__file__).parent.parent
WORKER = ROOT / "examples" / "worker.py"


def test_plan_checks_the_address_and_attaches_a_history() -> None:
    app = Jobify(storage=False)
    assert plan(app, None) is None
    assert app._listeners == []
    with pytest.raises(CliError, match="--dashboard: expected HOST:PORT"):
        plan(app, "8000")
    planned = plan(app, "127.0.0.1:8123")
    assert planned is not None
    assert (planned.host, planned.port, planned.token) == ("127.0.0.1", 8123, None)
    assert isinstance(find_history(app), RunHistory)


def test_plan_off_loopback_generates_a_token_unless_given(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    generated = plan(Jobify(storage=False), "0.0.0.0:8000")
    assert generated is not None
    assert generated.token is not None
    assert generated.token in capsys.readouterr().err
    monkeypatch.setenv(TOKEN_ENV, "chosen-token-1")
    chosen = plan(Jobify(storage=False), "0.0.0.0:8000")
    assert chosen is not None
    assert chosen.token == "chosen-token-1"


@pytest.mark.slow
def test_worker_serves_the_dashboard_until_stopped(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "JOBIFY_DB": str(tmp_path / "worker.db"),
        "REPORT_CRON": "0 0 1 1 *",
        "REPORT_SECONDS": "0",
    }
    command = [sys.executable, "-m", "jobify_trio", "run", f"{WORKER}:app", "--log-format",
               "json", "--dashboard", "127.0.0.1:0"]  # fmt: skip
    proc = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    watchdog = threading.Timer(30, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        url = None
        for line in proc.stdout:
            record = json.loads(line)
            if record["event"] == "worker dashboard":
                url = record["url"]
                break
        assert url is not None, proc.stderr.read() if proc.stderr else ""
        state = httpx.get(f"{url}/api/state", timeout=5).json()["state"]
        assert sorted(job["id"] for job in state["jobs"]) == ["cron:cleanup", "cron:report"]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
