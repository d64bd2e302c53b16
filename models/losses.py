"""Contrastive, distillation and soft-target losses (open_clip style: modules that return named losses).

Conventions
-----------
* Features are ``[N, D]``; every loss L2-normalises them itself (idempotent for normalised input).
* ``logit_scale`` arguments are *multipliers* (``exp`` already applied, i.e. ``1/τ``), as returned by
  :meth:`models.encoders.CLIPModel.forward`; when omitted, the loss uses its own (fixed or learnable) scale.
* ``false_negative_mask[i, j] = True`` (``i != j``) removes item ``j`` from item ``i``'s negatives in both
  directions (see :func:`models.train.sampler.false_negative_mask`). The diagonal is ignored.

Formulations
------------
* :class:`InfoNCELoss`: CLIP's symmetric InfoNCE, ``½[CE(s·A·Bᵀ, I) + CE(s·B·Aᵀ, I)]`` (seed 004 Eq. 2/4).
* :class:`KnowledgeDistillationLoss`: seed 004 appendix 15.2 Eq. 5, the text–knowledge contrastive loss: a
  symmetric InfoNCE between the student's text embeddings ``t_i`` and the frozen teacher's embeddings
  ``k_i = κ(c_i)`` of the *same* captions, fixed ``τ_kd = 0.07`` (the paper does not give its value; we use
  the knowledge encoder's τ). ``mode="relational"`` instead matches the row-wise similarity distributions
  ``softmax_{j≠i}(sim(t_i, t_j)/τ)`` to the teacher's with ``KL(teacher ‖ student)`` (works when student and
  teacher widths differ); ``mode="both"`` adds the two.
* :class:`SoftTargetLoss`: seed 001 MCSL. Targets ``S = λ·I + (1-λ)·Ĵ`` where ``Ĵ`` is the Jaccard matrix of
  the items' phenotype sets with the diagonal removed and rows normalised (``"sum"``: divide by the row sum,
  rows without any overlap fall back to the identity; ``"softmax"``: the paper's temperature softmax over
  ``j ≠ i``). Soft cross-entropy in both directions, averaged. ``λ = 1`` is plain InfoNCE. The seed writes
  ``(I + λ'·Ĵ)/(1+λ')``; that is ours with ``λ = 1/(1+λ')`` (``λ = 0.7`` ≈ ``λ' = 0.43``).
* :class:`PhenoLIPLoss`: ``contrastive + w_kd·distill + w_soft·soft``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kg.errors import ValidationError

__all__ = [
    "InfoNCELoss",
    "KnowledgeDistillationLoss",
    "PhenoLIPLoss",
    "SoftTargetLoss",
    "info_nce",
    "jaccard_matrix",
    "soft_targets",
]

DEFAULT_TEMPERATURE = 0.07
MAX_LOGIT_SCALE = 100.0

KDMode = Literal["contrastive", "relational", "both"]
SoftNorm = Literal["sum", "softmax"]


def jaccard_matrix(sets: Sequence[AbstractSet[str]], *, empty_value: float = 1.0) -> Tensor:
    """``J[i, j] = |S_i ∩ S_j| / |S_i ∪ S_j|`` as a float32 ``[N, N]`` tensor.

    Two empty sets are equal, so their entry is ``empty_value`` (default 1.0, which also keeps ``J[i, i] = 1``
    for an empty set); an empty and a non-empty set give 0.
    """
    n = len(sets)
    vocab: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    for i, s in enumerate(sets):
        for item in s:
            rows.append(i)
            cols.append(vocab.setdefault(item, len(vocab)))
    m = torch.zeros((n, max(len(vocab), 1)), dtype=torch.float32)
    if rows:
        m[torch.tensor(rows), torch.tensor(cols)] = 1.0
    inter = m @ m.T
    size = m.sum(dim=1)
    union = size[:, None] + size[None, :] - inter
    j = torch.where(union > 0, inter / union.clamp(min=1.0), torch.full_like(inter, float(empty_value)))
    return j


def soft_targets(
    jaccard: Tensor,
    identity_weight: float = 0.7,
    *,
    normalisation: SoftNorm = "sum",
    temperature: float = 0.1,
) -> Tensor:
    """MCSL target matrix ``λ·I + (1-λ)·Ĵ`` whose rows sum to 1 (see module docstring)."""
    if jaccard.ndim != 2 or jaccard.shape[0] != jaccard.shape[1]:
        raise ValueError(f"jaccard must be square, got shape {tuple(jaccard.shape)}")
    if not 0.0 <= identity_weight <= 1.0:
        raise ValidationError("identity_weight must lie in [0, 1]")
    n = jaccard.shape[0]
    eye = torch.eye(n, dtype=jaccard.dtype, device=jaccard.device)
    off = ~eye.bool()
    if normalisation == "sum":
        j = jaccard * off
        row = j.sum(dim=1, keepdim=True)
        j_hat = torch.where(row > 0, j / row.clamp(min=1e-12), eye)
    elif normalisation == "softmax":
        if n == 1:
            j_hat = eye
        else:
            logits = (jaccard / temperature).masked_fill(~off, float("-inf"))
            j_hat = logits.softmax(dim=1)
    else:
        raise ValidationError(f"normalisation must be 'sum' or 'softmax', not {normalisation!r}")
    return identity_weight * eye + (1.0 - identity_weight) * j_hat


def _scale_tensor(scale: Tensor | float, like: Tensor) -> Tensor:
    if isinstance(scale, Tensor):
        return scale.to(device=like.device, dtype=like.dtype)
    return torch.tensor(float(scale), device=like.device, dtype=like.dtype)


def _mask_negatives(logits: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return logits
    if mask.shape != logits.shape:
        raise ValueError(f"false_negative_mask shape {tuple(mask.shape)} != logits {tuple(logits.shape)}")
    m = mask.to(device=logits.device, dtype=torch.bool).clone()
    m.fill_diagonal_(False)
    return logits.masked_fill(m, float("-inf"))


def info_nce(
    features_a: Tensor,
    features_b: Tensor,
    logit_scale: Tensor | float,
    false_negative_mask: Tensor | None = None,
) -> Tensor:
    """Symmetric InfoNCE between row-aligned ``features_a`` and ``features_b`` (positives on the diagonal)."""
    if features_a.shape[0] != features_b.shape[0]:
        raise ValueError(f"batch sizes differ: {features_a.shape[0]} vs {features_b.shape[0]}")
    if features_a.shape[1] != features_b.shape[1]:
        raise ValueError(f"feature widths differ: {features_a.shape[1]} vs {features_b.shape[1]}")
    a = F.normalize(features_a, dim=-1)
    b = F.normalize(features_b, dim=-1)
    logits = _scale_tensor(logit_scale, a) * a @ b.T
    labels = torch.arange(a.shape[0], device=a.device)
    mask_t = None if false_negative_mask is None else false_negative_mask.T
    loss_ab = F.cross_entropy(_mask_negatives(logits, false_negative_mask), labels)
    loss_ba = F.cross_entropy(_mask_negatives(logits.T, mask_t), labels)
    return 0.5 * (loss_ab + loss_ba)


class _ScaledLoss(nn.Module):
    """Holds a fixed (buffer) or learnable (parameter) log logit scale initialised to ``log(1/τ)``."""

    logit_scale: Tensor

    def __init__(self, temperature: float, learnable: bool, max_logit_scale: float) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValidationError("temperature must be > 0")
        init = torch.tensor(math.log(1.0 / temperature), dtype=torch.float32)
        if learnable:
            self.logit_scale = nn.Parameter(init)
        else:
            self.register_buffer("logit_scale", init)
        self.max_logit_scale = float(max_logit_scale)

    def scale(self) -> Tensor:
        """``exp(logit_scale)`` clamped to ``max_logit_scale``."""
        return self.logit_scale.exp().clamp(max=self.max_logit_scale)

    @property
    def temperature(self) -> float:
        """Current ``τ = 1/scale``."""
        return float(1.0 / self.scale().detach())


class InfoNCELoss(_ScaledLoss):
    """Symmetric InfoNCE with in-batch negatives; returns ``{name: loss}``."""

    def __init__(
        self,
        temperature: float = DEFAULT_TEMPERATURE,
        *,
        learnable: bool = False,
        max_logit_scale: float = MAX_LOGIT_SCALE,
        name: str = "contrastive",
    ) -> None:
        super().__init__(temperature, learnable, max_logit_scale)
        self.name = name

    def forward(
        self,
        features_a: Tensor,
        features_b: Tensor,
        logit_scale: Tensor | float | None = None,
        false_negative_mask: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Loss between row-aligned batches; ``logit_scale`` (a multiplier) overrides the module's own."""
        scale = self.scale() if logit_scale is None else logit_scale
        return {self.name: info_nce(features_a, features_b, scale, false_negative_mask)}


