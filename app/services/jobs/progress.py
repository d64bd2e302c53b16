"""A run's progress from its ``metrics.jsonl``, read incrementally.

The poller looks at every live job every few seconds; a long run that logs every step writes a file of
hundreds of thousands of lines, so :class:`MetricsFollower` reads only the bytes appended since its last
call (whole lines only: a line being written is read next time) and keeps a history thinned to at most
``points`` rows by doubling its stride, plus the latest row.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

HISTORY_POINTS: Final = 500


def numeric(row: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of a metrics row, less its step counters."""
    return {k: float(v) for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
            and k not in ("step", "total_steps") and math.isfinite(float(v))}


@dataclass(frozen=True)
class Progress:
    step: int = 0
    total_steps: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)


class MetricsFollower:
    """Follows one ``metrics.jsonl``; a file that shrinks or is replaced (a restarted run) is read afresh."""

    def __init__(self, path: Path, points: int = HISTORY_POINTS) -> None:
        self.path = path
        self.points = max(1, points)
        self._reset(None)

    def _reset(self, identity: tuple[int, int] | None) -> None:
        self._identity = identity
        self._offset = 0
        self._seen = 0
        self._stride = 1
        self._kept: list[dict[str, Any]] = []
        self._last: dict[str, Any] | None = None

    def _add(self, row: dict[str, Any]) -> None:
        if self._seen % self._stride == 0:
            self._kept.append(row)
            if len(self._kept) > self.points:
                self._kept = self._kept[::2]
                self._stride *= 2
        self._seen += 1
        self._last = row

    def read(self) -> Progress:
        """Take in what was appended since the last call; the progress so far."""
        try:
            with self.path.open("rb") as handle:
                stat = os.fstat(handle.fileno())
                identity = (stat.st_dev, stat.st_ino)
                if identity != self._identity or stat.st_size < self._offset:
                    self._reset(identity)
                handle.seek(self._offset)
                data = handle.read()
        except OSError:
            data = b""
        complete = data[:data.rfind(b"\n") + 1]
        self._offset += len(complete)
        for line in complete.splitlines():
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(row, dict) and isinstance(row.get("step"), int):
                self._add(row)
        last = self._last
        if last is None:
            return Progress()
        rows = self._kept + ([] if self._kept and self._kept[-1] is last else [last])
        history = [{"step": int(r["step"]), **numeric(r)} for r in rows]
        return Progress(int(last["step"]), int(last.get("total_steps") or 0), numeric(last), history)
