"""One unreadable row never stops a start (issue 10, item 6), on a real SQLite file.

Rows are written with plain ``sqlite3`` beside good rows; the app must start, name every
row it keeps in one ``RestoreWarning``, and run every good row. SQLite works in a thread
that trio's autojump clock does not see, so the clock jumps only after 20 ms of real
idleness, and the tests assert what ran, never when.
"""

from __future__ import annotations

import json
import re
import sqlite3
import warnings
from collections.abc import Sequence
from datetime import UTC, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from _helpers import START
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobify_trio import Cron, Jobify
from jobify_trio._cron._state import CronState, cron_to_json
from jobify_trio._runtime._actors._cron_trigger import CronTriggers
from jobify_trio._storage._sqlite import SQLiteDatabase
from jobify_trio._storage._sqlite_rows import row_to_job
from jobify_trio.serializers import ExtendedJSONSerializer, encode_call_arguments
from jobify_trio.storage import LoadResult, RestoreWarning, SQLiteStorage, StoredJob, Trigger
from jobify_trio.testing import VirtualWallClock

COLUMNS = ("job_id", "task", "trigger", "next_run_at", "arguments", "attempt", "state", "cron")
AT = (START + timedelta(seconds=1)).isoformat(timespec="microseconds")
DEEP = "[" * 100_000 + "]" * 100_000


def args_blob(*args: Any) -> bytes:
    return encode_call_arguments(ExtendedJSONSerializer(), task_name="rec", args=args, kwargs={})


def cron_json(**changes: Any) -> str:
    state = CronState(next_run_at=START + timedelta(minutes=1), offset=START)
    data = json.loads(cron_to_json(Cron("* * * * *"), state))
    data.update(changes)
    return json.dumps(data)


def good_row(i: int) -> tuple[Any, ...]:
    trigger = "push" if i % 2 else "at"
    return (f"good-{i}", "rec", trigger, AT, args_blob(f"good-{i}"), 1, "scheduled", None)


def new_db(tmp_path: Path) -> Path:
    db = tmp_path / "jobs.db"
    SQLiteDatabase(db, "jobify_jobs").close()  # creates the tables
    return db


def insert(db: Path, rows: Sequence[tuple[Any, ...]]) -> None:
    with sqlite3.connect(db) as conn:
        conn.executemany(
            f"INSERT OR IGNORE INTO jobify_jobs ({', '.join(COLUMNS)}) VALUES "
            f"({', '.join('?' * len(COLUMNS))})",
            rows,
        )
    conn.close()


def corrupt(db: Path, job_id: str, column: str, value: Any, *, as_text: bool = False) -> None:
    """Set one column of a row; ``as_text`` stores a blob as (invalid) TEXT."""
    placeholder = "CAST(? AS TEXT)" if as_text else "?"
    with sqlite3.connect(db) as conn:
        conn.execute(
            f"UPDATE OR IGNORE jobify_jobs SET {column} = {placeholder} WHERE job_id = ?",
            (value, job_id),
        )
    conn.close()


def stored_ids(db: Path) -> set[Any]:
    with sqlite3.connect(db) as conn:
        conn.text_factory = bytes
        ids = {row[0] for row in conn.execute("SELECT job_id FROM jobify_jobs")}
    conn.close()
    return ids


async def start_and_run(db: Path, tz: tzinfo = UTC) -> tuple[list[Any], list[str]]:
    """Start an app on ``db``, let due jobs run, stop; (values run, restore warnings)."""
    app = Jobify(storage=SQLiteStorage(db), wall_clock=VirtualWallClock(START), tz=tz)
    ran: list[Any] = []

    @app.task(name="rec")
    async def rec(value: Any = None) -> None:
        ran.append(value)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RestoreWarning)
        async with app:
            await trio.sleep(5)
    for warning in caught:
        if not issubclass(warning.category, RestoreWarning):
            warnings.warn_explicit(warning.message, warning.category, warning.filename, 0)
    return ran, [str(w.message) for w in caught if issubclass(w.category, RestoreWarning)]


