"""Machine and version facts, and the Markdown report ``benchmarks/RESULTS.md``.

Used by ``run.py`` only (runs with the interpreter of the jobify_trio side).
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shlex
import sqlite3
import subprocess
import sys
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def cpu_model() -> str:
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def memory_gib() -> str:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    return "unknown"


def os_name() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return f"{line.split('=', 1)[1].strip().strip(chr(34))} ({platform.platform()})"
    return platform.platform()


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def machine() -> dict[str, str]:
    return {
        "CPU": cpu_model(),
        "cores (logical)": str(os.cpu_count()),
        "memory": memory_gib(),
        "OS": os_name(),
        "Python": f"{platform.python_implementation()} {sys.version.split()[0]}",
    }


def local_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        if dist == "jobify_trio":
            return f"{_source_version()} (source tree, not installed)"
        return "not installed"


def _source_version() -> str:
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        with pyproject.open("rb") as f:
            return str(tomllib.load(f)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def venv_version(python: Path | str | None, dist: str) -> str:
    """``dist``'s version in another interpreter (a benchmark venv)."""
    if not isinstance(python, Path) or not python.exists():
        return "not installed"
    probe = f"import importlib.metadata as m; print(m.version({dist!r}))"
    done = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else "not installed"


def git_commit(repo: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return "unknown"
    dirty = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain", "--", "jobify_trio"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    note = " + uncommitted changes in jobify_trio/ (shared checkout)" if dirty else ""
    return done.stdout.strip() + note


def command_line(argv: Sequence[str]) -> str:
    """The exact command; under nox, the nox command that ran it."""
    args = shlex.join(argv)
    if os.environ.get("NOX_CURRENT_SESSION") == "bench":
        return f"nox -s bench{' -- ' + args if args else ''}"
    return f"python benchmarks/run.py{' ' + args if args else ''}"


def versions(
    jobify_python: Path | str,
    aps_python: Path | str,
    pg_python: Path | str,
    aps_pg_python: Path | str,
) -> dict[str, str]:
    return {
        "jobify_trio": local_version("jobify_trio"),
        "trio": local_version("trio"),
        "croniter": local_version("croniter"),
        "attrs": local_version("attrs"),
        "sqlite (jobify_trio side)": sqlite3.sqlite_version,
        "Jobify": venv_version(jobify_python, "jobify"),
        "APScheduler": venv_version(aps_python, "apscheduler"),
        "anyio (APScheduler venv)": venv_version(aps_python, "anyio"),
        "trio (APScheduler venv)": venv_version(aps_python, "trio"),
        "procrastinate": venv_version(pg_python, "procrastinate"),
        "psycopg (procrastinate venv, raw PostgreSQL)": venv_version(pg_python, "psycopg"),
        "APScheduler (SQLAlchemy venv)": venv_version(aps_pg_python, "apscheduler"),
        "SQLAlchemy, asyncpg (APScheduler SQLAlchemy venv)": ", ".join(
            venv_version(aps_pg_python, dist) for dist in ("sqlalchemy", "asyncpg")
        ),
        "PostgreSQL server": postgres_version(),
    }


def postgres_version() -> str:
    """The server version at 127.0.0.1:5432 (``psql``), or why it is unknown."""
    try:
        done = subprocess.run(
            [
                "psql",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "test",
                "-Atc",
                "SHOW server_version",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({type(exc).__name__})"
    return done.stdout.strip() if done.returncode == 0 else "not reachable"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    align = ["---", *(["---:"] * (len(header) - 3)), "---", "---"]
    return "\n".join([line(header), line(align), *map(line, rows)])


def write_markdown(
    path: Path,
    *,
    title_note: str,
    tables: dict[str, tuple[list[str], list[list[str]]]],
    facts: dict[str, dict[str, str]],
    sections: dict[str, list[str]],
) -> None:
    """RESULTS.md: a title, the facts as bullet lists, the tables, then note sections."""
    out = ["# Benchmark results", "", title_note, ""]
    for heading, items in facts.items():
        out += [f"## {heading}", "", *(f"- **{k}**: {v}" for k, v in items.items()), ""]
    for heading, (header, rows) in tables.items():
        out += [f"## {heading}", "", markdown_table(header, rows), ""]
    for heading, lines in sections.items():
        out += [f"## {heading}", "", *(f"- {line}" for line in lines), ""]
    path.write_text("\n".join(out), encoding="utf-8")


def timestamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z")
