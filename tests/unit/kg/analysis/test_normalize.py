"""kg.analysis.normalize: batch mention normalisation on a hand-made ontology (lexical, and with toy vectors)."""

from __future__ import annotations

import numpy as np
import pytest

from kg.analysis.normalize import MAX_TOP_K, Normalizer, prepare_mention
from kg.analysis.search import LexicalIndex, Searcher, SemanticIndex
from tests.unit.kg.analysis.search.test_search import TERMS, _unit, _vectors


@pytest.fixture(scope="module")
def lexical_only() -> Normalizer:
    return Normalizer(Searcher(LexicalIndex(TERMS)))


@pytest.fixture(scope="module")
def toy() -> tuple[Normalizer, dict[str, np.ndarray]]:
    sem, base = _vectors()
    return Normalizer(Searcher(LexicalIndex(TERMS), sem)), base


@pytest.mark.parametrize(("raw", "prepared"), [
    ("  Atrial   septal defect (ASD) ", "Atrial septal defect"),
    ('"seizures".', "seizures"),
    ("(pneumonia)", "pneumonia"),
    ("Pleural effusion [PE]", "Pleural effusion"),
    ("(ASD)", "ASD"),  # only an abbreviation: keep it
    ("", ""),
    ("  \t ", ""),
    ("x" * 5000, "x" * 1000),
])
def test_prepare_mention(raw: str, prepared: str) -> None:
    assert prepare_mention(raw) == prepared


def test_batch_keeps_order_and_empty_mentions(lexical_only: Normalizer) -> None:
    mentions = ["Seizures", "", "Oedema of the lungs", "   ", "enlarged hearts"]
    out = lexical_only.normalize(mentions, top_k=3)
    assert len(out) == len(mentions)
    assert [c[0].id if c else None for c in out] == ["HP:0001250", None, "HP:0100598", None, "HP:0001640"]
    assert all(len(c) <= 3 for c in out)


@pytest.mark.parametrize(("mention", "expected"), [
    ("Atrial septal defect (ASD)", "HP:0001631"),  # trailing abbreviation
    ("ASD", "HP:0001631"),  # abbreviation synonym
    ("lung oedema", "HP:0100598"),  # British spelling, word order, stop words
    ("non-small-cell lung carcinomas", "HP:0030358"),  # hyphens, plural
    ("HP:0002203", "HP:0002202"),  # an alternative id
    ("pleural effusions", "HP:0002202"),
])
def test_lexical_normalisation(lexical_only: Normalizer, mention: str, expected: str) -> None:
    top = lexical_only.normalize([mention])[0][0]
    assert top.id == expected


def test_exact_scores_are_high_and_in_range(lexical_only: Normalizer) -> None:
    cands = lexical_only.normalize(["Cardiomegaly", "heart"], top_k=5)
    assert cands[0][0].source == "exact" and cands[0][0].score > 0.9
    for group in cands:
        assert all(0.0 <= c.score <= 1.0 for c in group)
        rest = [c.score for c in group if c.source != "exact"]  # exact matches are pinned first
        assert rest == sorted(rest, reverse=True)
    assert cands[1][0].score < cands[0][0].score


def test_semantic_candidates_fill_in_where_words_fail(toy: tuple[Normalizer, dict[str, np.ndarray]]) -> None:
    normalizer, base = toy
    mentions = ["big heart", "Seizures", "fits"]
    vectors = np.stack([_unit(base["HP:0001640"]), _unit(base["HP:0002107"]), _unit(base["HP:0001250"])])
    out = normalizer.normalize(mentions, vectors, top_k=3)
    assert out[0][0].id == "HP:0001640"
    assert out[0][0].source in ("semantic", "lexical")
    assert out[0][0].semantic is not None and out[0][0].semantic > 0.9
    assert out[1][0].id == "HP:0001250" and out[1][0].source == "exact"  # exact beats a misleading vector
    assert out[2][0].id == "HP:0001250" and out[2][0].source == "semantic"


def test_allowed_restricts_candidates(toy: tuple[Normalizer, dict[str, np.ndarray]]) -> None:
    normalizer, base = toy
    out = normalizer.normalize(["heart"], np.stack([_unit(base["HP:0001640"])]), top_k=5,
                               allowed={"HP:0002202", "HP:0002107"})
    assert {c.id for c in out[0]} <= {"HP:0002202", "HP:0002107"}


def test_arguments_are_checked(lexical_only: Normalizer) -> None:
    with pytest.raises(ValueError):
        lexical_only.normalize(["x"], top_k=0)
    with pytest.raises(ValueError):
        lexical_only.normalize(["x"], top_k=MAX_TOP_K + 1)
    with pytest.raises(ValueError, match="vectors"):
        Normalizer(Searcher(LexicalIndex(TERMS), _vectors()[0])).normalize(["a", "b"], np.zeros((1, 16)))


def test_injection_and_unicode_mentions(lexical_only: Normalizer) -> None:
    out = lexical_only.normalize(["' OR 1=1 --", "MATCH (n) DETACH DELETE n", "Ödem 心脏 🫀", "\x00"])
    assert len(out) == 4


def test_semantic_index_with_missing_terms_still_normalises() -> None:
    # vectors for two terms only: the others are still found lexically
    rows = [("HP:0001640", ["Cardiomegaly"], np.array([[1.0, 0.0]])),
            ("HP:0002090", ["Pneumonia"], np.array([[0.0, 1.0]]))]
    normalizer = Normalizer(Searcher(LexicalIndex(TERMS), SemanticIndex.from_rows(rows)))
    out = normalizer.normalize(["seizures", "cardiomegaly"], np.array([[0.0, 1.0], [1.0, 0.0]]))
    assert out[0][0].id == "HP:0001250"
    assert out[1][0].id == "HP:0001640"
