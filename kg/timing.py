"""Stage timings for reports: ``lap("stage")`` records the seconds since the previous lap."""

from __future__ import annotations

import time


class StageTimer:
    """Writes each stage's wall time (seconds, 3 decimals) into ``timings`` under the stage's name."""

    def __init__(self, timings: dict[str, float]) -> None:
        self.timings = timings
        self._clock = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = round(now - self._clock, 3)
        self._clock = now
