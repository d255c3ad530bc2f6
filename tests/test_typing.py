"""The library type-checks for its users: ``mypy --strict`` on a user's program.

``tests/typing/user_program.py`` must pass; every line marked ``# rejected`` in
``tests/typing/wrong_arguments.py`` must get an error. mypy runs in a subprocess from a
scratch directory, so it finds jobify_trio as an installed package: that needs the
``py.typed`` marker (without it every task is "untyped" and ``await job`` is ``Any``).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy", reason="mypy is not installed (nox -s typing installs it)")

HERE = Path(__file__).parent / "typing"

pytestmark = pytest.mark.slow


def run_mypy(tmp_path: Path, *files: str) -> subprocess.CompletedProcess[str]:
    cache = ["--cache-dir", str(tmp_path / "cache")]
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", *cache]
        + [str(HERE / f) for f in files],
        cwd=tmp_path,  # not the checkout: jobify_trio is found as an installed package
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def rejected_lines(path: Path) -> set[int]:
    lines = path.read_text().splitlines()
    return {n for n, line in enumerate(lines, 1) if line.rstrip().endswith("# rejected")}


def test_the_package_ships_a_py_typed_marker() -> None:
    import jobify_trio

    assert (Path(jobify_trio.__file__).parent / "py.typed").is_file()


def test_mypy_accepts_a_user_program(tmp_path: Path) -> None:
    done = run_mypy(tmp_path, "user_program.py")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_rejects_wrong_argument_types(tmp_path: Path) -> None:
    done = run_mypy(tmp_path, "wrong_arguments.py")
    errors = re.findall(r"wrong_arguments\.py:(\d+): error: (.*)", done.stdout)
    assert done.returncode == 1, done.stdout + done.stderr
    assert {int(n) for n, _ in errors} == rejected_lines(HERE / "wrong_arguments.py"), done.stdout
    out = done.stdout
    # an async task: both overloads of push (awaited result / plain result) are listed
    assert 'No overload variant of "push" of "Task" matches argument types "str", "int"' in out
    assert "def push(self, a: int, b: int) -> Coroutine[Any, Any, Job[int]]" in out
    assert 'Argument "punctuation" to "push" of "Task" has incompatible type "int"' in out
    assert 'Argument 1 to "schedule" of "Task" has incompatible type "int"; expected "str"' in out
    # await job is the coroutine's result (int), not the coroutine
    assert 'Incompatible types in assignment (expression has type "int", variable' in out