@pytest.fixture
def vclock(autojump_clock: trio.testing.MockClock) -> trio.testing.MockClock:
    autojump_clock.autojump_threshold = 0.02
    return autojump_clock


# -- the examples of the issue, and each kind of unreadable column -------------------------

UNRESTORABLE = [
    pytest.param("next_run_at", "0001-01-01T00:00:00.000000+00:00", "at", "OverflowError",
                 id="date-overflows-in-the-app-tz"),
    pytest.param("cron", DEEP, "cron", "RecursionError", id="cron-state-nested-100000-deep"),
    pytest.param("cron", cron_json(misfire_policy={"grace_seconds": 1e300}), "cron",
                 "OverflowError", id="grace-1e300-s"),
    pytest.param("cron", "{not json", "cron", "unreadable cron state", id="cron-not-json"),
    pytest.param("cron", cron_json(expression="61 * * * *"), "cron", "invalid cron",
                 id="cron-bad-expression"),
    pytest.param("next_run_at", "soon", "at", "unreadable row", id="date-not-a-date"),
    pytest.param("next_run_at", "2026-01-01T00:00:00", "at", "has no UTC offset", id="naive"),
    pytest.param("attempt", 0, "at", "attempt must be an integer >= 1", id="attempt-0"),
    pytest.param("attempt", "two", "at", "attempt must be an integer", id="attempt-text"),
    pytest.param("arguments", "text", "at", "arguments must be a blob", id="arguments-text"),
    pytest.param("arguments", b"\x80garbage", "at", "cannot decode", id="arguments-garbage"),
    pytest.param("arguments", DEEP.encode(), "at", "nested|recursion", id="arguments-deep"),
    pytest.param("trigger", "sometimes", "at", "unknown trigger", id="unknown-trigger"),
    pytest.param("state", "dozing", "at", "unknown trigger 'at' or state", id="unknown-state"),
    pytest.param("cron", b"{}", "cron", "cron must be text", id="cron-not-text"),
    pytest.param("task", b"rec", "at", "job_id and task must be text", id="task-not-text"),
]  # fmt: skip


@pytest.mark.parametrize(("column", "value", "trigger", "reason"), UNRESTORABLE)
async def test_an_unrestorable_row_is_kept_and_named_and_every_other_row_runs(
    tmp_path: Path, vclock: trio.testing.MockClock, column: str, value: Any, trigger: str,
    reason: str,
) -> None:  # fmt: skip
    db = new_db(tmp_path)
    bad = ("bad", "rec", trigger, AT, args_blob("bad"), 1, "scheduled",
           cron_json() if trigger == "cron" else None)  # fmt: skip
    insert(db, [good_row(i) for i in range(4)] + [bad])
    corrupt(db, "bad", column, value)
    ran, kept = await start_and_run(db, tz=timezone(timedelta(hours=-5)))
    assert sorted(ran) == [f"good-{i}" for i in range(4)]
    assert len(kept) == 1
    assert "1 stored job(s) were kept" in kept[0]
    assert "'bad'" in kept[0]
    assert re.search(reason, kept[0], re.IGNORECASE), kept[0]
    assert stored_ids(db) == {b"bad"}


async def test_text_that_is_not_utf8_keeps_only_its_row(
    tmp_path: Path, vclock: trio.testing.MockClock
) -> None:
    db = new_db(tmp_path)
    bad = ("bad", "rec", "at", AT, args_blob("bad"), 1, "scheduled", None)
    insert(db, [good_row(i) for i in range(3)] + [bad])
    corrupt(db, "bad", "task", b"\xff\xfe", as_text=True)
    corrupt(db, "bad", "job_id", b"bad-\xff", as_text=True)
    ran, kept = await start_and_run(db)
    assert sorted(ran) == ["good-0", "good-1", "good-2"]
    assert len(kept) == 1
    assert "bad-\\\\xff" in kept[0]
    assert "job_id and task must be text" in kept[0]
    assert stored_ids(db) == {b"bad-\xff"}


