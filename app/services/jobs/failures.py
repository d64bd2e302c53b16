"""Failure streaks of the job poller: how long a job's submission or status read has kept failing.

The poller retries a job whose round failed (Ray unreachable, Ray refusing the job, an error of its own) at the
next poll; :class:`FailureStreaks` counts the consecutive failures of each job and says when the streak is
exhausted — ``max_failures`` failures or ``max_seconds`` since the first, whichever comes first — so the job is
failed with the reason instead of waiting forever. A round that succeeds ends the streak.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Streak:
    """Consecutive failures of one job: how many, since when (``clock`` seconds), the latest reason."""

    count: int
    since: float
    reason: str

    @property
    def first(self) -> bool:
        return self.count == 1


class FailureStreaks:
    """The open failure streak of every job that has one."""

    def __init__(self, max_failures: int, max_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.max_seconds = max_seconds
        self.clock = clock
        self._open: dict[str, Streak] = {}

    def failed(self, job_id: str, reason: str) -> tuple[Streak, bool]:
        """Count one failure of ``job_id``: its streak and whether the streak is exhausted (then it is closed)."""
        now = self.clock()
        streak = self._open.setdefault(job_id, Streak(0, now, reason))
        streak.count += 1
        streak.reason = reason
        exhausted = streak.count >= self.max_failures or now - streak.since >= self.max_seconds
        if exhausted:
            del self._open[job_id]
        return streak, exhausted

    def elapsed(self, streak: Streak) -> float:
        return self.clock() - streak.since

    def succeeded(self, job_id: str) -> Streak | None:
        """End the streak of ``job_id``; the streak that ended, if there was one."""
        return self._open.pop(job_id, None)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._open