class KnowledgeDistillationLoss(nn.Module):
    """Aligns student text embeddings with a frozen teacher's embeddings of the same texts.

    ``mode="contrastive"`` (default, seed 004 Eq. 5): symmetric InfoNCE between student and teacher batches at
    fixed ``τ``. ``mode="relational"``: ``KL(p_teacher ‖ p_student)`` between the in-batch similarity
    distributions (self-pairs excluded), each at ``τ``. The teacher side is always detached.
    """

    def __init__(
        self,
        temperature: float = DEFAULT_TEMPERATURE,
        *,
        mode: KDMode = "contrastive",
        name: str = "distill",
    ) -> None:
        super().__init__()
        if mode not in ("contrastive", "relational", "both"):
            raise ValidationError(f"mode must be 'contrastive', 'relational' or 'both', not {mode!r}")
        if temperature <= 0:
            raise ValidationError("temperature must be > 0")
        self.temperature = float(temperature)
        self.mode: KDMode = mode
        self.name = name

    def _relational(self, student: Tensor, teacher: Tensor) -> Tensor:
        n = student.shape[0]
        if n < 2:
            return student.sum() * 0.0
        s = F.normalize(student, dim=-1)
        t = F.normalize(teacher, dim=-1)
        eye = torch.eye(n, dtype=torch.bool, device=s.device)
        s_logits = (s @ s.T / self.temperature).masked_fill(eye, float("-inf"))
        t_logits = (t @ t.T / self.temperature).masked_fill(eye, float("-inf"))
        log_p_s = s_logits.log_softmax(dim=1).masked_fill(eye, 0.0)
        log_p_t = t_logits.log_softmax(dim=1).masked_fill(eye, 0.0)
        p_t = log_p_t.exp().masked_fill(eye, 0.0)
        return (p_t * (log_p_t - log_p_s)).sum(dim=1).mean()

    def forward(
        self,
        student_features: Tensor,
        teacher_features: Tensor,
        false_negative_mask: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """``{name: loss}`` for row-aligned student and teacher embeddings of the same texts."""
        teacher = teacher_features.detach()
        if student_features.shape[0] != teacher.shape[0]:
            raise ValueError("student and teacher batches must be row-aligned")
        loss = student_features.sum() * 0.0
        if self.mode in ("contrastive", "both"):
            if student_features.shape[1] != teacher.shape[1]:
                raise ValueError(
                    f"contrastive distillation needs equal widths (student {student_features.shape[1]}, "
                    f"teacher {teacher.shape[1]}): project the student first or use mode='relational'"
                )
            loss = loss + info_nce(student_features, teacher, 1.0 / self.temperature, false_negative_mask)
        if self.mode in ("relational", "both"):
            loss = loss + self._relational(student_features, teacher)
        return {self.name: loss}


class SoftTargetLoss(_ScaledLoss):
    """Seed 001 MCSL: soft cross-entropy against Jaccard-blended targets, both directions."""

    def __init__(
        self,
        identity_weight: float = 0.7,
        *,
        normalisation: SoftNorm = "sum",
        jaccard_temperature: float = 0.1,
        temperature: float = DEFAULT_TEMPERATURE,
        learnable: bool = False,
        max_logit_scale: float = MAX_LOGIT_SCALE,
        name: str = "soft",
    ) -> None:
        super().__init__(temperature, learnable, max_logit_scale)
        if not 0.0 <= identity_weight <= 1.0:
            raise ValidationError("identity_weight must lie in [0, 1]")
        self.identity_weight = float(identity_weight)
        self.normalisation: SoftNorm = normalisation
        self.jaccard_temperature = float(jaccard_temperature)
        self.name = name

    def forward(
        self,
        image_features: Tensor,
        text_features: Tensor,
        logit_scale: Tensor | float | None = None,
        *,
        sets: Sequence[AbstractSet[str]] | None = None,
        jaccard: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Give either the batch items' phenotype ``sets`` or a precomputed ``jaccard`` matrix."""
        if jaccard is None:
            if sets is None:
                raise ValueError("SoftTargetLoss needs `sets` or `jaccard`")
            jaccard = jaccard_matrix(sets)
        n = image_features.shape[0]
        if jaccard.shape != (n, n) or text_features.shape[0] != n:
            raise ValueError(f"jaccard {tuple(jaccard.shape)} does not match batch size {n}")
        a = F.normalize(image_features, dim=-1)
        b = F.normalize(text_features, dim=-1)
        scale = self.scale() if logit_scale is None else logit_scale
        logits = _scale_tensor(scale, a) * a @ b.T
        targets = soft_targets(
            jaccard.to(device=a.device, dtype=a.dtype),
            self.identity_weight,
            normalisation=self.normalisation,
            temperature=self.jaccard_temperature,
        )
        # J is symmetric, so the text→image targets are the same matrix indexed by text rows.
        loss_i2t = F.cross_entropy(logits, targets)
        loss_t2i = F.cross_entropy(logits.T, targets)
        return {self.name: 0.5 * (loss_i2t + loss_t2i)}


class PhenoLIPLoss(nn.Module):
    """Image–text InfoNCE + ``w_kd`` · knowledge distillation + ``w_soft`` · MCSL soft targets.

    Returns ``{"contrastive", "distill", "soft", "total"}``; disabled terms are zero tensors so logs always
    have the same keys.
    """

    def __init__(
        self,
        *,
        w_kd: float = 0.3,
        w_soft: float = 0.0,
        temperature: float = DEFAULT_TEMPERATURE,
        kd_temperature: float = DEFAULT_TEMPERATURE,
        kd_mode: KDMode = "contrastive",
        identity_weight: float = 0.7,
        soft_normalisation: SoftNorm = "sum",
    ) -> None:
        super().__init__()
        if w_kd < 0 or w_soft < 0:
            raise ValidationError("loss weights must be >= 0")
        self.w_kd = float(w_kd)
        self.w_soft = float(w_soft)
        self.contrastive = InfoNCELoss(temperature, name="contrastive")
        self.distill = KnowledgeDistillationLoss(kd_temperature, mode=kd_mode, name="distill")
        self.soft = SoftTargetLoss(
            identity_weight, normalisation=soft_normalisation, temperature=temperature, name="soft"
        )

    def forward(
        self,
        image_features: Tensor,
        text_features: Tensor,
        logit_scale: Tensor | float | None = None,
        *,
        student_text_features: Tensor | None = None,
        teacher_text_features: Tensor | None = None,
        phenotype_sets: Sequence[AbstractSet[str]] | None = None,
        jaccard: Tensor | None = None,
        false_negative_mask: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Compute all terms.

        ``student_text_features`` defaults to ``text_features`` (use the pre-projection text embedding when
        the projection changes the width); ``teacher_text_features`` is required when ``w_kd > 0``, and
        ``phenotype_sets`` or ``jaccard`` when ``w_soft > 0``.
        """
        zero = image_features.sum() * 0.0
        out: dict[str, Tensor] = {}
        out.update(self.contrastive(image_features, text_features, logit_scale, false_negative_mask))
        if self.w_kd > 0:
            if teacher_text_features is None:
                raise ValueError("w_kd > 0 needs teacher_text_features")
            student = text_features if student_text_features is None else student_text_features
            out.update(self.distill(student, teacher_text_features, false_negative_mask))
        else:
            out["distill"] = zero
        if self.w_soft > 0:
            if phenotype_sets is None and jaccard is None:
                raise ValueError("w_soft > 0 needs phenotype_sets or jaccard")
            out.update(
                self.soft(image_features, text_features, logit_scale, sets=phenotype_sets, jaccard=jaccard)
            )
        else:
            out["soft"] = zero
        out["total"] = out["contrastive"] + self.w_kd * out["distill"] + self.w_soft * out["soft"]
        return out
