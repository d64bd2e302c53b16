"""Failure streaks of the job poller: exhausted after N failures or T seconds, ended by a success."""

from __future__ import annotations

from app.services.jobs.failures import FailureStreaks


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_exhausted_after_max_failures() -> None:
    streaks = FailureStreaks(max_failures=3, max_seconds=1e9, clock=Clock())
    results = [(s.first, s.count, s.reason, exhausted)
               for s, exhausted in (streaks.failed("a", f"reason {i}") for i in range(3))]
    assert results == [(True, 1, "reason 0", False), (False, 2, "reason 1", False), (False, 3, "reason 2", True)]
    assert "a" not in streaks  # closed: a new failure opens a new streak
    assert streaks.failed("a", "again")[0].first


def test_exhausted_after_max_seconds() -> None:
    clock = Clock()
    streaks = FailureStreaks(max_failures=100, max_seconds=60, clock=clock)
    assert not streaks.failed("a", "x")[1]
    clock.now += 59
    streak, exhausted = streaks.failed("a", "x")
    assert not exhausted and streaks.elapsed(streak) == 59
    clock.now += 1
    assert streaks.failed("a", "x")[1]


def test_a_success_ends_the_streak_and_jobs_are_apart() -> None:
    streaks = FailureStreaks(max_failures=2, max_seconds=1e9, clock=Clock())
    streaks.failed("a", "x")
    streaks.failed("b", "y")
    ended = streaks.succeeded("a")
    assert ended is not None and ended.count == 1
    assert streaks.succeeded("a") is None
    assert not streaks.failed("a", "x")[1]  # counted afresh
    assert streaks.failed("b", "y")[1]  # b's streak went on
