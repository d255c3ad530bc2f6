"""``jobify-trio cron EXPR``: preview the next fire times of an expression, with DST notes."""

from __future__ import annotations

import argparse
import math
import sys
from datetime import UTC, datetime, timedelta, tzinfo
from traceback import print_exception
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .._cron._dst import DstShiftKind, dst_shift
from .._cron._expression import CronExhausted, CronExpression
from ..exceptions import InvalidCronExpression

__all__ = [
    "MAX_FIRES",
    "CliError",
    "add_cron_parser",
    "cron_main",
    "describe_fire",
    "report_error",
    "seconds_argument",
]

_LAYOUTS = {
    5: "minute hour day-of-month month day-of-week",
    6: "minute hour day-of-month month day-of-week year",
    7: "second minute hour day-of-month month day-of-week year",
}


#: The most fire times ``-n`` may ask for: a preview, not a data export.
MAX_FIRES = 10_000


def seconds_argument(text: str) -> float:
    """An argument in seconds (``--grace``, ``--wait``): a finite number >= 0 (``nan``,
    ``inf`` and negatives fail)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds >= 0, got {text!r}")
    return value


class CliError(Exception):
    """A bad argument: printed as ``error: ...`` with exit code 2."""


def report_error(command: str, exc: BaseException, *, traceback: bool = False) -> None:
    """Print ``jobify-trio COMMAND: error: ...`` on stderr, after the cause's trace if asked."""
    cause = exc.__cause__
    if traceback and cause is not None:
        print_exception(cause, file=sys.stderr)
    print(f"jobify-trio {command}: error: {exc}", file=sys.stderr)


def add_cron_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "cron",
        help="print the next fire times of a cron expression",
        description="Print the next fire times of a cron expression (Jobify's field layout), "
        "with a note where daylight saving time moves or merges a fire.",
    )
    parser.add_argument("expression", help='e.g. "*/15 9-17 * * 1-5" (quote it)')
    parser.add_argument("--tz", default="UTC", help="IANA time zone (default: UTC)")
    parser.add_argument(
        "-n", type=int, default=10, help=f"how many fire times, 1-{MAX_FIRES:,} (default: 10)"
    )
    parser.add_argument(
        "--after", help="start after this ISO date-time (default: now; naive means in --tz)"
    )


def cron_main(args: argparse.Namespace) -> int:
    tz = _zone(args.tz)
    if not 1 <= args.n <= MAX_FIRES:
        raise CliError(f"-n must be between 1 and {MAX_FIRES:,}, got {args.n:,}")
    try:
        expr = CronExpression.parse(args.expression)
    except InvalidCronExpression as e:
        raise CliError(str(e)) from e
    start = _start(args.after, tz)
    print(f"cron {args.expression!r} in {args.tz}{_layout(args.expression)}")
    print(f"next {args.n} fire times after {start.isoformat()}:")
    fires = expr.iterate(start)
    for index in range(1, args.n + 1):
        try:
            fire = fires.next()
        except CronExhausted:
            print("  (no more fire times)")
            break
        note = describe_fire(expr, fire)
        stamp = fire.strftime("%Y-%m-%d %H:%M:%S %a") + f" (UTC{_offset_text(fire)})"
        print(f"  {index:>3}  {stamp}" + (f"  {note}" if note else ""))
    return 0


def describe_fire(expr: CronExpression, fire: datetime) -> str:
    """A DST note for ``fire`` (aware, in the schedule's zone), or ``""``."""
    shift = dst_shift(expr, fire)
    if shift is not None and shift.kind is DstShiftKind.GAP:
        offset = fire.utcoffset()
        before = (fire.astimezone(UTC) - timedelta(seconds=1)).astimezone(fire.tzinfo).utcoffset()
        assert offset is not None
        assert before is not None
        jumped = (fire - (offset - before)).strftime("%H:%M")
        return (
            f"DST gap: clocks jumped from {jumped} to {fire:%H:%M}; "
            "fires due inside the gap run here, once"
        )
    wall = fire.replace(tzinfo=None)
    first = wall.replace(tzinfo=fire.tzinfo, fold=0).utcoffset()
    second = wall.replace(tzinfo=fire.tzinfo, fold=1).utcoffset()
    if first == second:
        return ""
    if expr.fixed_time:
        return "DST overlap: this wall time happens twice; a fixed-time schedule fires once"
    which = "first" if fire.utcoffset() == first else "second"
    return f"DST overlap: {which} pass through this wall time (clocks go back)"


def _zone(name: str) -> tzinfo:
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise CliError(f"unknown time zone {name!r}") from e


def _start(after: str | None, tz: tzinfo) -> datetime:
    if after is None:
        return datetime.now(tz)
    try:
        moment = datetime.fromisoformat(after)
    except ValueError as e:
        raise CliError(f"--after: not an ISO date-time: {after!r}") from e
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment.astimezone(tz)


def _layout(expression: str) -> str:
    layout = _LAYOUTS.get(len(expression.split()))
    return f" ({layout})" if layout and not expression.startswith("@") else ""


def _offset_text(fire: datetime) -> str:
    offset = fire.utcoffset()
    assert offset is not None
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
