"""Developer sessions: ``nox -s tests lint typing docs bench``.

Every session installs what it needs into its own virtualenv, so a fresh machine with
Python 3.11+ and ``pip install nox`` can run all of them.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typing", "docs"]
nox.options.reuse_existing_virtualenvs = True

LINT_PATHS = ["jobify_trio", "tests", "examples", "benchmarks", "noxfile.py"]


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (extra arguments go to pytest)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff lint (including the ASYNC rules), the formatting check and the layer contract.

    ``lint-imports`` checks ``[tool.importlinter]`` in pyproject.toml: no module imports
    from a higher layer at run time (see "Layers of the package" in docs/design.rst).
    """
    session.install("-e", ".", "ruff", "import-linter")
    session.run("ruff", "check", *LINT_PATHS)
    session.run("ruff", "format", "--check", *LINT_PATHS)
    session.run("lint-imports")


@nox.session
def typing(session: nox.Session) -> None:
    """mypy --strict on the package, and on a user's program (tests/test_typing.py)."""
    session.install("-e", ".[test]", "mypy", "types-croniter")
    session.run("mypy", "--strict", "jobify_trio")
    session.run("pytest", "-p", "no:cacheprovider", "tests/test_typing.py")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the Sphinx docs; any warning fails the build."""
    session.install("-e", ".[docs]")
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks vs Jobify 0.14.0, APScheduler 4, procrastinate and raw ceilings; writes
    benchmarks/RESULTS.md and README.md's summary (a full run only).

    Extra arguments go to run.py (``-- --quick``, ``-- --only throughput,timer_precision``,
    ``-- --only postgres``). psycopg is installed for the jobify_trio PostgreSQL side.
    """
    session.install("-e", ".", "psycopg[binary]>=3.1")
    session.run("python", "benchmarks/run.py", *session.posargs)
