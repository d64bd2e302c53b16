"""Disease ranking on a tiny hand-made snapshot (no database): the formula by hand, excluded and absent
evidence both ways, the source filter, id resolution, explanations and deterministic ties."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from kg.analysis.ontology import OntologyView
from kg.analysis.ranking import RankedDisease, RankedQuery, RankingIndex, RankingParams
from kg.analysis.snapshot import Annotation, DiseaseInfo, GraphSnapshot
from kg.errors import ValidationError
from kg.terms import TermRow

# All ─ PA ─┬─ A ─┬─ A1 ─┬─ A1a (alt id HP:0000010)
#           │     │      └─ A1b
#           │     └─ A2           (HP:0000011: obsolete, replaced by A2)
#           └─ B ─┬─ B1
#                 └─ B2
ALL, PA, A, A1, A1A, A1B, A2, B, B1, B2 = (f"HP:{i:07d}" for i in (1, 118, 2, 3, 4, 5, 6, 7, 8, 9))
ALT_A1A, OLD_A2 = "HP:0000010", "HP:0000011"
PARENTS = {PA: [ALL], A: [PA], A1: [A], A1A: [A1], A1B: [A1], A2: [A], B: [PA], B1: [B], B2: [B]}
IC = {ALL: 0.0, PA: 0.0, A: 1.0, A1: 2.0, A1A: 3.0, A1B: 3.5, A2: 2.5, B: 1.0, B1: 2.0, B2: 2.2}
LAMBDA = 0.5
KAPPA = math.log(100)
BETA = math.log(5)
RHO = 0.9


def snapshot(extra_typical: dict[str, list[Annotation]] | None = None,
             extra_excluded: dict[str, list[str]] | None = None,
             extra_diseases: dict[str, DiseaseInfo] | None = None) -> GraphSnapshot:
    rows = [TermRow(id=ALL, name="All")]
    rows += [TermRow(id=t, name=f"term {t[-2:]}", parents=tuple(p), alt_ids=((ALT_A1A,) if t == A1A else ()))
             for t, p in PARENTS.items()]
    rows.append(TermRow(id=OLD_A2, name="obsolete", obsolete=True, replaced_by=A2))
    view = OntologyView.from_rows(rows)
    view.ic = dict(IC)
    diseases = {
        "OMIM:1": DiseaseInfo("OMIM:1", "Disease one", "OMIM"),
        "OMIM:2": DiseaseInfo("OMIM:2", "Disease two", "OMIM"),
        "ORPHA:3": DiseaseInfo("ORPHA:3", "Disease three", "ORPHA"),
        **(extra_diseases or {}),
    }
    typical = {
        "OMIM:1": [Annotation(A1A, 1.0, "P"), Annotation(B1, 0.5, "P"), Annotation(B2, None, "I")],  # I: ignored
        "OMIM:2": [Annotation(A1B, None, "P"), Annotation(A2, 1.0, "P")],
        "ORPHA:3": [Annotation(A1, 0.8, "P")],
        **(extra_typical or {}),
    }
    excluded = {"OMIM:1": [A2], "OMIM:2": [B], **(extra_excluded or {})}
    return GraphSnapshot(stamp="test", view=view, terms={}, diseases=diseases, typical=typical, excluded=excluded)


class ICMethod:
    """A RankingIndex whose rank / rank_query default to ``method="ic"``: this module checks that score by hand
    (the likelihood-ratio method has its own tests in test_ranking_lr.py)."""

    def __init__(self, inner: RankingIndex) -> None:
        self.inner = inner

    def rank(self, *args: Any, **kw: Any) -> list[RankedDisease]:
        return self.inner.rank(*args, **{"method": "ic", **kw})

    def rank_query(self, *args: Any, **kw: Any) -> RankedQuery:
        return self.inner.rank_query(*args, **{"method": "ic", **kw})

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(scope="module")
def index() -> RankingIndex:
    return ICMethod(RankingIndex.from_snapshot(snapshot()))  # type: ignore[return-value]


def scores(index: RankingIndex, present: list[str], absent: list[str] | None = None, **kw: object) -> dict[str, float]:
    ranked = index.rank(present, absent or [], limit=50, **kw)  # type: ignore[arg-type]
    return {r.id: r.score for r in ranked}


def value(ic: float, share: float, k: int = 1) -> float:
    return ic + LAMBDA * min(0.0, math.log(k * share))


def test_defaults_are_the_documented_constants() -> None:
    p = RankingParams()
    assert (p.size_exponent, p.contradiction, p.absent_bonus, p.absent_reliability, p.default_frequency) == (
        LAMBDA, KAPPA, BETA, RHO, 0.5)
    assert p.aspects == frozenset({"P"})


def test_match_scores_by_hand(index: RankingIndex) -> None:
    got = scores(index, [A1A])
    # OMIM:1: F = 1.0 + 0.5; A1a exact, share 1.0/1.5
    assert got["OMIM:1"] == pytest.approx(value(3.0, 1.0 / 1.5), abs=1e-6)
    # ORPHA:3: only A1 (f 0.8): A1a is more specific than it, explained at A1 with share 1
    assert got["ORPHA:3"] == pytest.approx(2.0, abs=1e-6)
    # OMIM:2: A1b (default 0.5) and A2 (1.0), F = 1.5: best level A1 (share 0.5/1.5) vs A (share 1, IC 1)
    assert got["OMIM:2"] == pytest.approx(max(value(2.0, 0.5 / 1.5), 1.0), abs=1e-6)
    assert [r.id for r in index.rank([A1A])] == ["OMIM:1", "ORPHA:3", "OMIM:2"]


def test_k_scales_the_size_penalty(index: RankingIndex) -> None:
    # two present terms: k = 2, so the share of each is doubled (capped at 1)
    got = scores(index, [A1A, B1])
    expected = value(3.0, 1.0 / 1.5, 2) + value(2.0, 0.5 / 1.5, 2)
    assert got["OMIM:1"] == pytest.approx(expected, abs=1e-6)


def test_vaguer_observed_term_matches_as_ancestor(index: RankingIndex) -> None:
    [first] = index.rank([A1], limit=1)
    assert first.id == "ORPHA:3"  # exact A1
    explanation = index.rank([A1], sources=["OMIM"], limit=1)[0].explanation
    assert explanation is not None
    [m] = explanation.matched
    assert (m.observed, m.typical, m.how, m.mica) == (A1, A1A, "ancestor", A1)
    assert m.frequency == 1.0


def test_excluded_set_demotes_a_disease(index: RankingIndex) -> None:
    got = scores(index, [A2])
    assert got["OMIM:1"] == pytest.approx(-KAPPA)             # OMIM:1 excludes A2: no match, penalty
    assert got["OMIM:2"] == pytest.approx(value(2.5, 1.0 / 1.5))
    assert got["ORPHA:3"] == pytest.approx(1.0)               # explained at A (share 1)
    assert [r.id for r in index.rank([A2])] == ["OMIM:2", "ORPHA:3", "OMIM:1"]
    # without the evidence, OMIM:1 is explained at A (IC 1), where it has A1a: share 1.0 / 1.5
    assert scores(index, [A2], use_exclusions=False)["OMIM:1"] == pytest.approx(value(1.0, 1 / 1.5), abs=1e-6)


def test_descendant_of_an_excluded_term_contradicts_but_an_ancestor_does_not(index: RankingIndex) -> None:
    ranked = {r.id: r for r in index.rank([B2], limit=5)}
    e = ranked["OMIM:2"].explanation                       # OMIM:2 excludes B, B2 is below it
    assert e is not None
    assert [(c.observed, c.excluded, c.how) for c in e.contradicted] == [(B2, B, "descendant")]
    assert ranked["OMIM:2"].score == pytest.approx(-KAPPA)
    # PA is above the excluded B: no contradiction (the patient may have PA through another branch)
    assert scores(index, [PA])["OMIM:2"] == 0.0


def test_absent_phenotypes_count_both_ways(index: RankingIndex) -> None:
    got = scores(index, [A1], [B1])
    # present A1 (k = 1): OMIM:1 share 1/1.5, OMIM:2 share 0.5/1.5, ORPHA:3 exact share 1
    # absent B1: OMIM:1 has B1 at 0.5 → ln(1 − ρ·0.5); OMIM:2 excludes B (above B1) → +β
    assert got["OMIM:1"] == pytest.approx(value(2.0, 1 / 1.5) + math.log(1 - RHO * 0.5), abs=1e-6)
    assert got["OMIM:2"] == pytest.approx(value(2.0, 0.5 / 1.5) + BETA, abs=1e-6)
    assert got["ORPHA:3"] == pytest.approx(2.0)
    assert [r.id for r in index.rank([A1], [B1])] == ["OMIM:2", "ORPHA:3", "OMIM:1"]
    assert [r.id for r in index.rank([A1], [B1], use_exclusions=False)] == ["ORPHA:3", "OMIM:1", "OMIM:2"]
    ranked = {r.id: r for r in index.rank([A1], [B1])}
    e1, e2 = ranked["OMIM:1"].explanation, ranked["OMIM:2"].explanation
    assert e1 is not None and e2 is not None
    [conflict] = e1.absent_conflicting
    assert (conflict.absent, conflict.disease_term, conflict.how, conflict.frequency) == (B1, B1, "exact", 0.5)
    assert conflict.contribution == pytest.approx(math.log(1 - RHO * 0.5), abs=1e-4)
    [consistent] = e2.absent_consistent
    assert (consistent.absent, consistent.disease_term, consistent.how) == (B1, B, "descendant")
    assert e2.parts.absent_consistent == pytest.approx(BETA)


def test_absent_ancestor_of_frequent_typical_terms_combines_their_frequencies(index: RankingIndex) -> None:
    # absent A: OMIM:2 has A1b (0.5) and A2 (1.0, capped at 0.999) below it → p = 1 − 0.5 · 0.001
    got = scores(index, [B1], [A])
    p = 1 - (1 - 0.5) * (1 - 0.999)
    assert got["OMIM:2"] == pytest.approx(math.log(1 - RHO * p) - KAPPA, abs=1e-6)  # and B1 ≤ excluded B
    assert got["ORPHA:3"] == pytest.approx(math.log(1 - RHO * 0.8), abs=1e-6)


def test_more_specific_absent_term_is_not_counted(index: RankingIndex) -> None:
    # ORPHA:3 has A1; the patient lacks A1a (one subtype): neither for nor against
    assert scores(index, [B2], [A1A])["ORPHA:3"] == scores(index, [B2])["ORPHA:3"]


def test_source_filter(index: RankingIndex) -> None:
    assert [r.id for r in index.rank([A1A], sources=["ORPHA"])] == ["ORPHA:3"]
    assert [r.id for r in index.rank([A1A], sources=["omim"])] == ["OMIM:1", "OMIM:2"]
    assert index.rank([A1A], sources=["DECIPHER"]) == []
    assert int(index.source_mask(None).sum()) == 3


def test_alternative_and_obsolete_ids_are_resolved(index: RankingIndex) -> None:
    assert scores(index, [ALT_A1A]) == scores(index, [A1A])
    assert scores(index, [OLD_A2]) == scores(index, [A2])
    resolved = index.resolve_terms([ALT_A1A, A1A, OLD_A2, "HP:9999999"])
    assert resolved.ids == [A1A, A2]
    assert resolved.redirected == {ALT_A1A: A1A, OLD_A2: A2}
    assert resolved.unknown == ["HP:9999999"]


def test_rank_query_resolves_user_ids_first(index: RankingIndex) -> None:
    ranked = index.rank_query([ALT_A1A, "HP:9999999"], [OLD_A2, "HP:9999999", "HP:8888888"], explain=False)
    assert ranked.present.ids == [A1A] and ranked.absent.ids == [A2]
    assert ranked.unknown == ["HP:9999999", "HP:8888888"]  # both lists, each id once
    assert ranked.redirected == {ALT_A1A: A1A, OLD_A2: A2}
    assert ranked.results == index.rank([A1A], [A2], explain=False)
    with pytest.raises(ValidationError, match=r"no known present phenotype id \(unknown: HP:9999999\)"):
        index.rank_query(["HP:9999999"])


def test_bad_queries_raise_validation_errors(index: RankingIndex) -> None:
    with pytest.raises(ValidationError, match="unknown present"):
        index.rank(["HP:9999999"])
    with pytest.raises(ValidationError, match="at least one present"):
        index.rank([])
    with pytest.raises(ValidationError, match="both present and absent"):
        index.rank([A1A], [ALT_A1A])
    with pytest.raises(ValidationError, match="limit"):
        index.rank([A1A], limit=0)


def test_explanation_matches_score_parts(index: RankingIndex) -> None:
    for r in index.rank([A1A, B2, A2], [B1], limit=3):
        e = r.explanation
        assert e is not None
        assert sum(m.contribution for m in e.matched) == pytest.approx(e.parts.match, abs=1e-3)
        assert sum(c.contribution for c in e.contradicted) == pytest.approx(e.parts.contradiction, abs=1e-3)
        assert sum(c.contribution for c in e.absent_consistent) == pytest.approx(e.parts.absent_consistent, abs=1e-3)
        assert sum(c.contribution for c in e.absent_conflicting) == pytest.approx(e.parts.absent_conflicting,
                                                                                   abs=1e-3)
        assert r.score == pytest.approx(e.parts.match + e.parts.contradiction + e.parts.absent_consistent
                                        + e.parts.absent_conflicting, abs=1e-5)


def test_explanation_kinds_of_match(index: RankingIndex) -> None:
    by_id = {r.id: r.explanation for r in index.rank([A1A], limit=3)}
    assert by_id["OMIM:1"] is not None and by_id["ORPHA:3"] is not None and by_id["OMIM:2"] is not None
    assert [(m.typical, m.how) for m in by_id["OMIM:1"].matched] == [(A1A, "exact")]
    assert [(m.typical, m.how, m.frequency) for m in by_id["ORPHA:3"].matched] == [(A1, "descendant", 0.8)]
    [related] = by_id["OMIM:2"].matched
    assert (related.typical, related.how, related.mica, related.ic) == (A1B, "related", A1, 2.0)
    assert related.frequency is None                       # not stated in the source
    # an observed term nothing explains is listed as unmatched
    e = index.rank([B2], sources=["ORPHA"])[0].explanation
    assert e is not None and e.unmatched == [B2] and e.matched == []


def test_typical_annotation_wins_over_a_broad_exclusion() -> None:
    # OMIM:4 excludes all of A (e.g. 0/n on a broad term) but lists A1a as typical
    idx = ICMethod(RankingIndex.from_snapshot(snapshot(
        extra_typical={"OMIM:4": [Annotation(A1A, 0.5, "P")]}, extra_excluded={"OMIM:4": [A]},
        extra_diseases={"OMIM:4": DiseaseInfo("OMIM:4", "Disease four", "OMIM")})))
    ranked = {r.id: r for r in idx.rank([A1A], limit=5)}
    assert ranked["OMIM:4"].score > 0
    assert ranked["OMIM:4"].explanation is not None and ranked["OMIM:4"].explanation.contradicted == []
    assert {r.id: r.score for r in idx.rank([A1B], limit=5)}["OMIM:4"] == pytest.approx(-KAPPA)


def test_ties_are_broken_by_disease_id() -> None:
    same = [Annotation(B1, 0.5, "P")]
    idx = ICMethod(RankingIndex.from_snapshot(snapshot(
        extra_typical={"ORPHA:9": list(same), "ORPHA:10": list(same), "OMIM:8": list(same)},
        extra_diseases={d: DiseaseInfo(d, d, d.split(":")[0]) for d in ("ORPHA:9", "ORPHA:10", "OMIM:8")})))
    ranked = [r.id for r in idx.rank([B1], limit=10) if r.id in {"ORPHA:9", "ORPHA:10", "OMIM:8"}]
    assert ranked == ["OMIM:8", "ORPHA:10", "ORPHA:9"]
    assert [r.id for r in idx.rank([B1], limit=10)] == [r.id for r in idx.rank([B1], limit=10)]


def test_score_vectors_are_vectorised_over_all_diseases(index: RankingIndex) -> None:
    present = index.sem.indices([A1A, B1])
    vectors = index.score_vectors(present, index.sem.indices([A2]), method="ic")
    assert vectors.total.shape == (3,)
    assert np.all(vectors.match >= 0)
    row = index.position["OMIM:1"]
    assert vectors.absent_consistent[row] == pytest.approx(BETA)   # OMIM:1 excludes A2


def test_empty_snapshot_and_no_diseases_do_not_crash() -> None:
    empty = GraphSnapshot(stamp=None, view=OntologyView.from_rows([]), terms={}, diseases={})
    idx = RankingIndex.from_snapshot(empty)
    with pytest.raises(ValidationError):
        idx.rank([A1A])
    no_diseases = snapshot()
    no_diseases.diseases, no_diseases.typical, no_diseases.excluded = {}, {}, {}
    assert RankingIndex.from_snapshot(no_diseases).rank([A1A], [B1]) == []
