"""Set-theory captions and set-based comparisons (models.captions)."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.captions import (
    COARSE_TEMPLATES,
    FINE_TEMPLATES,
    MEDIUM_TEMPLATES,
    TEMPLATES,
    CaptionDataWarning,
    build_caption,
    caption,
    clean_sets,
    compare,
    join_items,
    prompt_ensemble,
)
from models.types import DiseaseSets

PNEUMONIA = DiseaseSets(
    "CXR:pneumonia",
    "Pneumonia",
    typical=(("HP:0032177", "Parenchymal consolidation"), ("HP:0031457", "Pulmonary opacity")),
    excluded=(("HP:0002107", "Pneumothorax"), ("HP:0002202", "Pleural effusion")),
)
PNEUMOTHORAX = DiseaseSets(
    "CXR:pneumothorax",
    "Pneumothorax",
    typical=(("HP:0000009", "Visible pleural line"), ("HP:0031457", "Pulmonary opacity")),
    excluded=(("HP:0032177", "Parenchymal consolidation"),),
)


def test_at_least_four_templates_per_granularity() -> None:
    for templates in (COARSE_TEMPLATES, MEDIUM_TEMPLATES, FINE_TEMPLATES):
        assert len(templates) >= 4 and len(set(templates)) == len(templates)
    assert all("{excluded}" in t for t in FINE_TEMPLATES)
    assert all("{typical}" in t.lower() and "{excluded}" not in t for t in MEDIUM_TEMPLATES)


def test_granularities_state_what_they_should() -> None:
    coarse = caption(PNEUMONIA, "coarse", 0).lower()
    medium = caption(PNEUMONIA, "medium", 0).lower()
    fine = build_caption(PNEUMONIA, "fine", 0)
    assert "pneumonia" in coarse and "consolidation" not in coarse and "pneumothorax" not in coarse
    assert "pneumonia" in medium and "parenchymal consolidation" in medium and "pulmonary opacity" in medium
    assert "pneumothorax" not in medium
    text = fine.text.lower()
    assert "parenchymal consolidation" in text and "pneumothorax or pleural effusion" in text
    assert fine.absent_span is not None
    assert fine.text[fine.absent_span[0] : fine.absent_span[1]] == "pneumothorax or pleural effusion"
    assert [n for _, n in fine.present] == ["Parenchymal consolidation", "Pulmonary opacity"]
    assert [n for _, n in fine.absent] == ["Pneumothorax", "Pleural effusion"]


def test_seeded_determinism_and_template_diversity() -> None:
    for g in ("coarse", "medium", "fine"):
        assert caption(PNEUMONIA, g, 7) == caption(PNEUMONIA, g, 7)
        assert caption(PNEUMONIA, g, random.Random(3)) == caption(PNEUMONIA, g, random.Random(3))
        np_a = caption(PNEUMONIA, g, np.random.default_rng(5))
        assert np_a == caption(PNEUMONIA, g, np.random.default_rng(5))
        seen = {caption(PNEUMONIA, g, s) for s in range(80)}
        assert len(seen) == len(TEMPLATES[g]) >= 4  # every template gets used
    rng = random.Random(0)
    stream = [caption(PNEUMONIA, "fine", rng) for _ in range(20)]
    assert len(set(stream)) > 1  # a shared RNG advances


def test_prompt_ensemble_fills_every_template_deterministically() -> None:
    for g in ("coarse", "medium", "fine"):
        prompts = prompt_ensemble(PNEUMONIA, g)
        assert prompts == prompt_ensemble(PNEUMONIA, g)
        assert len(prompts) == len(set(prompts)) == len(TEMPLATES[g])
        assert set(prompts) == {caption(PNEUMONIA, g, s) for s in range(80)}
    assert prompt_ensemble(PNEUMONIA)[0] == "Chest radiograph consistent with pneumonia."
    assert prompt_ensemble(PNEUMONIA, study="CT scan")[0] == "CT scan consistent with pneumonia."


def test_list_joining() -> None:
    assert join_items([]) == ""
    assert join_items(["a"]) == "a"
    assert join_items(["a", "b"]) == "a and b"
    assert join_items(["a", "b", "c"], "or") == "a, b, or c"
    fine = prompt_ensemble(PNEUMONIA, "fine")[0]
    assert fine == (
        "Findings of pneumonia: parenchymal consolidation and pulmonary opacity; "
        "no evidence of pneumothorax or pleural effusion."
    )


def test_acronyms_keep_their_case() -> None:
    d = DiseaseSets(
        "X", "COVID-19 pneumonia", typical=(("HP:1", "ARDS"),), excluded=(("HP:2", "Lobar collapse"),)
    )
    text = prompt_ensemble(d, "fine")[0]
    assert text == "Findings of COVID-19 pneumonia: ARDS; no evidence of lobar collapse."


def test_max_items_subsamples_and_keeps_curated_order() -> None:
    names = [f"Finding {c}" for c in "abcdef"]
    d = DiseaseSets("D", "Disease", typical=tuple((f"HP:{i}", n) for i, n in enumerate(names)))
    for seed in range(10):
        c = build_caption(d, "medium", seed, template="{Disease} with {typical}.", max_items=2)
        kept = [n for _, n in c.present]
        assert len(kept) == 2 and kept == sorted(kept, key=names.index)
        assert all(n.lower() in c.text for n in kept)
    assert len({build_caption(d, "medium", s, max_items=2).present for s in range(20)}) > 1


def test_granularity_falls_back_when_sets_are_empty() -> None:
    bare = DiseaseSets("D", "Cardiomegaly")
    assert caption(bare, "fine", 1) in prompt_ensemble(bare, "coarse")
    only_excluded = DiseaseSets("D", "Cardiomegaly", excluded=(("HP:1", "Small heart"),))
    text = caption(only_excluded, "fine", 2)
    assert "small heart" in text and "cardiomegaly" in text.lower()
    assert caption(only_excluded, "medium", 2) in prompt_ensemble(only_excluded, "coarse")
    with pytest.raises(ValueError):
        caption(bare, "ultra", 0)  # type: ignore[arg-type]


def test_contradictory_sets_are_cleaned_with_a_warning() -> None:
    d = DiseaseSets(
        "D",
        "Pneumonia",
        typical=(("HP:1", "Consolidation"), ("HP:2", "Opacity"), ("HP:2", "Opacity"), ("HP:3", "pneumonia")),
        excluded=(
            ("HP:1", "Consolidation"),
            ("HP:9", "OPACITY"),
            ("HP:4", "Pneumothorax"),
            ("HP:5", "Pneumonia"),
        ),
    )
    with pytest.warns(CaptionDataWarning, match="HP:1"):
        cleaned = clean_sets(d)
    assert cleaned.typical == ()  # HP:1 by id, "Opacity" by name; the disease's own name silently
    assert cleaned.excluded == (("HP:4", "Pneumothorax"),)
    assert {pid for pid, _ in cleaned.dropped} == {"HP:1", "HP:2", "HP:9", "HP:5"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clean_sets(d, warn=False)
        clean_sets(PNEUMONIA)  # clean data: no warning


def test_compare_from_set_operations() -> None:
    by_kind = {c.kind: c for c in compare(PNEUMONIA, PNEUMOTHORAX)}
    assert by_kind["favours_a"].items == (("HP:0032177", "Parenchymal consolidation"),)
    assert by_kind["favours_a"].text == "Parenchymal consolidation favours pneumonia over pneumothorax."
    assert "favours_b" not in by_kind  # T(pneumothorax) ∩ E(pneumonia): pneumothorax is a disease, not in T
    assert (
        by_kind["only_a"].text == "Parenchymal consolidation is typical of pneumonia but not of pneumothorax."
    )
    assert by_kind["only_b"].items == (("HP:0000009", "Visible pleural line"),)
    assert by_kind["shared"].text == "Both pneumonia and pneumothorax typically show pulmonary opacity."
    reverse = {c.kind: c for c in compare(PNEUMOTHORAX, PNEUMONIA)}
    assert reverse["favours_b"].items == by_kind["favours_a"].items
    many = DiseaseSets("A", "Edema", typical=(("HP:1", "Kerley lines"), ("HP:2", "Bat-wing opacity")))
    other = DiseaseSets("B", "Fibrosis", excluded=(("HP:1", "Kerley lines"), ("HP:2", "Bat-wing opacity")))
    fav = compare(many, other)[0]
    assert fav.text == "Kerley lines and bat-wing opacity favour edema over fibrosis."
    assert compare(DiseaseSets("A", "a"), DiseaseSets("B", "b")) == []


# Phrases none of which contains another, so a text search cannot confuse them.
_VOCAB = [
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Pulmonary edema",
    "Pleural effusion",
    "Pneumothorax",
    "Rib fracture",
    "Lung nodule",
    "Widened mediastinum",
    "Air bronchogram",
    "Kerley lines",
    "Hilar enlargement",
]
_CASES = [str.lower, str.upper, str.capitalize, str.title]


@st.composite
def disease_sets(draw: st.DrawFn) -> DiseaseSets:
    """Random sets whose ids and names overlap often (small pools, random case)."""
    name = st.tuples(st.sampled_from(_VOCAB), st.sampled_from(_CASES)).map(lambda t: t[1](t[0]))
    pid = st.integers(0, 6).map(lambda i: f"HP:{i:07d}")
    pairs = st.lists(st.tuples(pid, name), max_size=7).map(tuple)
    return DiseaseSets("D:1", draw(name), typical=draw(pairs), excluded=draw(pairs))


@settings(max_examples=200, deadline=None)
@given(d=disease_sets(), seed=st.integers(0, 10_000), max_items=st.one_of(st.none(), st.integers(1, 3)))
def test_property_fine_caption_never_states_a_phenotype_present_and_absent(
    d: DiseaseSets, seed: int, max_items: int | None
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CaptionDataWarning)
        c = build_caption(d, "fine", seed, max_items=max_items)
    # structured: disjoint by id and by (case-insensitive) name; the disease itself is never absent
    assert {pid for pid, _ in c.present}.isdisjoint(pid for pid, _ in c.absent)
    present_names = {n.casefold() for _, n in c.present} | {d.name.casefold()}
    assert present_names.isdisjoint(n.casefold() for _, n in c.absent)
    # textual: no phrase occurs both in the negated list and elsewhere in the sentence
    if c.absent_span is None:
        absent_text, present_text = "", c.text
    else:
        start, end = c.absent_span
        absent_text, present_text = c.text[start:end], c.text[:start] + c.text[end:]
    for phrase in _VOCAB:
        key = phrase.casefold()
        assert not (key in absent_text.casefold() and key in present_text.casefold()), c.text
    for _, n in c.absent:
        assert n.casefold() in absent_text.casefold()
    for _, n in c.present:
        assert n.casefold() in present_text.casefold()


MARFAN = DiseaseSets("OMIM:154700", "Marfan syndrome", typical=(("HP:0001166", "Arachnodactyly"),
                                                                  ("HP:0001083", "Ectopia lentis")))


@pytest.mark.parametrize(("name", "mid_sentence"), [
    ("Marfan syndrome", "Marfan syndrome"),
    ("Ehlers-Danlos syndrome, classic type", "Ehlers-Danlos syndrome, classic type"),
    ("Duchenne muscular dystrophy", "Duchenne muscular dystrophy"), ("Pierre Robin sequence", "Pierre Robin sequence"),
    ("Brushfield spots", "Brushfield spots"), ("CHARGE syndrome", "CHARGE syndrome"),
    ("Pneumonia", "pneumonia"), ("Nephrotic syndrome", "nephrotic syndrome"),
    ("Chronic kidney disease", "chronic kidney disease"), ("Fragile X syndrome", "fragile X syndrome"),
    ("Aortic root aneurysm", "aortic root aneurysm"), ("No finding", "no finding"),
    ("Lung disease A", "lung disease A"), ("Enlarged cardiomediastinum", "enlarged cardiomediastinum"),
])
def test_names_keep_proper_nouns_and_lower_generic_phrases(name: str, mid_sentence: str) -> None:
    d = DiseaseSets("X:1", name, typical=(("HP:0001166", "Arachnodactyly"),))
    texts = {caption(d, "coarse", seed, study="clinical presentation") for seed in range(20)}
    assert any(mid_sentence in t for t in texts)
    assert all(name.casefold() not in t.casefold() or mid_sentence in t or t.startswith(mid_sentence[:1].upper())
               for t in texts)


def test_marfan_captions_and_comparisons_spell_the_eponym() -> None:
    texts = [caption(MARFAN, g, seed, study="clinical presentation") for g in ("coarse", "medium")
             for seed in range(10)]
    assert all("Marfan syndrome" in t and "marfan" not in t for t in texts)
    assert any("arachnodactyly" in t for t in texts)  # phenotype names stay generic phrases
    statements = compare(MARFAN, PNEUMONIA)
    assert statements and all("marfan" not in c.text and "pneumonia" in c.text for c in statements)
