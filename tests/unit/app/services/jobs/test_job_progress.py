"""The incremental reader of a training run's metrics.jsonl (no Ray, no database)."""

from __future__ import annotations

import json
from pathlib import Path

from app.services.jobs.progress import MetricsFollower, Progress


def _line(step: int, **extra: object) -> str:
    return json.dumps({"step": step, "total_steps": 10, "loss": 1.0 / step, **extra}) + "\n"


def test_reads_only_whole_lines_and_only_what_was_appended(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    follower = MetricsFollower(path)
    assert follower.read() == Progress()  # no file yet
    path.write_text(_line(1) + _line(2) + "not json\n" + json.dumps({"note": "no step"}) + "\n")
    seen = follower.read()
    assert (seen.step, seen.total_steps, seen.metrics) == (2, 10, {"loss": 0.5})
    assert [h["step"] for h in seen.history] == [1, 2]
    with path.open("a") as handle:
        handle.write(_line(3)[:-8])  # a line being written
    assert follower.read().step == 2
    with path.open("a") as handle:
        handle.write(_line(3)[-8:] + _line(4, lr=0.1, flag=True))
    seen = follower.read()
    assert seen.step == 4 and seen.metrics == {"loss": 0.25, "lr": 0.1}  # booleans are not metrics
    assert [h["step"] for h in seen.history] == [1, 2, 3, 4]


def test_history_is_thinned_and_keeps_the_latest_row(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    follower = MetricsFollower(path, points=4)
    path.write_text("".join(_line(s) for s in range(1, 21)))
    steps = [h["step"] for h in follower.read().history]
    assert len(steps) <= 5 and steps[0] == 1 and steps[-1] == 20
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    with path.open("a") as handle:  # more rows: still bounded, still ending at the latest
        handle.write("".join(_line(s) for s in range(21, 101)))
    steps = [h["step"] for h in follower.read().history]
    assert len(steps) <= 5 and steps[-1] == 100


def test_a_restarted_run_is_read_afresh(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    follower = MetricsFollower(path)
    path.write_text("".join(_line(s) for s in range(1, 6)))
    assert follower.read().step == 5
    path.write_text(_line(1))  # truncated and rewritten by a new attempt
    seen = follower.read()
    assert seen.step == 1 and [h["step"] for h in seen.history] == [1]
    replacement = tmp_path / "new.jsonl"
    replacement.write_text(_line(1) + _line(2) + _line(3) + _line(4) + _line(5) + _line(6))
    replacement.replace(path)  # a new file in its place, longer than what was read
    assert [h["step"] for h in follower.read().history] == [1, 2, 3, 4, 5, 6]
