"""Grounded retrieval's pure parts: label closure over the hierarchy, label transfer, the calibrated answer, the
grounding files, the calibration error, the domain reference sample, the vocabulary of a training set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.domain import DomainEncoder, reference_sample
from models.grounding import Grounding, GroundingParams, Vocabulary, label_matrix, transfer_features
from models.train.clip_run import ClipData
from models.train.grounding_fit import build_vocabulary, expected_calibration_error
from models.types import DiseaseSets

# a little hierarchy: opacity > consolidation > (pneumonia is separate); effusion separate
OPACITY, CONSOLIDATION, PNEUMONIA, EFFUSION = "HP:0031457", "HP:0032177", "HP:0002090", "HP:0002202"
ANCESTORS = {CONSOLIDATION: [OPACITY], OPACITY: [], PNEUMONIA: [], EFFUSION: []}
VOCAB = Vocabulary([CONSOLIDATION, EFFUSION, OPACITY, PNEUMONIA], ["Consolidation", "Effusion", "Opacity",
                                                                   "Pneumonia"], ANCESTORS, ["CXR:pneumonia"],
                   ["CXR_PACK"])


def ancestors_of(t: str) -> list[str]:
    return ANCESTORS.get(t, [])


def test_label_matrix_closes_links_over_the_hierarchy_and_links_win_over_the_finding_sets() -> None:
    shows = [[CONSOLIDATION], [], [], ["HP:9999999"]]
    rules_out = [[], [OPACITY], [], []]
    labels = label_matrix(VOCAB, shows, rules_out, ancestors_of)
    col = VOCAB.column
    # showing consolidation shows its ancestor opacity; ruling out opacity rules out consolidation below it
    assert labels[0, col[CONSOLIDATION]] == 1 and labels[0, col[OPACITY]] == 1 and labels[0, col[EFFUSION]] == 0
    assert labels[1, col[OPACITY]] == -1 and labels[1, col[CONSOLIDATION]] == -1 and labels[1, col[PNEUMONIA]] == 0
    assert not labels[2].any() and not labels[3].any()  # silent; an unknown term links nothing
    # the finding's sets fill what the caption leaves silent; the caption's own links win a conflict
    implied = [([PNEUMONIA], [EFFUSION]), ([PNEUMONIA, OPACITY], []), ([], [PNEUMONIA]), ([], [])]
    filled = label_matrix(VOCAB, shows, rules_out, ancestors_of, implied)
    assert filled[0, col[PNEUMONIA]] == 1 and filled[0, col[EFFUSION]] == -1 and filled[0, col[CONSOLIDATION]] == 1
    assert filled[1, col[OPACITY]] == -1 and filled[1, col[PNEUMONIA]] == 1  # the link ruled opacity out
    assert filled[2, col[PNEUMONIA]] == -1


def test_transfer_features_weights_labelled_neighbours_and_smooths_towards_the_prior() -> None:
    evidence = F.normalize(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]), dim=-1)
    labels = torch.tensor([[1], [0], [-1]], dtype=torch.int8)
    query = F.normalize(torch.tensor([[1.0, 0.05]]), dim=-1)
    share, rule_out, idx, sims, labelled, shown = transfer_features(query, evidence, labels, k=3, tau=0.05, alpha=1.0,
                                                             prior=torch.tensor([0.5]))
    assert idx[0].tolist()[:2] == [0, 1] and sims[0, 0] >= sims[0, 1] >= sims[0, 2]
    # the silent neighbour adds no label mass; the far one that rules it out weighs almost nothing
    assert 0.5 < float(labelled[0, 0]) < 1.0 and 0.5 < float(shown[0, 0]) <= float(labelled[0, 0])
    assert float(share[0, 0]) > 0.6 and float(rule_out[0, 0]) == pytest.approx(1.0 - float(share[0, 0]), abs=1e-6)
    none, *_ = transfer_features(query, evidence[:0], labels[:0], k=3, tau=0.05, alpha=1.0,
                                 prior=torch.tensor([0.3]))
    assert float(none[0, 0]) == pytest.approx(0.3)  # no evidence: the prior


def _grounding(**params: object) -> Grounding:
    text = F.normalize(torch.eye(4, 8), dim=-1)
    absence = F.normalize(torch.eye(4, 8).roll(4, dims=1), dim=-1)
    return Grounding(VOCAB, GroundingParams(**params), text, absence, torch.zeros(4), torch.ones(4),  # type: ignore[arg-type]
                     torch.full((4,), 0.5), torch.randn(3, 16).half())


def test_answer_is_a_probability_per_term_and_the_files_round_trip(tmp_path: Path) -> None:
    g = _grounding(k=2, tau=0.1, coef_share=2.0, coef_text=1.0, intercept=-0.5, domain_threshold=0.8,
                   calibrated=True)
    evidence = F.normalize(torch.randn(5, 8, generator=torch.Generator().manual_seed(0)), dim=-1)
    labels = torch.from_numpy(label_matrix(VOCAB, [[CONSOLIDATION]] * 5, [[EFFUSION]] * 5, ancestors_of))
    query = evidence[:2]
    answers = g.answer(query, evidence, labels, torch.tensor([0.9, 0.3]))
    assert len(answers) == 2 and answers[0].neighbours[0] == 0 and answers[0].nearest_similarity == pytest.approx(1.0)
    a = answers[0]
    col = VOCAB.column
    assert a.probability.shape == (4,) and ((a.probability > 0) & (a.probability < 1)).all()
    # every neighbour shows consolidation and rules out effusion
    assert a.probability[col[CONSOLIDATION]] > a.probability[col[EFFUSION]]
    assert a.domain_similarity == pytest.approx(0.9) and answers[1].domain_similarity == pytest.approx(0.3)
    g.save(tmp_path, evidence_sha256=["a", "b", "c", "d", "e"], evidence_embeddings=evidence, extra={"x": 1})
    assert Grounding.exists(tmp_path)
    loaded, stored = Grounding.load(tmp_path)
    assert loaded.vocabulary.ids == VOCAB.ids and loaded.vocabulary.ancestors == ANCESTORS
    assert loaded.params.coef_share == 2.0 and loaded.params.calibrated and loaded.params.domain_threshold == 0.8
    assert loaded.domain_reference is not None and loaded.domain_reference.shape == (3, 16)
    assert set(stored) == {"a", "b", "c", "d", "e"} and torch.allclose(stored["c"], evidence[2])
    again = loaded.answer(query, evidence, labels)
    np.testing.assert_allclose(again[0].probability, a.probability, atol=1e-5)
    (tmp_path / "grounding.json").write_text('{"format": "other"}', encoding="utf-8")
    with pytest.raises(ValueError, match="not a phenokg-grounding"):
        Grounding.load(tmp_path)


def test_expected_calibration_error() -> None:
    assert expected_calibration_error(np.array([0.9, 0.9, 0.1, 0.1]), np.array([1, 1, 0, 0])) == pytest.approx(0.1)
    assert expected_calibration_error(np.array([0.5, 0.5]), np.array([1, 0])) == pytest.approx(0.0)
    assert np.isnan(expected_calibration_error(np.array([]), np.array([])))


def test_domain_reference_sample_and_nearest() -> None:
    assert reference_sample(["a", "b"], limit=5) == [0, 1]
    picked = reference_sample([str(i) for i in range(100)], limit=10, seed=3)
    assert len(picked) == 10 and picked == sorted(picked) and picked == reference_sample([str(i) for i in range(100)],
                                                                                         limit=10, seed=3)
    q = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=-1)
    ref = F.normalize(torch.tensor([[1.0, 0.1]]), dim=-1).half()
    near = DomainEncoder.nearest(q, ref.float())
    assert near[0] > 0.99 and near[1] < 0.2
    assert DomainEncoder.nearest(q, torch.zeros((0, 2))).tolist() == [-1.0, -1.0]


def test_vocabulary_of_a_training_set() -> None:
    pneumonia = DiseaseSets("CXR:pneumonia", "Pneumonia", ((PNEUMONIA, "Pneumonia"), (CONSOLIDATION, "C")),
                            ((EFFUSION, "Effusion"),))
    views = [{"id": "e1", "shows": [PNEUMONIA], "rules_out": [], "extra": {"finding": "CXR:pneumonia"}},
             {"id": "e2", "shows": [], "rules_out": [OPACITY], "extra": {}}]
    data = ClipData(views, {"CXR:pneumonia": pneumonia}, {PNEUMONIA: "Pneumonia", OPACITY: "Pulmonary opacity"},
                    {}, {CONSOLIDATION: [OPACITY]}, {"CXR:pneumonia": "CXR_PACK"})
    vocab = build_vocabulary(data)
    assert vocab.ids == sorted([PNEUMONIA, OPACITY, CONSOLIDATION, EFFUSION])
    assert vocab.names[vocab.column[OPACITY]] == "Pulmonary opacity"
    assert vocab.findings == ["CXR:pneumonia"] and vocab.sources == ["CXR_PACK"]
    assert vocab.all_ids == set(vocab.ids)
