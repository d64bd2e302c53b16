"""Losses against hand-computed values (models.losses)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from models.losses import (
    InfoNCELoss,
    KnowledgeDistillationLoss,
    PhenoLIPLoss,
    SoftTargetLoss,
    info_nce,
    jaccard_matrix,
    soft_targets,
)


def _ce(logits: list[float], target: int) -> float:
    m = max(logits)
    return -(logits[target] - m - math.log(sum(math.exp(x - m) for x in logits)))


def test_jaccard_matrix_hand_values() -> None:
    j = jaccard_matrix([frozenset({"a", "b"}), frozenset({"b", "c"}), frozenset(), frozenset(), {"a", "b"}])
    assert j.shape == (5, 5) and j.dtype == torch.float32
    assert j[0, 1] == pytest.approx(1 / 3)
    assert j[0, 4] == 1.0 and j[0, 2] == 0.0
    assert j[2, 3] == 1.0  # two empty sets are equal
    assert torch.equal(j, j.T)
    assert torch.all(j.diagonal() == 1.0)
    assert jaccard_matrix([set(), set()], empty_value=0.0)[0, 1] == 0.0
    assert jaccard_matrix([]).shape == (0, 0)


def test_info_nce_perfect_alignment_is_near_zero() -> None:
    n, s = 4, 1 / 0.07
    eye = torch.eye(n)
    loss = InfoNCELoss(0.07)(eye, eye)["contrastive"]
    assert float(loss) == pytest.approx(math.log(1 + (n - 1) * math.exp(-s)), abs=1e-6)
    assert float(loss) < 1e-5


def test_info_nce_uninformative_features_give_log_n() -> None:
    n = 8
    same = torch.ones(n, 16)
    assert float(info_nce(same, same, 1 / 0.07)) == pytest.approx(math.log(n), abs=1e-5)
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, 2048, generator=g), torch.randn(n, 2048, generator=g)  # shuffled / unrelated pairs
    assert float(info_nce(a, b, 1.0)) == pytest.approx(math.log(n), abs=0.05)


def test_info_nce_hand_computed_two_by_two() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    s = 2.0
    ab = (_ce([2.0, 1.2], 0) + _ce([0.0, 1.6], 1)) / 2
    ba = (_ce([2.0, 0.0], 0) + _ce([1.2, 1.6], 1)) / 2
    assert float(info_nce(a, b, s)) == pytest.approx((ab + ba) / 2, abs=1e-6)
    # features are normalised inside
    assert float(info_nce(3 * a, 5 * b, s)) == pytest.approx((ab + ba) / 2, abs=1e-6)


def test_false_negative_mask_removes_duplicates_from_negatives() -> None:
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    s = 10.0
    unmasked = (2 * math.log(2 + math.exp(-s)) + math.log(1 + 2 * math.exp(-s))) / 3
    assert float(info_nce(x, x, s)) == pytest.approx(unmasked, abs=1e-6)
    mask = torch.zeros(3, 3, dtype=torch.bool)
    mask[0, 1] = mask[1, 0] = True
    masked = (2 * math.log(1 + math.exp(-s)) + math.log(1 + 2 * math.exp(-s))) / 3
    out = InfoNCELoss()(x, x, logit_scale=s, false_negative_mask=mask)
    assert float(out["contrastive"]) == pytest.approx(masked, abs=1e-6)
    with pytest.raises(ValueError):
        info_nce(x, x, s, torch.zeros(2, 2, dtype=torch.bool))


def test_learnable_temperature_gets_gradients() -> None:
    loss_fn = InfoNCELoss(0.07, learnable=True)
    assert loss_fn.temperature == pytest.approx(0.07, rel=1e-5)
    a = torch.randn(6, 8, requires_grad=True)
    b = torch.randn(6, 8, requires_grad=True)
    loss_fn(a, b)["contrastive"].backward()
    assert a.grad is not None and b.grad is not None
    assert isinstance(loss_fn.logit_scale, torch.nn.Parameter) and loss_fn.logit_scale.grad is not None
    fixed = InfoNCELoss(0.07)
    assert not any(True for _ in fixed.parameters())  # fixed τ is a buffer


def test_soft_targets_hand_values() -> None:
    j = jaccard_matrix([{"a", "b"}, {"a", "b"}, {"c"}])
    t = soft_targets(j, 0.7)
    expected = torch.tensor([[0.7, 0.3, 0.0], [0.3, 0.7, 0.0], [0.0, 0.0, 1.0]])
    assert torch.allclose(t, expected, atol=1e-6)
    t2 = soft_targets(jaccard_matrix([{"a", "b"}, {"b", "c"}, {"b"}]), 0.5)
    # row 0: J = [1, 1/3, 1/2] -> off-diagonal normalised [0, 0.4, 0.6]
    assert torch.allclose(t2[0], torch.tensor([0.5, 0.2, 0.3]), atol=1e-6)
    for norm in ("sum", "softmax"):
        rows = soft_targets(torch.rand(5, 5), 0.7, normalisation=norm).sum(dim=1)
        assert torch.allclose(rows, torch.ones(5), atol=1e-6)
    with pytest.raises(ValueError):
        soft_targets(torch.rand(2, 3))


def test_soft_target_loss_with_identity_weight_one_equals_info_nce() -> None:
    g = torch.Generator().manual_seed(1)
    img, txt = torch.randn(6, 32, generator=g), torch.randn(6, 32, generator=g)
    sets = [{"a"}, {"a"}, {"a", "b"}, {"c"}, set(), {"b"}]
    soft = SoftTargetLoss(identity_weight=1.0)(img, txt, 1 / 0.07, sets=sets)["soft"]
    assert float(soft) == pytest.approx(float(info_nce(img, txt, 1 / 0.07)), abs=1e-5)
    blended = SoftTargetLoss(identity_weight=0.7)(img, txt, 1 / 0.07, sets=sets)["soft"]
    assert float(blended) != pytest.approx(float(soft), abs=1e-4)
    with pytest.raises(ValueError):
        SoftTargetLoss()(img, txt)


def test_soft_targets_reward_aligning_items_with_shared_phenotypes() -> None:
    """Items 0 and 1 share their sets: soft targets prefer texts close to both images, hard ones do not."""
    img = torch.eye(3)
    cross = torch.tensor([[0.8, 0.6, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 1.0]])
    sets = [{"x"}, {"x"}, {"y"}]
    hard_fn, soft_fn = SoftTargetLoss(identity_weight=1.0), SoftTargetLoss(identity_weight=0.5)
    assert float(soft_fn(img, cross, 5.0, sets=sets)["soft"]) < float(
        soft_fn(img, img, 5.0, sets=sets)["soft"]
    )
    assert float(hard_fn(img, img, 5.0, sets=sets)["soft"]) < float(
        hard_fn(img, cross, 5.0, sets=sets)["soft"]
    )


def test_knowledge_distillation_contrastive_and_relational() -> None:
    g = torch.Generator().manual_seed(2)
    teacher = torch.randn(5, 16, generator=g)
    student = torch.randn(5, 16, generator=g)
    kd = KnowledgeDistillationLoss(0.07)
    out = kd(student, teacher)
    assert set(out) == {"distill"}
    assert float(out["distill"]) == pytest.approx(float(info_nce(student, teacher, 1 / 0.07)), abs=1e-6)
    aligned = kd(teacher.clone(), teacher)["distill"]
    assert float(aligned) < float(out["distill"])
    rel = KnowledgeDistillationLoss(0.07, mode="relational")
    assert float(rel(teacher.clone(), teacher)["distill"]) == pytest.approx(0.0, abs=1e-6)
    assert float(rel(student, teacher)["distill"]) > 0
    narrow = torch.randn(5, 8, generator=g, requires_grad=True)
    rel_narrow = rel(narrow, teacher)["distill"]  # widths may differ for relational KD
    rel_narrow.backward()
    assert torch.isfinite(rel_narrow) and narrow.grad is not None and torch.isfinite(narrow.grad).all()
    with pytest.raises(ValueError):
        kd(narrow, teacher)
    both = KnowledgeDistillationLoss(0.07, mode="both")(student, teacher)["distill"]
    expected = float(kd(student, teacher)["distill"]) + float(rel(student, teacher)["distill"])
    assert float(both) == pytest.approx(expected, abs=1e-5)


def test_phenolip_loss_keys_weights_and_gradients() -> None:
    g = torch.Generator().manual_seed(3)
    img = torch.randn(4, 8, generator=g, requires_grad=True)
    txt = torch.randn(4, 8, generator=g, requires_grad=True)
    student = torch.randn(4, 12, generator=g, requires_grad=True)
    teacher = torch.randn(4, 12, generator=g, requires_grad=True)
    log_scale = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07)))
    loss_fn = PhenoLIPLoss(w_kd=0.3, w_soft=0.5)
    out = loss_fn(
        img,
        txt,
        log_scale.exp(),
        student_text_features=student,
        teacher_text_features=teacher,
        phenotype_sets=[{"a"}, {"a", "b"}, {"c"}, set()],
    )
    assert set(out) == {"contrastive", "distill", "soft", "total"}
    total = out["contrastive"] + 0.3 * out["distill"] + 0.5 * out["soft"]
    assert float(out["total"].detach()) == pytest.approx(float(total.detach()), abs=1e-6)
    out["total"].backward()
    for t in (img, txt, student, log_scale):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0
    assert teacher.grad is None  # the teacher is frozen

    with torch.no_grad():
        plain = PhenoLIPLoss(w_kd=0.0)(img, txt)
    assert float(plain["distill"]) == 0.0 and float(plain["soft"]) == 0.0
    assert float(plain["total"]) == pytest.approx(float(plain["contrastive"]))
    with pytest.raises(ValueError):
        PhenoLIPLoss(w_kd=0.3)(img, txt)  # no teacher features
    with pytest.raises(ValueError):
        PhenoLIPLoss(w_kd=0.0, w_soft=1.0)(img, txt)  # no sets


def test_losses_match_functional_reference() -> None:
    """Cross-check the symmetric InfoNCE against a direct F.cross_entropy formulation."""
    g = torch.Generator().manual_seed(4)
    a, b = (
        F.normalize(torch.randn(7, 5, generator=g), dim=-1),
        F.normalize(torch.randn(7, 5, generator=g), dim=-1),
    )
    logits = 14.0 * a @ b.T
    labels = torch.arange(7)
    ref = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
    assert float(info_nce(a, b, 14.0)) == pytest.approx(float(ref), abs=1e-6)
