"""kg.analysis.search on a small hand-made ontology: exact / lexical / semantic / hybrid ranking and what matched."""

from __future__ import annotations

import numpy as np
import pytest

from kg.analysis.search import FusionModel, LexicalIndex, Searcher, SemanticIndex, content_tokens, parse_id
from kg.terms import TermRow

TERMS = [
    TermRow("HP:0000001", "All"),
    TermRow("HP:0001640", "Cardiomegaly", "Increased size of the heart.", ("Enlarged heart", "Increased heart size"),
            ("EXACT", "EXACT")),
    TermRow("HP:0002202", "Pleural effusion", "The presence of an excessive amount of fluid in the pleural cavity.",
            ("Fluid around lungs",), ("EXACT",), alt_ids=("HP:0002203",)),
    TermRow("HP:0100598", "Pulmonary edema", None, ("Edema of the lungs",), ("EXACT",)),
    TermRow("HP:0001250", "Seizure", None, ("Seizures", "Epileptic seizure"), ("EXACT", "EXACT"),
            alt_ids=("HP:0002279",)),
    TermRow("HP:0002090", "Pneumonia"),
    TermRow("HP:0002107", "Pneumothorax", None, ("Collapsed lung",), ("RELATED",)),
    TermRow("HP:0001631", "Atrial septal defect", None, ("ASD",), ("EXACT",)),
    TermRow("HP:0030358", "Non-small cell lung carcinoma"),
    TermRow("HP:0001342", "Cerebral hemorrhage"),
    TermRow("HP:0000057", "obsolete Clitoromegaly", obsolete=True, replaced_by="HP:0001640"),
]


@pytest.fixture(scope="module")
def lexical() -> LexicalIndex:
    return LexicalIndex(TERMS)


def _vectors(dim: int = 16, seed: int = 3) -> tuple[SemanticIndex, dict[str, np.ndarray]]:
    """A toy vector space: one random direction per live term; each label = that direction + a little noise."""
    rng = np.random.default_rng(seed)
    base = {t.id: rng.normal(size=dim) for t in TERMS if not t.obsolete}
    rows = []
    for t in TERMS:
        if t.obsolete:
            continue
        labels = [t.name, *t.synonyms]
        rows.append((t.id, labels, np.stack([base[t.id] + 0.05 * rng.normal(size=dim) for _ in labels])))
    return SemanticIndex.from_rows(rows, encoder="toy", fingerprint="toy"), base


def _unit(v: np.ndarray) -> np.ndarray:
    out: np.ndarray = v / np.linalg.norm(v)
    return out


# ---- tokens and ids ----------------------------------------------------------------------------------


def test_tokens_fold_case_plural_spelling_hyphens_and_stopwords() -> None:
    assert content_tokens("Oedema of the Lungs") == content_tokens("edema lung")
    assert content_tokens("non-small cell") == content_tokens("Non small cells")
    assert content_tokens("Crohn's disease") == content_tokens("crohn disease")
    assert content_tokens("of the") == ["of", "the"]  # nothing but stop words: keep them


@pytest.mark.parametrize("text", ["HP:0001640", "hp:0001640", "HP_0001640", "hp 0001640", "0001640", " HP:0001640 "])
def test_parse_id_forms(text: str) -> None:
    assert parse_id(text) == "HP:0001640"


@pytest.mark.parametrize("text", ["HP:123", "cardiomegaly", "HP:00016401", ""])
def test_parse_id_rejects(text: str) -> None:
    assert parse_id(text) is None


# ---- lexical ----------------------------------------------------------------------------------------


def test_exact_name_first_with_field(lexical: LexicalIndex) -> None:
    hits = lexical.search("cardiomegaly")
    assert hits[0].id == "HP:0001640"
    assert (hits[0].field, hits[0].matched, hits[0].source, hits[0].score) == ("name", "Cardiomegaly", "exact", 1.0)


def test_exact_synonym_says_synonym(lexical: LexicalIndex) -> None:
    hit = lexical.search("Enlarged heart")[0]
    assert (hit.id, hit.field, hit.matched, hit.source) == ("HP:0001640", "synonym", "Enlarged heart", "exact")


@pytest.mark.parametrize(("query", "expected"), [
    ("seizures", "HP:0001250"),  # plural (also a synonym)
    ("Pneumonias", "HP:0002090"),  # plural of the name
    ("oedema of the lungs", "HP:0100598"),  # British spelling + stop words
    ("cerebral haemorrhages", "HP:0001342"),  # British + plural
    ("non small cell lung carcinomas", "HP:0030358"),  # hyphen + plural
    ("NON-SMALL-CELL LUNG CARCINOMA", "HP:0030358"),  # case + hyphens
])
def test_normalised_exact_matches(lexical: LexicalIndex, query: str, expected: str) -> None:
    hit = lexical.search(query)[0]
    assert hit.id == expected
    assert hit.source == "exact"


def test_word_order_is_a_full_lexical_match_but_not_exact(lexical: LexicalIndex) -> None:
    hit = lexical.search("heart enlarged", prefix=False)[0]
    assert hit.id == "HP:0001640"
    assert hit.score == pytest.approx(1.0)
    assert hit.source == "lexical"


def test_partial_overlap_ranks_by_idf(lexical: LexicalIndex) -> None:
    hits = lexical.search("pleural fluid", prefix=False)
    assert hits[0].id == "HP:0002202"
    assert 0 < hits[0].score < 1


def test_type_ahead_prefix(lexical: LexicalIndex) -> None:
    ids = [h.id for h in lexical.search("pneu")[:2]]
    assert set(ids) == {"HP:0002090", "HP:0002107"}
    assert lexical.search("pneu", prefix=False) == []
    # a finished word (trailing space) does not expand
    assert {h.id for h in lexical.search("cerebral ")} == {"HP:0001342"}


