"""One row per disease (``group=True``): an OMIM entry and its Orphanet twin ranked as one row, on the tiny
hand-made snapshot of test_ranking plus ORPHA:10, the Orphanet twin of OMIM:1 ("Disease one")."""

from __future__ import annotations

import numpy as np
import pytest

from kg.analysis.ranking import (
    EquivalentEntry,
    RankedDisease,
    RankingIndex,
    RankingParams,
    group_results,
    group_rows,
    merge_group,
)
from kg.analysis.snapshot import Annotation, DiseaseInfo, GraphSnapshot
from tests.unit.kg.analysis.ranking.test_ranking import A1A, B1, B2, snapshot

TWIN = "ORPHA:10"


def twin_snapshot() -> GraphSnapshot:
    return snapshot(extra_typical={TWIN: [Annotation(A1A, 1.0, "P"), Annotation(B2, 0.9, "P")]},
                    extra_diseases={TWIN: DiseaseInfo(TWIN, "Disease one", "ORPHA")})


@pytest.fixture(scope="module")
def pooled() -> RankingIndex:
    return RankingIndex.from_snapshot(twin_snapshot())


@pytest.fixture(scope="module")
def unpooled() -> RankingIndex:
    return RankingIndex.from_snapshot(twin_snapshot(), RankingParams(pool_equivalents=False))


def test_twins_are_one_row_with_the_omim_id_and_the_best_score(pooled: RankingIndex) -> None:
    assert pooled.equivalents == {"OMIM:1": TWIN}
    raw = pooled.rank([A1A], limit=50)
    raw_score = {r.id: r.score for r in raw}
    assert {"OMIM:1", TWIN} <= set(raw_score)
    grouped = pooled.rank([A1A], limit=50, group=True)
    ids = [r.id for r in grouped]
    assert TWIN not in ids and ids.count("OMIM:1") == 1
    assert len(grouped) == len(raw) - 1
    assert [r.rank for r in grouped] == list(range(1, len(grouped) + 1))   # renumbered
    row = grouped[ids.index("OMIM:1")]
    assert row.score == max(raw_score["OMIM:1"], raw_score[TWIN])
    assert row.equivalents == (EquivalentEntry(TWIN, "Disease one", "ORPHA", raw_score[TWIN]),)
    assert row.pooled_with == TWIN
    # the grouped order is the raw order with the second entry of the pair left out
    first_of_pair = min(ids_raw.index(d) for ids_raw in [[r.id for r in raw]] for d in ("OMIM:1", TWIN))
    kept = [r.id for i, r in enumerate(raw) if r.id not in ("OMIM:1", TWIN) or i == first_of_pair]
    assert [("OMIM:1" if i == TWIN else i) for i in kept] == ids
    # the raw list is unchanged by default: no equivalents, ranks as before
    assert all(r.equivalents == () and r.score_from is None for r in raw)


def test_limit_counts_rows(pooled: RankingIndex) -> None:
    everything = pooled.rank([A1A], limit=50, group=True)
    for limit in (1, 2, 3):
        got = pooled.rank([A1A], limit=limit, group=True)
        assert [r.id for r in got] == [r.id for r in everything[:limit]]
    assert len({r.id for r in pooled.rank([A1A], limit=2, group=True)}) == 2


def test_a_better_orphanet_twin_gives_its_score_and_explanation(unpooled: RankingIndex) -> None:
    # not pooled: OMIM:1 has B1 only in that branch, its twin has B2 itself; the pair is still one row
    assert unpooled.pooled_from == {} and unpooled.equivalents == {"OMIM:1": TWIN}
    raw = {r.id: r for r in unpooled.rank([B2], limit=50)}
    assert raw[TWIN].score > raw["OMIM:1"].score
    row = next(r for r in unpooled.rank([B2], limit=50, group=True) if r.id == "OMIM:1")
    assert (row.name, row.source, row.score, row.score_from) == ("Disease one", "OMIM", raw[TWIN].score, TWIN)
    assert row.explanation is not None and [m.typical for m in row.explanation.matched] == [B2]
    assert row.equivalents == (EquivalentEntry(TWIN, "Disease one", "ORPHA", raw[TWIN].score),)
    assert row.pooled_with is None


def test_a_source_filter_leaves_a_twin_alone(pooled: RankingIndex) -> None:
    orpha = pooled.rank([A1A], sources=["ORPHA"], limit=50, group=True)
    assert TWIN in [r.id for r in orpha]
    assert all(r.equivalents == () for r in orpha)
    query = pooled.rank_query([A1A], [B1], group=True, limit=50)
    assert [r.id for r in query.results].count("OMIM:1") == 1 and TWIN not in [r.id for r in query.results]


def _row(id_: str, score: float, source: str | None = None) -> RankedDisease:
    return RankedDisease(0, id_, id_.lower(), source or id_.split(":")[0], score)


def test_group_results_on_a_list_at_hand() -> None:
    raw = [_row("ORPHA:7", 5.0), _row("OMIM:3", 4.0), _row("OMIM:7", 3.0), _row("ORPHA:9", 1.0)]
    grouped = group_results(raw, {"OMIM:7": "ORPHA:7", "OMIM:9": "ORPHA:9"})
    assert [(r.rank, r.id, r.score, r.score_from) for r in grouped] == [
        (1, "OMIM:7", 5.0, "ORPHA:7"), (2, "OMIM:3", 4.0, None), (3, "ORPHA:9", 1.0, None)]
    assert grouped[0].equivalents == (EquivalentEntry("ORPHA:7", "orpha:7", "ORPHA", 5.0),)
    assert [r.id for r in group_results(raw, {"OMIM:7": "ORPHA:7"}, limit=1)] == ["OMIM:7"]


def test_group_rows_reads_the_order_only_as_far_as_needed() -> None:
    seen: list[int] = []

    def order() -> object:
        for row in (4, 0, 2, 1, 3):
            seen.append(row)
            yield row

    candidate = np.array([True, True, True, False, True])
    partner = {0: 1, 1: 0, 2: 3, 3: 2}
    assert group_rows(order(), partner, candidate, 2) == [(4,), (0, 1)]  # type: ignore[arg-type]
    assert seen == [4, 0]
    # a partner that is not a candidate (row 3) stays out; an already grouped row is skipped
    assert group_rows([0, 2, 1, 4], partner, candidate, 10) == [(0, 1), (2,), (4,)]
    with pytest.raises(ValueError):
        merge_group(1, [])


def test_a_same_name_pair_the_gene_rule_does_not_pool_is_still_one_row() -> None:
    # Marfan's case: FBN1 also points to "Neonatal Marfan syndrome", so the pair is not pooled, but one disease
    extra = {"OMIM:20": DiseaseInfo("OMIM:20", "Marfan syndrome", "OMIM", ("FBN1",)),
             "ORPHA:20": DiseaseInfo("ORPHA:20", "Marfan syndrome", "ORPHA", ("FBN1",)),
             "ORPHA:21": DiseaseInfo("ORPHA:21", "Neonatal Marfan syndrome", "ORPHA", ("FBN1",))}
    typical = {d: [Annotation(B2, 0.9, "P")] for d in extra}
    index = RankingIndex.from_snapshot(snapshot(extra_typical=typical, extra_diseases=extra))
    assert "OMIM:20" not in index.pooled_from and index.equivalents["OMIM:20"] == "ORPHA:20"
    rows = index.rank([B2], limit=50, group=True)
    ids = [r.id for r in rows]
    assert "ORPHA:20" not in ids and "ORPHA:21" in ids
    assert [e.id for e in rows[ids.index("OMIM:20")].equivalents] == ["ORPHA:20"]
