"""Property test (hypothesis) of one-off scheduling against a simple model.

Operations mix ``push``, ``at``, ``delay`` (with and without ``replace``/``force``),
``cancel`` and advancing virtual time. Every job that is not cancelled must run exactly
once, at its exact virtual time, in time order, with the arguments the model says; and
``wait_all`` returns exactly when the model's last job is due.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import trio
import trio.testing
from _helpers import START, new_app
from hypothesis import given, settings
from hypothesis import strategies as st

from jobify_trio import Job
from jobify_trio.exceptions import DuplicateJobError

IDS = st.sampled_from(["a", "b", "c", None])


@st.composite
def operations(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    ops = []
    for _ in range(draw(st.integers(1, 25))):
        kind = draw(st.sampled_from(["push", "at", "delay", "cancel", "advance"]))
        if kind == "push":
            ops.append((kind, draw(IDS), draw(st.booleans()), draw(st.booleans())))
        elif kind == "at":
            offset = draw(st.integers(0, 12))
            ops.append((kind, draw(IDS), offset, draw(st.booleans()), draw(st.booleans())))
        elif kind == "delay":
            ops.append((kind, draw(IDS), draw(st.integers(0, 8)), draw(st.booleans())))
        elif kind == "cancel":
            ops.append((kind, draw(st.sampled_from(["a", "b", "c"]))))
        else:
            ops.append((kind, draw(st.integers(0, 6))))
    return ops


@dataclass
class Model:
    now: int = 0
    pending: dict[str, tuple[int, int]] = field(default_factory=dict)  # id -> (due, value)
    expected: list[tuple[int, str, int]] = field(default_factory=list)  # (time, id, value)
    fresh: int = 0

    def key(self, job_id: str | None) -> str:
        if job_id is not None:
            return job_id
        self.fresh += 1
        return f"fresh-{self.fresh}"

    def schedule(
        self, key: str, due: int, value: int, replace: bool, force: bool, *, push: bool
    ) -> str:
        """Returns 'dup', 'same' or 'new' (contract §4)."""
        if key in self.pending:
            if not replace:
                return "dup"
            if not force and (push or self.pending[key][0] == due):
                return "same"
        self.pending[key] = (due, value)
        return "new"

    def advance(self, seconds: int) -> None:
        self.now += seconds
        for key, (due, value) in sorted(self.pending.items(), key=lambda kv: kv[1][0]):
            if due <= self.now:
                self.expected.append((max(due, 0), key, value))
                del self.pending[key]


def run_scenario(ops: list[tuple[Any, ...]]) -> None:
    model = Model()
    app = new_app()
    runs: list[tuple[float, str, int]] = []

    @app.task(name="rec")
    async def rec(key: str, value: int) -> None:
        runs.append((trio.current_time(), key, value))

    async def main() -> None:
        async with app:
            for value, op in enumerate(ops):
                await apply(op, value)
                await trio.testing.wait_all_tasks_blocked()
                model.advance(0)
                assert sorted(app_keys()) == sorted(model.pending), op
            await app.wait_all()
            last = max([due for due, _ in model.pending.values()], default=model.now)
            assert trio.current_time() == max(last, model.now)
            model.advance(10**6)

    def app_keys() -> list[str]:
        return [j.id for j in app.get_active_jobs()]

    async def schedule(
        key: str, due: int, value: int, call: Any, replace: bool, force: bool, push: bool = False
    ) -> None:
        outcome = model.schedule(key, due, value, replace, force, push=push)
        try:
            job: Job[Any] = await call(key, value)
        except DuplicateJobError:
            assert outcome == "dup"
            return
        assert outcome != "dup"
        assert job.id == key

    async def apply(op: tuple[Any, ...], value: int) -> None:
        kind = op[0]
        if kind == "push":
            _, job_id, replace, force = op
            key = model.key(job_id)

            async def call(k: str, v: int) -> Job[Any]:
                return await rec.schedule(k, v).push(job_id=k, replace=replace, force=force)

            await schedule(key, model.now, value, call, replace, force, push=True)
        elif kind == "at":
            _, job_id, offset, replace, force = op
            key = model.key(job_id)

            async def call(k: str, v: int) -> Job[Any]:
                when = START + timedelta(seconds=offset)
                return await rec.schedule(k, v).at(when, job_id=k, replace=replace, force=force)

            await schedule(key, max(offset, model.now), value, call, replace, force)
        elif kind == "delay":
            _, job_id, seconds, replace = op
            key = model.key(job_id)

            async def call(k: str, v: int) -> Job[Any]:
                return await rec.schedule(k, v).delay(seconds, job_id=k, replace=replace)

            await schedule(key, model.now + seconds, value, call, replace, False)
        elif kind == "cancel":
            job = app.find_job(op[1])
            assert (job is not None) == (op[1] in model.pending)
            if job is not None:
                await job.cancel()
                del model.pending[op[1]]
        else:
            await trio.sleep(op[1])
            model.now += op[1]

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    # Jobs due at the same instant may run in either order; every run is exact and once.
    assert sorted(runs) == sorted((float(t), k, v) for t, k, v in model.expected)
    times = [t for t, _, _ in runs]
    assert times == sorted(times)


@settings(max_examples=300, deadline=None)
@given(operations())
def test_one_off_scheduling_matches_the_model(ops: list[tuple[Any, ...]]) -> None:
    run_scenario(ops)
