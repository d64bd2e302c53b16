"""Term and set similarity on a tiny hand-made ontology with hand-set IC (no database)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from kg.analysis.ontology import OntologyView
from kg.analysis.semsim import SemSimIndex, combine_scores
from kg.errors import ValidationError
from kg.terms import TermRow

# All ─ PA ─┬─ A ─┬─ A1 ─┬─ A1a
#           │     │      └─ A1b
#           │     └─ A2
#           └─ B ─┬─ B1
#                 └─ B2 (also is_a A2: two parents)
ALL, PA, A, A1, A1A, A1B, A2, B, B1, B2 = (f"HP:{i:07d}" for i in (1, 118, 2, 3, 4, 5, 6, 7, 8, 9))
PARENTS = {PA: [ALL], A: [PA], A1: [A], A1A: [A1], A1B: [A1], A2: [A], B: [PA], B1: [B], B2: [B, A2]}
IC = {ALL: 0.0, PA: 0.0, A: 1.0, A1: 2.0, A1A: 3.0, A1B: 3.5, A2: 2.5, B: 1.0, B1: 2.0, B2: 2.2}


def tiny_view() -> OntologyView:
    rows = [TermRow(id=ALL, name="All")]
    rows += [TermRow(id=t, name=f"term {t[-2:]}", parents=tuple(p),
                     alt_ids=(("HP:0000010",) if t == A1A else ())) for t, p in PARENTS.items()]
    rows.append(TermRow(id="HP:0000011", name="obsolete", obsolete=True, replaced_by=A2))
    view = OntologyView.from_rows(rows)
    view.ic = dict(IC)
    return view


@pytest.fixture(scope="module")
def index() -> SemSimIndex:
    return SemSimIndex.from_view(tiny_view())


def brute_resnik(view: OntologyView, a: str, b: str) -> float:
    return max(view.ic[x] for x in view.ancestors(a) & view.ancestors(b))


def sim(index: SemSimIndex, a: str, b: str, method: str) -> float:
    matrix, _ = index.term_similarity(index.indices([a]), index.indices([b]), method)
    return float(matrix[0, 0])


def test_resnik_is_ic_of_the_mica(index: SemSimIndex) -> None:
    assert sim(index, A1A, A1B, "resnik") == 2.0          # MICA A1
    assert sim(index, A1A, A2, "resnik") == 1.0           # MICA A
    assert sim(index, A1A, B1, "resnik") == 0.0           # only the root
    assert sim(index, B2, A1A, "resnik") == 1.0           # B2 reaches A through its second parent A2
    assert sim(index, B2, A2, "resnik") == 2.5            # A2 is an ancestor of B2
    resnik, mica = index.mica(index.indices([A1A, B2]), index.indices([A1B, B1]))
    # A1a/B1 share only All and PA (both IC 0): the deeper one is the MICA
    assert [[index.terms[i] for i in row] for row in mica] == [[A1, PA], [A, B]]
    assert resnik.tolist() == [[2.0, 0.0], [1.0, 1.0]]


def test_resnik_matches_brute_force_on_every_pair(index: SemSimIndex) -> None:
    view = tiny_view()
    terms = sorted(view.names)
    matrix, _ = index.term_similarity(index.indices(terms), index.indices(terms), "resnik")
    for (i, a), (j, b) in itertools.product(enumerate(terms), repeat=2):
        assert matrix[i, j] == brute_resnik(view, a, b)


def test_lin_and_jiang_conrath_by_hand(index: SemSimIndex) -> None:
    assert sim(index, A1A, A1B, "lin") == pytest.approx(2 * 2.0 / (3.0 + 3.5))
    assert sim(index, A1A, A1B, "jc") == pytest.approx(1 / (1 + 3.0 + 3.5 - 2 * 2.0))
    assert sim(index, A1A, A1A, "lin") == 1.0
    assert sim(index, A1A, A1A, "jc") == 1.0
    assert sim(index, PA, PA, "lin") == 1.0               # identical terms, even of IC 0
    assert sim(index, PA, ALL, "lin") == 0.0              # zero denominator
    assert sim(index, A1A, B1, "jc") == pytest.approx(1 / (1 + 3.0 + 2.0))


def test_set_similarity_bma_and_funsimavg_by_hand(index: SemSimIndex) -> None:
    a, b = [A1A, B1], [A1B, B2, A2]
    # rows: A1a → A1b 2.0 (B2 1.0, A2 1.0); B1 → B2 1.0.  columns: A1b 2.0, B2 1.0, A2 1.0
    fun = index.set_similarity(a, b, "resnik", "funsimavg")
    assert fun.score == pytest.approx(((2.0 + 1.0) / 2 + (2.0 + 1.0 + 1.0) / 3) / 2)
    bma = index.set_similarity(a, b, "resnik", "bma")
    assert bma.score == pytest.approx((2.0 + 1.0 + 2.0 + 1.0 + 1.0) / 5)
    assert [(m.term, m.match, m.mica) for m in fun.a_best] == [(A1A, A1B, A1), (B1, B2, B)]
    # B2 ties between A1a (MICA A) and B1 (MICA B), both IC 1: the first term of a wins (deterministic)
    assert [(m.term, m.match) for m in fun.b_best] == [(A1B, A1A), (B2, A1A), (A2, A1A)]
    assert fun.matrix.shape == (2, 3)


def test_set_similarity_is_symmetric_and_identical_sets_score_high(index: SemSimIndex) -> None:
    a, b = [A1A, B1, A2], [A1B, B2]
    for method in ("resnik", "lin", "jc"):
        for combine in ("bma", "funsimavg"):
            assert index.set_similarity(a, b, method, combine).score == pytest.approx(
                index.set_similarity(b, a, method, combine).score)
    assert index.set_similarity(a, a, "lin", "bma").score == 1.0
    assert index.set_similarity(a, a, "jc", "funsimavg").score == 1.0
    same = index.set_similarity(a, a, "resnik", "funsimavg").score
    assert same == pytest.approx(np.mean([IC[t] for t in a]))


def test_duplicates_are_dropped_and_bad_arguments_raise(index: SemSimIndex) -> None:
    assert index.set_similarity([A1A, A1A], [A1B], "resnik", "bma").score == 2.0
    with pytest.raises(ValueError, match="unknown combination"):
        index.set_similarity([A1A], [A1B], "resnik", "max")
    with pytest.raises(ValueError, match="unknown similarity method"):
        index.set_similarity([A1A], [A1B], "cosine", "bma")
    assert combine_scores(np.zeros(0), np.ones(2), "bma") == 0.0
    with pytest.raises(ValidationError, match="HP:9999999"):
        index.set_similarity([A1A, "HP:9999999"], [A1B])


def test_ids_resolve_alternative_and_obsolete(index: SemSimIndex) -> None:
    assert index.resolve(A1A) == A1A
    assert index.resolve("HP:0000010") == A1A             # alt_id
    assert index.resolve("HP:0000011") == A2              # obsolete, replaced_by
    assert index.resolve("HP:9999999") is None
    via_alt = index.set_similarity(["HP:0000010", "HP:0000011"], [A1B], "resnik", "bma")
    assert [m.term for m in via_alt.a_best] == [A1A, A2]


def test_best_resnik_to_set_matches_pairwise(index: SemSimIndex) -> None:
    query = index.indices([A1A, B1])
    best = index.best_resnik_to_set(query)
    matrix, _ = index.term_similarity(np.arange(len(index.terms)), query, "resnik")
    assert np.allclose(best, matrix.max(axis=1))
    assert index.best_resnik_to_set(np.zeros(0, dtype=np.int64)).tolist() == [0.0] * len(index.terms)


def test_large_sets_are_chunked_and_consistent(index: SemSimIndex) -> None:
    terms = sorted(IC) * 30  # 300 ids (duplicates included) stress the chunked MICA block
    idx = index.indices(terms)
    resnik, _ = index.mica(idx, idx)
    assert resnik.shape == (300, 300)
    assert math.isclose(float(resnik.max()), 3.5)
    assert np.allclose(resnik, resnik.T)
