"""The suite's own safety net: a hung trio test fails alone and leaves trio usable."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

HUNG = textwrap.dedent(
    """
    import time

    import trio
    import trio.testing


    async def test_polls_forever_in_real_time() -> None:
        while True:  # a poll with no bound, as test_run_modes once had
            await trio.sleep(0.01)


    async def test_waits_forever_in_virtual_time(
        autojump_clock: trio.testing.MockClock,
    ) -> None:
        await trio.Event().wait()  # virtual time can't measure this hang


    async def test_runs_after_the_hung_ones() -> None:
        await trio.sleep(0)


    def test_trio_run_works_after_them() -> None:
        trio.run(trio.sleep, 0)
    """
)


@pytest.mark.slow
def test_a_hung_trio_test_fails_alone_within_the_real_time_limit(tmp_path: Path) -> None:
    (tmp_path / "test_hung.py").write_text(HUNG)
    (tmp_path / "conftest.py").write_text(
        "from _real_time_limit import pytest_collection_modifyitems  # noqa: F401\n"
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\ntrio_mode = true\n")
    path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "JOBIFY_TEST_REAL_TIME_LIMIT": "0.5"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "timeout=60"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    summary = done.stdout.strip().splitlines()[-1]
    assert summary.startswith("2 failed, 2 passed"), done.stdout[-3000:]
    # Count the tracebacks' lines, not the short summary (its width depends on the terminal).
    reasons = [
        line
        for line in done.stdout.splitlines()
        if not line.startswith("FAILED ")
        and "TimeoutError: the test ran longer than 0.5 s of real time" in line
    ]
    assert len(reasons) == 2, done.stdout[-3000:]
    assert "pytest-timeout" not in done.stdout


def test_crash_test_seed_is_fixed_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from test_crash import _seed

    monkeypatch.setenv("CRASH_SEED", "4242")
    assert _seed() == 4242
    monkeypatch.delenv("CRASH_SEED")
    assert len({_seed() for _ in range(5)}) > 1  # fresh seeds, printed by the test
