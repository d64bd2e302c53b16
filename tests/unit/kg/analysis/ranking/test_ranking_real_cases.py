"""The real-case ranking benchmark's case reader and metrics (benchmarks/ranking_real_cases.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.ranking_real_cases import Case, load_cases, paired_bootstrap, per_case, per_disease, phenokg_ranks
from kg.analysis.ranking import RankingIndex
from tests.unit.kg.analysis.ranking.test_ranking import A1, A1A, ALT_A1A, B1, OLD_A2, snapshot


@pytest.fixture(scope="module")
def index() -> RankingIndex:
    return RankingIndex.from_snapshot(snapshot())


def test_cases_are_resolved_and_unrankable_ones_counted(index: RankingIndex, tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    lines = [{"id": "a", "gold": "OMIM:1", "present": [ALT_A1A, "HP:9999999"], "absent": [B1, A1A]},
             {"id": "b", "gold": "OMIM:404", "present": [A1]},
             {"id": "c", "gold": "OMIM:2", "present": ["HP:9999998"]},
             {"id": "d", "gold": "OMIM:2", "present": [OLD_A2]}]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n", encoding="utf-8")
    loaded = load_cases(path, index)
    assert (loaded.total, loaded.skipped_gold, loaded.skipped_present, loaded.dropped_ids) == (4, 1, 1, 2)
    first, second = loaded.cases
    assert (first.present, first.absent) == ([A1A], [B1])   # alt id resolved; absent minus present
    assert second.present == ["HP:0000006"]                  # obsolete id replaced
    # among the OMIM diseases: A1a alone puts OMIM:1 first; the absent B1, which OMIM:2 excludes, lifts OMIM:2
    assert phenokg_ranks(index, loaded.cases, "likelihood", with_absent=False)[0] == 1.0
    assert phenokg_ranks(index, loaded.cases, "likelihood", with_absent=True)[0] == 2.0


def test_per_disease_metrics_weigh_each_disease_once() -> None:
    cases = [Case("1", "OMIM:1", 0, [], []), Case("2", "OMIM:1", 0, [], []), Case("3", "OMIM:2", 1, [], [])]
    ranks = [1.0, 1.0, 4.0]
    assert per_case(ranks).top1 == pytest.approx(2 / 3)
    d = per_disease(cases, ranks)
    assert (d.top1, d.top3, d.top10) == (pytest.approx(0.5), pytest.approx(0.5), pytest.approx(1.0))
    assert d.mrr == pytest.approx((1.0 + 0.25) / 2)
    diffs = paired_bootstrap(cases, ranks, [2.0, 2.0, 4.0], n=200)
    mean, lo, hi = diffs["top-1"]
    assert mean == pytest.approx(0.5) and lo <= mean <= hi
