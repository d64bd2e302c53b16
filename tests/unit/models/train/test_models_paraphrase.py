"""Mention-style paraphrases of grouping-term labels (models.train.paraphrase) and their use as training pairs."""

from __future__ import annotations

import pytest

from models.train.paraphrase import MAX_PER_TERM, paraphrases, paraphrases_of_labels
from models.train.sampler import AttributePairSampler, ConflictFreeBatchSampler, attributes_of
from models.types import PhenotypeAttributes


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("Abnormality of the skin", ["cutaneous abnormalities", "skin abnormalities", "cutaneous manifestations",
                                     "cutaneous anomalies"]),
        ("Abnormal heart morphology", ["cardiac malformations", "heart malformations", "cardiac abnormalities",
                                       "cardiac anomalies"]),
        ("Abnormal pupillary physiology", ["pupillary dysfunction", "pupillary abnormalities"]),
        ("Hearing abnormality", ["auditory abnormalities", "hearing abnormalities", "auditory manifestations",
                                 "auditory anomalies"]),
        ("Abnormality of cardiac morphology", ["cardiac abnormalities", "cardiac manifestations",
                                               "cardiac anomalies"]),
        ("  ABNORMALITY   of the Kidney. ", ["renal abnormalities", "kidney abnormalities", "renal manifestations",
                                            "renal anomalies"]),
        ("Abnormal bleeding", ["bleeding abnormalities"]),
    ],
)
def test_grouping_labels_give_mention_style_phrases(label: str, expected: list[str]) -> None:
    assert paraphrases(label) == expected


@pytest.mark.parametrize("label", ["Ataxia", "Preauricular pit", "Cutaneous wound", "", "Abnormal", "abnormality"])
def test_specific_or_empty_labels_give_nothing(label: str) -> None:
    assert paraphrases(label) == []


def test_paraphrases_of_labels_skip_existing_labels_deduplicate_and_cap() -> None:
    labels = ["Abnormality of the eye", "Eye abnormalities", "Abnormal eye morphology", "Abnormality of the eyes"]
    out = paraphrases_of_labels(labels)
    assert "eye abnormalities" not in out  # already a label of the term (case-insensitive)
    assert len(out) == len(set(out)) <= MAX_PER_TERM
    assert out[0] == "ocular abnormalities"
    assert paraphrases_of_labels(iter(labels)) == out  # any iterable, same result
    assert paraphrases_of_labels(labels, limit=2) == out[:2]


def test_sampler_adds_paraphrase_attributes_only_when_asked() -> None:
    skin = PhenotypeAttributes("HP:0000951", "Abnormality of the skin", synonyms=("Dermopathy",))
    assert [a.kind for a in attributes_of(skin)] == ["name", "synonym"]
    with_para = attributes_of(skin, paraphrase=True)
    assert [a.kind for a in with_para][:2] == ["name", "synonym"]
    assert {a.text for a in with_para if a.kind == "paraphrase"} == set(paraphrases("Abnormality of the skin"))
    # a phenotype whose only other attribute is a paraphrase becomes trainable
    bare = PhenotypeAttributes("HP:0000364", "Hearing abnormality")
    assert len(AttributePairSampler([bare]).phenotypes) == 0
    sampler = AttributePairSampler([bare], paraphrase=True, kind_weights={"paraphrase": 2.0})
    pair = sampler.pairs(0)[0]
    assert {pair.anchor.kind, pair.positive.kind} == {"name", "paraphrase"}


def test_terms_sharing_a_paraphrase_never_share_a_batch() -> None:
    eye = PhenotypeAttributes("HP:0000478", "Abnormality of the eye", synonyms=("Eye disease",))
    eye_morph = PhenotypeAttributes("HP:0012372", "Abnormal eye morphology", synonyms=("Abnormal eye structure",))
    others = [PhenotypeAttributes(f"HP:9{i:06d}", f"Specific sign {i}", synonyms=(f"sign {i} variant",))
              for i in range(6)]
    phenotypes = [eye, eye_morph, *others]
    attrs = [attributes_of(p, paraphrase=True) for p in phenotypes]
    sampler = ConflictFreeBatchSampler(phenotypes, 4, seed=0, attributes=attrs)
    assert sampler.conflicts(0, 1)  # both paraphrase to "ocular abnormalities"
    plain = ConflictFreeBatchSampler(phenotypes, 4, seed=0)
    assert not plain.conflicts(0, 1)
    for epoch in range(5):
        for batch in sampler.batches(epoch):
            assert not {0, 1} <= set(batch)