def test_row_to_job_rejects_each_kind_of_corrupt_column() -> None:
    good = ("j", "rec", "at", AT, b"{}", 2, "retrying", None, None, None)
    assert row_to_job(good) == StoredJob(
        job_id="j", task_name="rec", trigger=Trigger.AT, next_run_at=START + timedelta(seconds=1),
        arguments=b"{}", attempt=2, state="retrying",
    )  # fmt: skip
    cases: list[tuple[int, Any, type[Exception], str]] = [
        (0, b"j", TypeError, "job_id and task must be text"),
        (1, None, TypeError, "job_id and task must be text"),
        (2, "never", ValueError, "unknown trigger 'never'"),
        (3, "yesterday", ValueError, "Invalid isoformat"),
        (3, "2026-01-01T00:00:00", ValueError, "has no UTC offset"),
        (3, 1.5, TypeError, "must be str"),
        (4, "text", TypeError, "arguments must be a blob, got str"),
        (5, 0, ValueError, "attempt must be an integer >= 1, got 0"),
        (5, True, ValueError, "attempt must be an integer >= 1, got True"),
        (5, 1.0, ValueError, "attempt must be an integer >= 1, got 1.0"),
        (6, "asleep", ValueError, "or state 'asleep'"),
        (7, b"{}", TypeError, "cron must be text"),
        (9, "never", ValueError, "Invalid isoformat"),
        (11, 2, ValueError, "paused must be 0 or 1, got 2"),
        (11, "yes", ValueError, "paused must be 0 or 1"),
    ]
    for index, value, error, message in cases:
        raw = [*good, None, 0] if index == 11 else list(good)
        raw[index] = value
        if index == 9:
            raw[8] = "owner"
        with pytest.raises(error, match=message):
            row_to_job(tuple(raw))


