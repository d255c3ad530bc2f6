"""One instance on a store that can share behaves as a lone instance; SharingOptions."""

from __future__ import annotations

import pytest
import trio
from _helpers import START
from _sharing_helpers import LEASE, Instance
from trio.testing import MockClock

from jobify_trio import Jobify, JobStatus, SharingOptions
from jobify_trio.testing import MemoryStorage, VirtualWallClock


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"lease": 0}, "lease must be a number > 0"),
        ({"lease": True}, "lease must be a number > 0"),
        ({"poll_interval": -1}, "poll_interval must be a number > 0"),
        ({"lease": 3, "heartbeat_interval": 3}, "must be shorter than the lease"),
        ({"instance_id": ""}, "instance_id must be a non-empty str"),
        ({"lease": 60, "slot_claim_retention": 30}, "slot_claim_retention must be longer"),
        ({"slot_claim_lead": -0.1}, "slot_claim_lead must be a number >= 0"),
        ({"slot_claim_lead": "1"}, "slot_claim_lead must be a number >= 0"),
        ({"lease": 2, "slot_claim_lead": 2}, "slot_claim_lead .* must be shorter than the lease"),
    ],
)
def test_sharing_options_are_validated(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SharingOptions(**options)  # type: ignore[arg-type]


def test_sharing_options_defaults() -> None:
    options = SharingOptions()
    assert (options.lease, options.beat, options.poll_interval) == (30.0, 10.0, 1.0)
    assert options.result_retention == 86_400.0
    assert options.slot_claim_retention == 7 * 86_400.0
    assert options.slot_claim_lead == 0.5
    assert SharingOptions(slot_claim_lead=0).slot_claim_lead == 0
    assert SharingOptions(lease=9, heartbeat_interval=1).beat == 1


def test_sharing_must_be_sharing_options() -> None:
    with pytest.raises(TypeError, match="sharing must be a SharingOptions"):
        Jobify(sharing={"lease": 3})  # type: ignore[arg-type]


async def test_a_lone_instance_runs_everything_itself(autojump_clock: MockClock) -> None:
    store, clock, ran = MemoryStorage(), VirtualWallClock(START), []
    a = Instance("A", store, clock, ran)
    async with a.app:
        assert list(store.instance_rows) == ["A"]
        pushed = await a.tasks["work"].push("p")
        later = await a.tasks["work"].schedule("l").delay(5)
        retried = await a.tasks["flaky"].push("r")
        failed = await a.tasks["fail"].push("f")
        cron = await a.tick.schedule().cron("* * * * * * *", job_id="c")
        assert a.app.find_job(later.id) is later
        assert await pushed == "p-done"
        assert await later == "l-done"
        assert await retried == "ok"
        await failed.wait()
        assert failed.status is JobStatus.FAILED
        await trio.sleep(10)
        await cron.cancel()
    assert list(store.instance_rows) == []  # a clean stop unregisters
    assert store.rows == {}
    assert store.results == {}  # nobody else was live: no result was stored
    assert {name for name, _, _ in ran} == {"A"}


async def test_a_lone_instance_restarted_runs_the_stored_jobs(autojump_clock: MockClock) -> None:
    store, clock, ran = MemoryStorage(), VirtualWallClock(START), []
    a = Instance("A", store, clock, ran)
    async with a.app:
        await a.tasks["work"].schedule("later").delay(10)
        await a.tasks["work"].push("now", 5.0)
        await a.tick.schedule().cron("*/5 * * * * * *", job_id="c")
        await trio.sleep(1)
    assert len(store.rows) == 3
    restarted = Instance("A2", store, clock, ran)
    async with restarted.app:
        await trio.sleep(LEASE + 20)
        await restarted.app.get_active_jobs()[0].cancel()  # the cron
    names = [(name, tag) for name, tag, _ in ran]
    assert ("A2", "later") in names
    assert ("A2", "now") in names
    assert ("A2", "tick") in names
    assert store.rows == {}
