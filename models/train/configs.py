"""The training configs of the knowledge encoder and the image–text model, apart from their trainers.

Plain dataclasses with no torch import, so the API can build its job-config schemas (and the CLI its
options) from them without loading the training stack; the trainers re-export them
(:mod:`models.train.knowledge`, :mod:`models.train.clip_train`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from kg.errors import ValidationError
from models.registry import config_from_dict
from models.train.sampler import SingleAttributePolicy, check_kind_weights

__all__ = ["ClipTrainConfig", "KDMode", "KnowledgeTrainConfig", "Schedule"]

Schedule = Literal["cosine", "linear", "constant"]
KDMode = Literal["contrastive", "relational", "both"]


@dataclass(frozen=True)
class KnowledgeTrainConfig:
    """Hyper-parameters of knowledge-encoder training (paper: PubMedBERT, lr 1e-5, batch 256, τ 0.07)."""

    model_path: str | None = None
    """Initial text model directory (HF or sentence-transformers); ``None``: packaged all-MiniLM-L6-v2."""
    seed: int = 0
    batch_size: int = 64
    lr: float = 2e-5
    weight_decay: float = 0.01
    epochs: int = 1
    max_steps: int | None = None
    """Stop after this many optimizer steps (cycling epochs as needed); overrides ``epochs``."""
    warmup_steps: int = 0
    schedule: Schedule = "cosine"
    temperature: float = 0.07
    learnable_temperature: bool = False
    max_length: int = 64
    grad_clip: float | None = 1.0
    checkpoint_every: int = 500
    log_every: int = 1
    single_attribute: SingleAttributePolicy = "skip"
    name_anchor_prob: float = 0.5
    kind_weights: dict[str, float] | None = None
    """Sampling weight of each attribute kind in a pair (``None``: uniform; see
    :class:`models.train.sampler.AttributePairSampler`)."""
    trainable_layers: int | None = None
    """Train only the top N transformer layers (``None``: all; embeddings frozen whenever N is set)."""
    paraphrases: bool = False
    """Add mention-style paraphrases of grouping-term labels as a ``paraphrase`` attribute kind
    (:mod:`models.train.paraphrase`)."""

    def __post_init__(self) -> None:
        check_kind_weights(self.kind_weights)
        if self.trainable_layers is not None and self.trainable_layers < 1:
            raise ValidationError("trainable_layers must be >= 1 (or None: all layers)")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KnowledgeTrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise."""
        return config_from_dict(cls, data)


@dataclass(frozen=True)
class ClipTrainConfig:
    """Hyper-parameters of image–text training."""

    image_model: str = "efficientnet_lite0"
    image_checkpoint: str | None = None
    """timm checkpoint file / saved ImageEncoder dir; ``None``: packaged Lite0 (if ``image_pretrained``)."""
    image_pretrained: bool = True
    text_model: str | None = None
    """Student text tower init: a knowledge-encoder directory (``None``: packaged MiniLM)."""
    teacher_model: str | None = None
    """Frozen teacher; ``None``: the same directory as ``text_model``."""
    embed_dim: int = 256
    image_size: int = 224
    batch_size: int = 64
    lr: float = 1e-4
    text_lr: float = 1e-5
    weight_decay: float = 0.05
    epochs: int = 1
    max_steps: int | None = None
    warmup_steps: int = 0
    temperature: float = 0.07
    w_kd: float = 0.3
    w_soft: float = 0.0
    identity_weight: float = 0.7
    kd_mode: KDMode = "contrastive"
    max_length: int = 64
    text_trainable_layers: int | None = None
    """Text-tower layers that train: ``None`` all; ``k`` the top ``k`` transformer layers (embeddings and the
    rest frozen); ``0`` none — the tower is frozen (LiT-style "locked text"), its caption embeddings are
    computed once per distinct caption and only the projection heads and the image tower learn. With a frozen
    tower the distillation term has nothing to act on and is skipped."""
    grad_clip: float | None = 1.0
    augment: bool = False
    """Random affine and exposure jitter per training image (:func:`models.images.augment_images`)."""
    seed: int = 0
    amp: bool = True
    """Mixed precision on CUDA (bf16 if supported, else fp16 + GradScaler); ignored on the CPU."""
    num_workers: int = 0
    channels_last: bool = True
    """On CUDA, keep the image tower in channels-last memory format (faster convolutions under AMP)."""
    log_every: int = 10

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def text_frozen(self) -> bool:
        return self.text_trainable_layers == 0

    @property
    def uses_teacher(self) -> bool:
        """Whether the distillation term runs (``w_kd > 0`` and a text tower that trains)."""
        return self.w_kd > 0 and not self.text_frozen

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClipTrainConfig:
        return config_from_dict(cls, data)