async def test_a_cron_row_that_fails_to_restore_is_kept_and_other_crons_run(
    tmp_path: Path, vclock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cron row that fails once its job exists (here: arming its trigger) leaves nothing
    armed behind, is kept and named; the other cron runs."""
    db = new_db(tmp_path)
    insert(db, [
        (name, "rec", "cron", AT, args_blob(name), 1, "scheduled", cron_json())
        for name in ("cron-good", "cron-bad")
    ])  # fmt: skip
    arm_nowait = CronTriggers.arm_nowait

    def failing_arm(self: CronTriggers, job: Any, *args: Any, **kwargs: Any) -> None:
        arm_nowait(self, job, *args, **kwargs)
        if job.id == "cron-bad":
            raise OverflowError("date value out of range")

    monkeypatch.setattr(CronTriggers, "arm_nowait", failing_arm)
    app = Jobify(storage=SQLiteStorage(db), wall_clock=VirtualWallClock(START))
    ran: list[Any] = []

    @app.task(name="rec")
    async def rec(value: Any = None) -> None:
        ran.append(value)

    async def run() -> None:
        async with app:
            assert [job.id for job in app.get_active_jobs()] == ["cron-good"]
            await trio.sleep(150)

    reason = r"'cron-bad' \(task 'rec'\): cannot be restored: OverflowError: date value out"
    with pytest.warns(RestoreWarning, match=reason):
        await run()
    assert ran == ["cron-good", "cron-good"]
    assert stored_ids(db) == {b"cron-good", b"cron-bad"}


async def test_a_stored_row_whose_id_is_already_active_is_kept_and_named(
    vclock: trio.testing.MockClock,
) -> None:
    from test_storage_failures import MemoryStorage

    class TwoRowsOneId(MemoryStorage):
        async def load(self) -> LoadResult:
            await trio.lowlevel.checkpoint()
            at = START + timedelta(seconds=1)
            first, second = (
                StoredJob(job_id="same", task_name="rec", trigger=Trigger.AT, next_run_at=at,
                          arguments=args_blob(value))
                for value in ("first", "second")
            )  # fmt: skip
            return LoadResult(jobs=[first, second])

    app = Jobify(storage=TwoRowsOneId(), wall_clock=VirtualWallClock(START))
    ran: list[Any] = []

    @app.task(name="rec")
    async def rec(value: Any = None) -> None:
        ran.append(value)

    with pytest.warns(RestoreWarning, match="'same' .*a job with this id is already active"):
        async with app:
            await app.wait_all()
    assert ran == ["first"]


# -- the fuzz test ----------------------------------------------------------------------------

NOT_NULL = {"job_id", "task", "trigger", "next_run_at", "arguments", "attempt", "state"}
int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
dates = st.sampled_from([
    "0001-01-01T00:00:00.000000+00:00", "9999-12-31T23:59:59.999999+00:00",
    "2026-01-01T00:00:00", "2026-13-01T00:00:00+00:00", "", "now", AT,
    "9999-12-31T23:59:59.999999-14:00",
])  # fmt: skip
any_value = st.one_of(
    st.none(), int64, st.floats(allow_nan=True), texts, st.binary(max_size=40), dates
)
cron_texts = st.one_of(
    texts,
    st.just(DEEP),
    st.builds(
        cron_json,
        expression=st.sampled_from(["* * * * *", "* * * * * 1970", "bad", 5]),
        misfire_policy=st.sampled_from(["all", "skip", "once", "never", {"grace_seconds": 1e300},
                                        {"grace_seconds": -1}, {"grace_seconds": "x"}]),
        max_runs=st.one_of(st.none(), st.integers(-2, 3), texts),
        start_date=st.one_of(st.none(), dates),
        offset=dates,
        next_run_at=st.one_of(st.none(), dates),
        run_count=st.one_of(st.integers(-1, 2**70), texts),
    ),
)  # fmt: skip
arguments = st.one_of(
    st.binary(max_size=60),
    st.just(DEEP.encode()),
    st.sampled_from([b'{"v":1,"args":[],"kwargs":{"nope":1}}', b'{"v":9}', b"null",
                     b'{"v":1,"args":[{"$dataclass":["os:system",{}]}],"kwargs":{}}']),
    st.lists(st.integers(), max_size=3).map(lambda a: args_blob(*a)),
)  # fmt: skip


@st.composite
def corruptions(draw: st.DrawFn) -> tuple[str, Any, bool]:
    column = draw(st.sampled_from(COLUMNS))
    if column == "cron":
        return column, draw(st.one_of(st.none(), cron_texts, any_value)), False
    if column == "arguments":
        return column, draw(st.one_of(arguments, any_value)), False
    if draw(st.integers(0, 9)) == 0:
        return column, draw(st.binary(min_size=1, max_size=8)), True  # maybe invalid UTF-8
    value = draw(any_value)
    if column in NOT_NULL and value is None:
        value = ""
    return column, value, False


bad_rows = st.lists(
    st.tuples(st.sampled_from(["push", "at", "cron"]), st.lists(corruptions(), min_size=1,
                                                               max_size=3)),
    min_size=1,
    max_size=4,
)  # fmt: skip


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    bad=bad_rows,
    good=st.integers(min_value=1, max_value=4),
    offset=st.sampled_from([-12, 0, 5, 14]),
)
def test_fuzz_the_app_always_starts_and_every_good_row_runs(
    tmp_path_factory: pytest.TempPathFactory,
    bad: list[tuple[str, list[tuple[str, Any, bool]]]],
    good: int,
    offset: int,
) -> None:
    db = new_db(tmp_path_factory.mktemp("fuzz"))
    rows = [good_row(i) for i in range(good)]
    for n, (trigger, _) in enumerate(bad):
        cron = cron_json() if trigger == "cron" else None
        rows.append((f"bad-{n}", "rec", trigger, AT, args_blob(n), 1, "scheduled", cron))
    insert(db, rows)
    for n, (_, changes) in enumerate(bad):
        job_id = f"bad-{n}"
        for column, value, as_text in sorted(changes, key=lambda c: c[0] == "job_id"):
            corrupt(db, job_id, column, value, as_text=as_text)

    async def main() -> list[Any]:
        ran, _ = await start_and_run(db, tz=timezone(timedelta(hours=offset)))
        return ran

    clock = trio.testing.MockClock(autojump_threshold=0.02)
    ran = trio.run(main, clock=clock)
    for i in range(good):
        assert f"good-{i}" in ran