def test_definition_matches_are_flagged_and_rank_below_labels(lexical: LexicalIndex) -> None:
    hits = lexical.search("excessive amount cavity", prefix=False)
    assert hits[0].id == "HP:0002202"
    assert hits[0].field == "definition"
    assert "pleural cavity" in hits[0].matched
    assert hits[0].score <= 0.5


@pytest.mark.parametrize(("query", "field"), [("HP:0001640", "id"), ("hp_0002203", "alt_id"),
                                              ("HP:0000057", "replaced_id"), ("0002279", "alt_id")])
def test_id_queries(lexical: LexicalIndex, query: str, field: str) -> None:
    hit = lexical.search(query)[0]
    assert hit.field == field
    assert hit.source == "exact"
    assert hit.id == {"HP:0002203": "HP:0002202", "HP:0002279": "HP:0001250"}.get(
        parse_id(query) or "", "HP:0001640")


def test_obsolete_terms_only_on_request(lexical: LexicalIndex) -> None:
    assert all(not h.obsolete for h in lexical.search("clitoromegaly"))
    hits = lexical.search("clitoromegaly", include_obsolete=True)
    assert hits[0].id == "HP:0000057" and hits[0].obsolete
    with_obsolete = {h.id for h in lexical.search("HP:0000057", include_obsolete=True)}
    assert with_obsolete == {"HP:0000057", "HP:0001640"}


def test_abbreviations_are_case_sensitive(lexical: LexicalIndex) -> None:
    upper = lexical.search("ASD")[0]
    assert (upper.id, upper.source, upper.score) == ("HP:0001631", "exact", 1.0)
    lower = lexical.search("asd")
    assert lower and lower[0].source == "lexical" and lower[0].score < 1.0


@pytest.mark.parametrize("query", ["", "   ", "' OR 1=1 --", "MATCH (n) DETACH DELETE n", "Ödem 心脏 🫀",
                                   "\x00\u202e", "%s%s%n", "a" * 500])
def test_odd_queries_do_not_fail(lexical: LexicalIndex, query: str) -> None:
    hits = lexical.search(query)
    assert all(0 <= h.score <= 1 for h in hits)


def test_limit(lexical: LexicalIndex) -> None:
    assert len(lexical.search("lung", limit=2)) == 2


# ---- semantic and hybrid -----------------------------------------------------------------------------


def test_semantic_nearest_and_matched_row() -> None:
    sem, base = _vectors()
    searcher = Searcher(LexicalIndex(TERMS), sem)
    hits = searcher.semantic("something about the heart", _unit(base["HP:0001640"]), limit=3)
    assert hits[0].id == "HP:0001640"
    assert hits[0].source == "semantic"
    assert hits[0].field in ("name", "synonym")
    assert hits[0].matched in ("Cardiomegaly", "Enlarged heart", "Increased heart size")
    assert hits[0].score > hits[1].score


def test_semantic_index_term_scores_take_best_row() -> None:
    rows = [("A", ["a", "a2"], np.array([[1.0, 0.0], [0.0, 1.0]])), ("B", ["b"], np.array([[0.6, 0.8]]))]
    sem = SemanticIndex.from_rows(rows)
    best, arg = sem.term_scores(sem.row_scores(np.array([0.0, 1.0]))[0])
    assert best.tolist() == pytest.approx([1.0, 0.8])
    assert arg.tolist() == [1, 2]


def test_semantic_without_vectors_raises() -> None:
    with pytest.raises(LookupError):
        Searcher(LexicalIndex(TERMS)).semantic("x", np.zeros(4))


def test_hybrid_pins_exact_matches_over_semantic() -> None:
    sem, base = _vectors()
    searcher = Searcher(LexicalIndex(TERMS), sem)
    # the vector points at pneumothorax, but the text is exactly a seizure synonym
    hits = searcher.hybrid("Epileptic seizure", _unit(base["HP:0002107"]), limit=3)
    assert hits[0].id == "HP:0001250" and hits[0].source == "exact"
    assert hits[1].id == "HP:0002107" and hits[1].source == "semantic"
    assert all(0 <= h.score <= 1 for h in hits)


def test_hybrid_combines_partial_lexical_and_semantic() -> None:
    sem, base = _vectors()
    searcher = Searcher(LexicalIndex(TERMS), sem)
    vec = _unit(base["HP:0100598"] + 0.3 * base["HP:0002202"])
    hits = searcher.hybrid("lung fluid", vec, limit=5)
    assert hits[0].id == "HP:0100598"
    assert {"HP:0100598", "HP:0002202"} <= {h.id for h in hits}
    rrf = searcher.hybrid("lung fluid", vec, limit=5, fusion="rrf")
    assert {"HP:0100598", "HP:0002202"} <= {h.id for h in rrf}


def test_hybrid_without_vector_is_lexical_and_calibrated() -> None:
    searcher = Searcher(LexicalIndex(TERMS))
    hits = searcher.hybrid("enlarged heart", None)
    assert hits[0].id == "HP:0001640" and hits[0].semantic is None
    assert 0.5 < hits[0].score <= 1


def test_fusion_model_probability_is_monotone() -> None:
    model = FusionModel()
    p = model.probability(np.array([0.0, 0.5, 1.0, 1.3]))
    assert np.all(np.diff(p) > 0) and p[0] >= 0 and p[-1] <= 1


def test_query_dimension_mismatch_is_an_error() -> None:
    sem, _ = _vectors(dim=16)
    with pytest.raises(ValueError, match="dimensions"):
        sem.row_scores(np.zeros(8))
