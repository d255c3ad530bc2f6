"""The ``jobify-trio`` command line (also ``python -m jobify_trio``).

Subcommands: ``run MODULE:APP`` (a worker), ``cron EXPR`` (preview fire times) and
``jobs ...`` (inspect a job store). Bad arguments print ``error: ...`` and exit with 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from . import __version__
from ._cli._cron import CliError, add_cron_parser, cron_main, report_error
from ._cli._run import add_run_parser, run_main

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobify-trio", description="Run and inspect jobify_trio job schedulers."
    )
    parser.add_argument("--version", action="version", version=f"jobify-trio {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_run_parser(commands)
    add_cron_parser(commands)
    commands.add_parser(
        "jobs", help="inspect the jobs in a job store (jobify-trio jobs --help)", add_help=False
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["jobs"]:
        return _jobs(args_list[1:])
    args = _parser().parse_args(args_list)
    try:
        if args.command == "run":
            return run_main(args)
        return cron_main(args)
    except CliError as e:
        report_error(args.command, e, traceback=getattr(args, "traceback", False))
        return 2


def _jobs(argv: list[str]) -> int:
    try:
        module = importlib.import_module("jobify_trio._cli._jobs")
    except ModuleNotFoundError as e:
        if e.name != "jobify_trio._cli._jobs":
            raise
        print(
            "jobify-trio jobs: error: job store inspection is not available in this build",
            file=sys.stderr,
        )
        return 2
    code: int = module.jobs_main(argv)
    return code


if __name__ == "__main__":
    sys.exit(main())
