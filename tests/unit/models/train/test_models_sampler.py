"""Attribute sampler, conflict-free batch sampler and false-negative mask (models.train.sampler)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.train.sampler import (
    AttributePairSampler,
    ConflictFreeBatchSampler,
    KnowledgePairBatches,
    attributes_of,
    false_negative_mask,
    normalize_text,
    relation_text,
)
from models.types import PhenotypeAttributes


def _ontology() -> list[PhenotypeAttributes]:
    root = PhenotypeAttributes("HP:1", "Abnormal lung morphology", "Any anomaly of the lung.")
    return [
        root,
        PhenotypeAttributes(
            "HP:2",
            "Pulmonary opacity",
            "Increased attenuation of lung tissue on imaging.",
            synonyms=("Lung opacity", "Opacity of the lung"),
            parents=(root.name,),
            parent_ids=(root.id,),
        ),
        PhenotypeAttributes(
            "HP:3",
            "Pleural effusion",
            "Fluid in the pleural space.",
            synonyms=("Hydrothorax",),
            parents=("Abnormal pleura morphology",),
            parent_ids=("HP:9",),
        ),
        # shares the synonym "lung opacity" (case differs) with HP:2
        PhenotypeAttributes("HP:4", "Airspace opacity", synonyms=("LUNG  opacity",), parent_ids=("HP:1",)),
        PhenotypeAttributes("HP:5", "Pneumothorax", "Air in the pleural space.", parent_ids=("HP:9",)),
        PhenotypeAttributes("HP:6", "Lonely root"),  # a single attribute
    ]


def test_attributes_of_lists_name_first_and_deduplicates() -> None:
    p = PhenotypeAttributes(
        "HP:7",
        "Cardiomegaly",
        "Enlarged heart.",
        synonyms=("Enlarged heart", "cardiomegaly", "Large heart", ""),
        parents=("Abnormal heart morphology",),
    )
    attrs = attributes_of(p)
    # "Enlarged heart" equals the definition up to its full stop, "cardiomegaly" the name up to case
    assert [(a.kind, a.text) for a in attrs[:3]] == [
        ("name", "Cardiomegaly"),
        ("definition", "Enlarged heart."),
        ("synonym", "Large heart"),
    ]
    assert [a.kind for a in attrs] == ["name", "definition", "synonym", "relation"]
    assert attrs[-1].text == relation_text("Cardiomegaly", "Abnormal heart morphology")
    assert attrs[-1].text == "Cardiomegaly is a child phenotype of Abnormal heart morphology"
    assert normalize_text("  Lung   OPACITY. ") == "lung opacity"


def test_pairs_are_two_different_attributes_of_one_phenotype_and_reproducible() -> None:
    onto = _ontology()
    sampler = AttributePairSampler(onto, seed=3)
    assert "HP:6" not in {p.id for p in sampler.phenotypes}  # single attribute skipped by default
    by_id = {p.id: {normalize_text(a.text) for a in attributes_of(p)} for p in onto}
    for epoch in range(5):
        pairs = sampler.pairs(epoch)
        assert [p.phenotype_id for p in pairs] == [p.id for p in sampler.phenotypes]
        for pair in pairs:
            texts = by_id[pair.phenotype_id]
            assert normalize_text(pair.anchor.text) in texts
            assert normalize_text(pair.positive.text) in texts
            assert normalize_text(pair.anchor.text) != normalize_text(pair.positive.text)
        assert pairs == AttributePairSampler(onto, seed=3).pairs(epoch)
    all_epochs = [tuple(AttributePairSampler(onto, seed=3).pairs(e)) for e in range(8)]
    assert len(set(all_epochs)) > 1  # epochs differ


def test_single_attribute_template_policy() -> None:
    sampler = AttributePairSampler(_ontology(), seed=0, single_attribute="template")
    pair = next(p for p in sampler.pairs(0) if p.phenotype_id == "HP:6")
    assert {pair.anchor.text, pair.positive.text} == {"Lonely root", "the phenotype Lonely root"}
    with pytest.raises(ValueError):
        AttributePairSampler(_ontology(), single_attribute="nope")  # type: ignore[arg-type]


def test_kind_weights_steer_which_attributes_pair_up() -> None:
    many = [PhenotypeAttributes(f"HP:{i}", f"Term {i}", f"Definition of term {i}.", synonyms=(f"Alias {i}",),
                                parents=(f"Parent {i}",)) for i in range(400)]

    def kinds(sampler: AttributePairSampler) -> dict[str, int]:
        counts: dict[str, int] = {}
        for pair in sampler.pairs(0):
            for a in (pair.anchor, pair.positive):
                counts[a.kind] = counts.get(a.kind, 0) + 1
        return counts

    uniform = kinds(AttributePairSampler(many, seed=1, name_anchor_prob=1.0))
    assert min(uniform["definition"], uniform["synonym"], uniform["relation"]) > 90  # ~133 each
    only_synonyms = kinds(AttributePairSampler(many, seed=1, name_anchor_prob=1.0,
                                               kind_weights={"definition": 0, "relation": 0}))
    assert only_synonyms == {"name": 400, "synonym": 400}
    mostly = kinds(AttributePairSampler(many, seed=1, name_anchor_prob=0.0, kind_weights={"synonym": 8}))
    assert mostly["synonym"] > 300 and mostly["synonym"] > 2 * mostly["definition"]
    # all candidates weigh 0: uniform instead of an error; the same seed gives the same pairs
    zero = {"name": 0, "definition": 0, "synonym": 0, "relation": 0}
    assert AttributePairSampler(many, seed=2, kind_weights=zero).pairs(3) == \
        AttributePairSampler(many, seed=2, kind_weights=zero).pairs(3)
    with pytest.raises(ValueError, match="unknown attribute kind 'synonyms'"):
        AttributePairSampler(many, kind_weights={"synonyms": 2})
    with pytest.raises(ValueError, match="finite number >= 0"):
        AttributePairSampler(many, kind_weights={"synonym": -1})


def test_batch_sampler_separates_shared_strings_and_parent_child() -> None:
    onto = _ontology()
    sampler = ConflictFreeBatchSampler(onto, batch_size=6, seed=0)
    idx = {p.id: i for i, p in enumerate(onto)}
    assert sampler.conflicts(idx["HP:2"], idx["HP:4"])  # shared synonym
    assert sampler.conflicts(idx["HP:1"], idx["HP:2"])  # parent / child
    assert not sampler.conflicts(idx["HP:3"], idx["HP:5"])  # siblings are fine
    for epoch in range(10):
        batches = sampler.batches(epoch)
        assert sorted(i for b in batches for i in b) == list(range(len(onto)))
        for b in batches:
            ids = {onto[i].id for i in b}
            assert not {"HP:2", "HP:4"} <= ids
            assert not {"HP:1", "HP:2"} <= ids
            assert not {"HP:1", "HP:4"} <= ids
        assert batches == ConflictFreeBatchSampler(onto, batch_size=6, seed=0).batches(epoch)
    sampler.set_epoch(2)
    assert list(sampler) == sampler.batches(2)


_WORDS = ["opacity", "effusion", "nodule", "mass", "edema", "collapse", "fracture", "air", "fluid", "lung"]


@st.composite
def ontologies(draw: st.DrawFn) -> list[PhenotypeAttributes]:
    """Small random ontologies whose names and synonyms collide often (tiny vocabulary, random case)."""
    n = draw(st.integers(min_value=1, max_value=25))
    phrase = st.lists(st.sampled_from(_WORDS), min_size=1, max_size=2).map(" ".join)
    cased = st.tuples(phrase, st.sampled_from([str.lower, str.upper, str.capitalize])).map(
        lambda t: t[1](t[0])
    )
    out: list[PhenotypeAttributes] = []
    for i in range(n):
        name = draw(cased)
        parents = draw(st.lists(st.integers(0, i - 1), max_size=2, unique=True)) if i else []
        out.append(
            PhenotypeAttributes(
                id=f"HP:{i:07d}",
                name=name,
                definition=draw(st.one_of(st.none(), cased)),
                synonyms=tuple(draw(st.lists(cased, max_size=3))),
                parents=tuple(out[j].name for j in parents),
                parent_ids=tuple(out[j].id for j in parents),
            )
        )
    return out


@settings(max_examples=60, deadline=None)
@given(onto=ontologies(), batch_size=st.integers(1, 8), seed=st.integers(0, 2**16), epoch=st.integers(0, 3))
def test_property_no_false_negative_pair_in_any_batch(
    onto: list[PhenotypeAttributes], batch_size: int, seed: int, epoch: int
) -> None:
    sampler = ConflictFreeBatchSampler(onto, batch_size, seed=seed)
    batches = sampler.batches(epoch)
    # every phenotype exactly once, no batch too large
    assert sorted(i for b in batches for i in b) == list(range(len(onto)))
    assert all(1 <= len(b) <= batch_size for b in batches)
    for b in batches:
        for x, i in enumerate(b):
            for j in b[x + 1 :]:
                pi, pj = onto[i], onto[j]
                ti = {normalize_text(a.text) for a in attributes_of(pi)}
                tj = {normalize_text(a.text) for a in attributes_of(pj)}
                assert ti.isdisjoint(tj), (pi, pj)
                assert pi.id not in pj.parent_ids and pj.id not in pi.parent_ids
    assert batches == ConflictFreeBatchSampler(onto, batch_size, seed=seed).batches(epoch)


@settings(max_examples=30, deadline=None)
@given(onto=ontologies(), seed=st.integers(0, 100))
def test_property_pair_batches_mask_is_empty_for_sampled_batches(
    onto: list[PhenotypeAttributes], seed: int
) -> None:
    data = KnowledgePairBatches(onto, 4, seed=seed)
    for batch in data.epoch_batches(0):
        anchors = [p.anchor.text for p in batch]
        positives = [p.positive.text for p in batch]
        assert not false_negative_mask(anchors, positives, [p.phenotype_id for p in batch]).any()


def test_pair_batches_resume_from_state() -> None:
    onto = _ontology()  # 5 usable phenotypes
    data = KnowledgePairBatches(onto, 2, seed=5, min_batch=1)
    full = [(e, b, tuple(p)) for e, b, p in data.iterate(3)]
    data2 = KnowledgePairBatches(onto, 2, seed=5, min_batch=1)
    it = data2.iterate(3)
    head = [next(it) for _ in range(4)]
    state = data2.state_dict()
    data3 = KnowledgePairBatches(onto, 2, seed=5, min_batch=1)
    data3.load_state_dict(state)
    rest = [(e, b, tuple(p)) for e, b, p in data3.iterate(3)]
    assert [(e, b, tuple(p)) for e, b, p in head] + rest == full
    with pytest.raises(ValueError):
        KnowledgePairBatches(onto, 2, seed=6).load_state_dict(state)


def test_pair_batches_refuse_to_spin_on_empty_epochs() -> None:
    clones = [PhenotypeAttributes(f"HP:{i}", "Same name", f"Definition {i}.") for i in range(3)]
    data = KnowledgePairBatches(clones, 4, seed=0)  # every pair shares its name: no batch of 2
    with pytest.raises(ValueError, match="no batch"):
        next(data.iterate(10))


def test_false_negative_mask() -> None:
    anchors = ["Lung opacity", "Pleural effusion", "Hydrothorax", "Mass"]
    positives = ["Pulmonary opacity", "Fluid in the pleura", "PLEURAL effusion", "Lump"]
    mask = false_negative_mask(anchors, positives)
    assert mask.dtype.is_floating_point is False
    assert mask.shape == (4, 4)
    assert mask[1, 2] and mask[2, 1]  # anchor 1 == positive 2 (case-insensitive)
    assert not mask.diagonal().any()
    assert int(mask.sum()) == 2
    grouped = false_negative_mask(anchors, positives, ["a", "b", "c", "a"])
    assert grouped[0, 3] and grouped[3, 0]
    single = false_negative_mask(["x", "X ", "y"])
    assert single.tolist() == [[False, True, False], [True, False, False], [False, False, False]]
    with pytest.raises(ValueError):
        false_negative_mask(["a"], ["b", "c"])


def test_sampler_types_and_captions_do_not_import_torch() -> None:
    code = (
        "import sys; import models.types, models.captions, models.train.sampler; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
