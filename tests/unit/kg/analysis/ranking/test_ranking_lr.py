"""The likelihood-ratio ranking (method "likelihood") on the tiny hand-made snapshot of test_ranking: ratios by
hand, the ascertainment of absent phenotypes, excluded sets both ways, explanations that add up."""

from __future__ import annotations

import math

import pytest

from kg.analysis.ranking import DEFAULT_METHOD, LikelihoodParams, RankingIndex
from kg.analysis.snapshot import Annotation, DiseaseInfo
from kg.errors import ValidationError
from tests.unit.kg.analysis.ranking.test_ranking import A1, A1A, A2, B1, B2, A, B, snapshot

P = LikelihoodParams()
GAMMA, RHO, BETA, DELTA, LAM = (P.ascertainment, P.absent_reliability, P.excluded_absent_ratio,
                                P.indirect_discount, P.sampling_weight)


@pytest.fixture(scope="module")
def index() -> RankingIndex:
    return RankingIndex.from_snapshot(snapshot())


def ranked(index: RankingIndex, present: list[str], absent: list[str] | None = None, **kw: object) -> dict:
    return {r.id: r for r in index.rank(present, absent or [], limit=50, method="likelihood", **kw)}  # type: ignore[arg-type]


def test_likelihood_is_the_default_method() -> None:
    assert DEFAULT_METHOD == "likelihood"
    assert (P.contradiction_ratio, P.unexplained_ratio) == (0.01, 1.0)


def test_exact_match_ratio_by_hand(index: RankingIndex) -> None:
    # observed A1a (k = 1): only OMIM:1 has mass at A1a (share 1.0/1.5); the background is the mean over the
    # 3 diseases of v = share^λ, so OMIM:1's ratio at that level is v / (v/3) = 3
    got = ranked(index, [A1A])
    assert got["OMIM:1"].score == pytest.approx(math.log(3.0), abs=1e-6)
    e = got["OMIM:1"].explanation
    assert e is not None
    [m] = e.matched
    assert (m.observed, m.typical, m.how, m.likelihood_ratio) == (A1A, A1A, "exact", pytest.approx(3.0, abs=1e-3))
    assert m.contribution == pytest.approx(math.log(3.0), abs=1e-4)


def test_more_specific_observed_term_is_explained_at_the_ancestor_with_a_discount(index: RankingIndex) -> None:
    # observed A1b: OMIM:2 has it exactly; ORPHA:3 has A1 (f 0.8), so A1b is explained at A1, discounted by δ
    v = {"OMIM:1": (1 / 1.5) ** LAM, "OMIM:2": (0.5 / 1.5) ** LAM, "ORPHA:3": 1.0}
    mean_a1 = sum(v.values()) / 3
    expected = max(0.0, math.log(v["ORPHA:3"] / mean_a1) + math.log(DELTA))
    got = ranked(index, ["HP:0000005"])
    assert got["ORPHA:3"].score == pytest.approx(expected, abs=1e-6)
    assert got["OMIM:2"].score == pytest.approx(math.log(3.0), abs=1e-6)
    assert next(iter(got)) == "OMIM:2"


def test_observed_phenotype_the_disease_excludes(index: RankingIndex) -> None:
    got = ranked(index, [A2])
    assert got["OMIM:1"].score == pytest.approx(math.log(P.contradiction_ratio))
    e = got["OMIM:1"].explanation
    assert e is not None
    [c] = e.contradicted
    assert (c.observed, c.excluded, c.how) == (A2, A2, "exact")
    assert c.likelihood_ratio == pytest.approx(P.contradiction_ratio)
    assert list(got)[-1] == "OMIM:1"
    # without the exclusion evidence it is explained through A
    assert ranked(index, [A2], use_exclusions=False)["OMIM:1"].score > math.log(P.contradiction_ratio)


