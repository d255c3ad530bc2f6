"""The failover checker allows a duplicate run only with the earlier runner's own record
of a lease lapse (``tests/_failover_check.py``)."""

from __future__ import annotations

from _failover_check import Records, Run, check_jobs, lost_lease


def records(runs: list[Run], lapses: dict[int, list[tuple[float, float]]]) -> Records:
    found = Records()
    found.runs["j1"] = runs
    found.lapses.update(lapses)
    return found


def test_a_duplicate_after_the_earlier_runners_lapse_is_allowed() -> None:
    runs = [Run(pid=1, start=10.0, end=10.5), Run(pid=2, start=11.2, end=11.4)]
    assert lost_lease(runs, {1: [(11.0, 11.6)]})
    problems, duplicates, stalled = check_jobs({"j1"}, records(runs, {1: [(11.0, 11.6)]}), [])
    assert (problems, duplicates, stalled) == ([], 1, 1)


def test_a_duplicate_without_a_lapse_or_after_another_process_lapse_is_a_problem() -> None:
    runs = [Run(pid=1, start=10.0, end=10.5), Run(pid=2, start=11.2, end=11.4)]
    for lapses in [{}, {2: [(11.0, 11.6)]}, {1: [(13.0, 13.5)]}, {1: [(5.0, 6.0)]}]:
        assert not lost_lease(runs, lapses)
        problems, duplicates, stalled = check_jobs({"j1"}, records(runs, lapses), [])
        assert (duplicates, stalled) == (1, 0)
        assert any("ran again though no killed worker held it" in p for p in problems)
