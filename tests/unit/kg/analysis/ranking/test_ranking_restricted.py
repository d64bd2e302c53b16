"""The ranking API image retrieval uses: an index of a few sources only (its own likelihood background), queries
of absent phenotypes only (``require_present=False``), absences not ascertained by clinical suspicion
(``LikelihoodParams(ascertainment=1.0)``), and grouping terms that never support a disease. On the tiny hand-made
snapshot of test_ranking plus three findings of a made-up pack source."""

from __future__ import annotations

import math

import pytest

from kg.analysis.ranking import METHODS, LikelihoodParams, RankedDisease, RankingIndex
from kg.analysis.snapshot import Annotation, DiseaseInfo, GraphSnapshot
from kg.errors import ValidationError
from tests.unit.kg.analysis.ranking.test_ranking import A1, A1A, A2, B1, PA, A, snapshot

PACK = "CXR_PACK"
# CXR:a shows A1a always and B1 a quarter of the time; CXR:b always shows A2; CXR:none shows nothing and excludes A
# (like "No finding", whose excluded set lists every abnormality).
FINDINGS = {
    "CXR:a": DiseaseInfo("CXR:a", "Finding a", PACK),
    "CXR:b": DiseaseInfo("CXR:b", "Finding b", PACK),
    "CXR:none": DiseaseInfo("CXR:none", "No finding", PACK),
}
TYPICAL = {"CXR:a": [Annotation(A1A, 1.0, "P"), Annotation(B1, 0.25, "P")], "CXR:b": [Annotation(A2, 1.0, "P")]}
EXCLUDED = {"CXR:none": [A]}
RHO = LikelihoodParams().absent_reliability
LAM = LikelihoodParams().sampling_weight
IMAGE = LikelihoodParams(ascertainment=1.0)


def pack_snapshot(**extra_typical: list[Annotation]) -> GraphSnapshot:
    findings = dict(FINDINGS)
    findings.update({d: DiseaseInfo(d, d, PACK) for d in extra_typical})
    return snapshot(extra_typical={**TYPICAL, **extra_typical}, extra_excluded=EXCLUDED, extra_diseases=findings)


@pytest.fixture(scope="module")
def full() -> RankingIndex:
    return RankingIndex.from_snapshot(pack_snapshot())


@pytest.fixture(scope="module")
def pack() -> RankingIndex:
    return RankingIndex.from_snapshot(pack_snapshot(), sources=["cxr_pack"], likelihood=IMAGE)


def by_id(results: list[RankedDisease]) -> dict[str, RankedDisease]:
    return {r.id: r for r in results}


def test_a_restricted_index_holds_and_ranks_only_its_sources(full: RankingIndex, pack: RankingIndex) -> None:
    assert pack.disease_ids == ["CXR:a", "CXR:b", "CXR:none"]
    assert set(pack.sources) == {PACK}
    assert pack.likelihood == IMAGE
    assert {r.id for r in pack.rank([A1A], limit=50)} == set(pack.disease_ids)
    assert pack.rank([A1A], sources=["OMIM"]) == []
    # the full index is the default, unchanged: every disease, default constants
    assert full.disease_ids == sorted([*FINDINGS, "OMIM:1", "OMIM:2", "ORPHA:3"])
    assert full.likelihood == LikelihoodParams()
    assert RankingIndex.from_snapshot(pack_snapshot(), sources=None).disease_ids == full.disease_ids


def test_the_likelihood_background_is_the_restricted_candidates(full: RankingIndex, pack: RankingIndex) -> None:
    # observed A1a (k = 1): among the 3 findings only CXR:a has mass at A1a (share 1/1.25), so its ratio is
    # v / (v / 3) = 3; in the full index OMIM:1 has A1a too (share 1/1.5), and the background is the mean of v
    # over the 6 diseases
    got = by_id(pack.rank([A1A], limit=50))
    assert got["CXR:a"].score == pytest.approx(math.log(3.0), abs=1e-6)
    assert got["CXR:b"].score == 0.0  # silent: unexplained, ratio 1
    assert got["CXR:none"].score == pytest.approx(math.log(IMAGE.contradiction_ratio))  # A1a is below A
    v_a, v_omim1 = (1 / 1.25) ** LAM, (1 / 1.5) ** LAM
    mean = (v_a + v_omim1) / 6
    assert by_id(full.rank([A1A], limit=50))["CXR:a"].score == pytest.approx(math.log(v_a / mean), abs=1e-6)