def test_absent_ratios_by_hand(index: RankingIndex) -> None:
    # absent B1: OMIM:1 shows B1 at 0.5 → γ(1 − ρ·0.5); OMIM:2 excludes B (above B1) → γβ; ORPHA:3 → 1
    n = {"OMIM:1": GAMMA * (1 - RHO * 0.5), "OMIM:2": GAMMA * BETA, "ORPHA:3": 1.0}
    mean = sum(n.values()) / 3
    with_absent, without = ranked(index, [A1A], [B1]), ranked(index, [A1A])
    for disease, numerator in n.items():
        assert with_absent[disease].score - without[disease].score == pytest.approx(math.log(numerator / mean),
                                                                                    abs=1e-6)
    e2 = with_absent["OMIM:2"].explanation
    assert e2 is not None
    [consistent] = e2.absent_consistent
    assert (consistent.absent, consistent.disease_term, consistent.how) == (B1, B, "descendant")


def test_absent_terms_below_one_excluded_term_count_once(index: RankingIndex) -> None:
    # OMIM:2 excludes B: absent B1 is evidence for it; absent B2, below the same excluded term, says nothing
    # more, so it moves OMIM:2 exactly as it moves ORPHA:3, which is silent about B2
    one, two = ranked(index, [A1A], [B1]), ranked(index, [A1A], [B1, B2])
    gain = {d: two[d].score - one[d].score for d in ("OMIM:2", "ORPHA:3")}
    assert gain["OMIM:2"] == pytest.approx(gain["ORPHA:3"], abs=1e-5) and gain["OMIM:2"] < 0
    e = two["OMIM:2"].explanation
    assert e is not None
    assert [a.absent for a in e.absent_consistent] == [B1]  # B2 is not listed, as for a silent disease
    assert e.absent_conflicting == []
    # OMIM:1 is silent about B2 too (its B2 row is not a phenotypic abnormality)
    assert two["OMIM:1"].score - one["OMIM:1"].score == pytest.approx(gain["ORPHA:3"], abs=1e-5)


def test_absent_obligate_feature_counts_against_and_a_partial_one_for() -> None:
    extra = {"OMIM:5": [Annotation(B1, 1.0, "P")], "OMIM:6": [Annotation(B1, 0.3, "P")],
             "OMIM:7": [Annotation(A1, 1.0, "P")]}
    idx = RankingIndex.from_snapshot(snapshot(
        extra_typical=extra, extra_diseases={d: DiseaseInfo(d, d, "OMIM") for d in extra}))
    base = ranked(idx, [B])
    got = ranked(idx, [B], [B1])
    delta = {d: got[d].score - base[d].score for d in extra}
    # relative to a disease silent about B1 (OMIM:7), an obligate B1 counts against, a 30 % one for
    assert delta["OMIM:5"] < delta["OMIM:7"] < delta["OMIM:6"]
    e5, e6 = got["OMIM:5"].explanation, got["OMIM:6"].explanation
    assert e5 is not None and e6 is not None
    assert [a.absent for a in e5.absent_conflicting] == [B1] and e5.absent_consistent == []
    assert [a.frequency for a in e6.absent_consistent] == [0.3]


def test_explanation_parts_add_up_to_the_score(index: RankingIndex) -> None:
    for r in index.rank([A1A, B1, A], [A2], limit=3):
        e = r.explanation
        assert e is not None
        total = e.parts.match + e.parts.contradiction + e.parts.absent_consistent + e.parts.absent_conflicting
        assert total == pytest.approx(r.score, abs=1e-5)
        explained = {m.observed for m in e.matched} | {c.observed for c in e.contradicted} | set(e.unmatched)
        assert explained == {A1A, B1, A}


def test_unknown_method_is_an_input_error(index: RankingIndex) -> None:
    with pytest.raises(ValidationError, match="unknown ranking method"):
        index.rank([A1], method="bogus")  # type: ignore[arg-type]


def test_methods_agree_on_the_obvious_case(index: RankingIndex) -> None:
    assert index.rank([A1], limit=1, method="likelihood")[0].id == index.rank([A1], limit=1, method="ic")[0].id