def test_an_absent_only_query_is_scored(pack: RankingIndex) -> None:
    with pytest.raises(ValidationError, match="present"):
        pack.rank([], [A2])
    with pytest.raises(ValidationError, match="no known present"):
        pack.rank_query([], [A2])
    # absent A2, γ = 1: CXR:b always shows it (n = 1 − ρ·0.999); CXR:none excludes A, above A2 (n = β);
    # CXR:a is silent about it (n = 1)
    n = {"CXR:a": 1.0, "CXR:b": 1 - RHO * 0.999, "CXR:none": IMAGE.excluded_absent_ratio}
    mean = sum(n.values()) / 3
    ranked = pack.rank([], [A2], limit=50, require_present=False)
    assert [r.id for r in ranked] == ["CXR:none", "CXR:a", "CXR:b"]
    for r in ranked:
        assert r.score == pytest.approx(math.log(n[r.id] / mean), abs=1e-6)
    e = by_id(ranked)["CXR:b"].explanation
    assert e is not None and [a.absent for a in e.absent_conflicting] == [A2] and e.matched == []
    query = pack.rank_query([], [A2, "HP:0000011"], limit=50, require_present=False)  # obsolete id → A2
    assert query.present.ids == [] and query.absent.ids == [A2]
    assert [r.score for r in query.results] == [r.score for r in ranked]
    assert pack.rank([], [A2], limit=1, method="ic", require_present=False)[0].id == "CXR:none"


def test_an_empty_query_lists_the_candidates_in_a_stable_order(pack: RankingIndex, full: RankingIndex) -> None:
    for index in (pack, full):
        for method in METHODS:
            ranked = index.rank([], [], limit=50, method=method, require_present=False)
            assert [r.id for r in ranked] == index.disease_ids
            assert all(r.score == 0.0 for r in ranked)
    only_pack = full.rank([], sources=[PACK], limit=50, require_present=False)
    assert [r.id for r in only_pack] == list(FINDINGS)


def test_with_ascertainment_1_an_absent_typical_feature_counts_against() -> None:
    snap = pack_snapshot()
    clinical = RankingIndex.from_snapshot(snap, sources=[PACK])  # γ = 8: tuned on clinicians' reports
    image = RankingIndex.from_snapshot(snap, sources=[PACK], likelihood=IMAGE)
    # absent B1, which CXR:a shows a quarter of the time; the other two findings are silent about it
    for index, gamma in ((clinical, 8.0), (image, 1.0)):
        n = {"CXR:a": gamma * (1 - RHO * 0.25), "CXR:b": 1.0, "CXR:none": 1.0}
        mean = sum(n.values()) / 3
        got = by_id(index.rank([A1A], [B1], limit=50))
        base = by_id(index.rank([A1A], limit=50))
        for d, numerator in n.items():
            assert got[d].score - base[d].score == pytest.approx(math.log(numerator / mean), abs=1e-6)
    # a clinician who records the absence suspected the finding: it counts for CXR:a ...
    e = by_id(clinical.rank([A1A], [B1]))["CXR:a"].explanation
    assert e is not None and [a.absent for a in e.absent_consistent] == [B1]
    # ... an image model that did not see it says it is missing: it counts against CXR:a, and below the silent
    e = by_id(image.rank([A1A], [B1]))["CXR:a"].explanation
    assert e is not None and [a.absent for a in e.absent_conflicting] == [B1] and e.absent_consistent == []
    assert e.absent_conflicting[0].contribution < 0
    absent_only = by_id(image.rank([], [B1], limit=50, require_present=False))
    assert absent_only["CXR:a"].score < absent_only["CXR:b"].score == absent_only["CXR:none"].score


def test_a_grouping_term_never_supports_a_disease() -> None:
    # HP:0000118 "Phenotypic abnormality" (IC 0 here, ≈ 0 in HPO) explains nothing: observed, it scores 0 for
    # every disease, even for one annotated with it (obligate) or with nothing else below it
    snap = pack_snapshot(**{"CXR:vague": [Annotation(PA, 1.0, "P")]})
    for sources in (None, [PACK]):
        for likelihood in (None, IMAGE):
            index = RankingIndex.from_snapshot(snap, sources=sources, likelihood=likelihood)
            for method in METHODS:
                ranked = index.rank([PA], limit=50, method=method)
                assert all(r.score == 0.0 for r in ranked), (sources, method)
                assert [r.id for r in ranked] == index.disease_ids  # all tied: disease id order
                for r in ranked:
                    assert r.explanation is not None and r.explanation.unmatched == [PA]
                # beside a real observation it adds nothing to any disease
                for r in index.rank([A1, PA], limit=50, method=method):
                    assert r.explanation is not None and PA not in {m.observed for m in r.explanation.matched}
            assert by_id(index.rank([A1A, PA], limit=50))["CXR:vague"].score == 0.0
