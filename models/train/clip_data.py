"""Datasets for image–text (CLIP-style) training: graph evidence and labelled images with set-theory captions.

Two sources, one item shape (:class:`ClipSample`: image tensor ``[C, H, W]`` in ``[0, 1]``, caption text,
phenotype set for MCSL Jaccard targets, integer label or -1):

* :class:`EvidenceDataset` — image–caption evidence from the graph (:func:`kg.repo.training_views.evidence_items`):
  the image is read from the blob store (``blob_path``), the caption is the stored caption, the phenotype set
  is what the caption ``SHOWS``. Items whose image file is missing on this machine are dropped at
  construction (``missing`` lists them).
* :class:`SetTheoryCaptionDataset` — labelled images (e.g. PneumoniaMNIST: 0 normal → ``CXR:no_finding``,
  1 pneumonia → ``CXR:pneumonia``) captioned on the fly from the label's disease sets (seed 000): the
  granularity (coarse / medium / fine) and template are drawn per item with an RNG seeded by
  ``(seed, epoch, index)``, so every epoch sees other phrasings yet runs are reproducible. The phenotype set
  is ``T(d)`` plus the disease id itself (so two images of one disease overlap fully).

:func:`collate_clip` stacks images and keeps texts / sets as lists; the trainer tokenises (the text tower
owns the tokenizer). Images are resized to ``image_size`` (bilinear) and kept grey (1 channel) when the
source is grey: :class:`models.encoders.ImageEncoder` replicates grey to RGB itself. With ``image_size=None``
a dataset keeps images at their native size and the trainer resizes whole batches on its device
(:func:`resize_images`, the same operation): on a GPU this moves 28 px images instead of 224 px ones through
the loader, which is what keeps the loader ahead of the GPU.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from kg.errors import ValidationError
from models.captions import Granularity, build_caption
from models.images import to_image_tensor
from models.train.sampler import false_negative_mask
from models.types import DiseaseSets

__all__ = [
    "CAPTION_SOURCES",
    "PNEUMONIAMNIST_CLASSES",
    "CaptionSource",
    "ClipBatch",
    "ClipSample",
    "EvidenceDataset",
    "EvidenceRecord",
    "SetTheoryCaptionDataset",
    "collate_clip",
]

CaptionGranularity = Literal["coarse", "medium", "fine", "mixed"]
#: PneumoniaMNIST labels → chest X-ray pack findings.
PNEUMONIAMNIST_CLASSES: dict[int, str] = {0: "CXR:no_finding", 1: "CXR:pneumonia"}


@dataclass(frozen=True)
class ClipSample:
    """One training item."""

    image: Tensor
    text: str
    phenotypes: frozenset[str]
    label: int = -1


@dataclass
class ClipBatch:
    """A collated batch: ``images [B, C, H, W]``, texts, phenotype sets, labels ``[B]``; with
    :class:`ClipCollator` also the texts' ``tokens`` and the ``[B, B]`` false-negative mask ``negatives``."""

    images: Tensor
    texts: list[str]
    phenotypes: list[frozenset[str]]
    labels: Tensor
    tokens: dict[str, Tensor] | None = None
    negatives: Tensor | None = None

    def pin_memory(self) -> ClipBatch:
        """Called by ``DataLoader(pin_memory=True)``: page-locked tensors copy to the GPU asynchronously."""
        return ClipBatch(self.images.pin_memory(), self.texts, self.phenotypes, self.labels.pin_memory(),
                         {k: v.pin_memory() for k, v in self.tokens.items()} if self.tokens is not None else None,
                         self.negatives.pin_memory() if self.negatives is not None else None)


def collate_clip(samples: Sequence[ClipSample]) -> ClipBatch:
    """Stack images (all the same size) and labels; keep texts and sets as lists."""
    return ClipBatch(
        images=torch.stack([s.image for s in samples]),
        texts=[s.text for s in samples],
        phenotypes=[s.phenotypes for s in samples],
        labels=torch.tensor([s.label for s in samples], dtype=torch.long),
    )


class ClipCollator:
    """:func:`collate_clip` plus the work the training step would otherwise do on the main process: the
    captions' false-negative mask and (given a tokenizer) their tokens. In DataLoader workers this runs beside
    the GPU instead of between its steps."""

    def __init__(self, tokenizer: Callable[[Sequence[str]], dict[str, Tensor]] | None = None) -> None:
        self.tokenizer = tokenizer

    def __call__(self, samples: Sequence[ClipSample]) -> ClipBatch:
        batch = collate_clip(samples)
        batch.negatives = false_negative_mask(batch.texts)
        if self.tokenizer is not None:
            batch.tokens = self.tokenizer(batch.texts)
        return batch


@dataclass(frozen=True)
class EvidenceRecord:
    """The fields of an evidence view the dataset needs (``kg.repo.training_views.EvidenceView`` has them).

    ``finding`` / ``label`` come from the record's extra fields (``phenokg evidence import-npz`` writes them):
    the disease whose sets re-caption the image, and the class for zero-shot evaluation (-1: none)."""

    id: str
    blob_path: str
    caption: str
    shows: tuple[str, ...] = ()
    finding: str | None = None
    label: int = -1

    @classmethod
    def from_view(cls, view: Mapping[str, Any]) -> EvidenceRecord:
        extra = view.get("extra") or {}
        label = extra.get("label")
        return cls(str(view["id"]), str(view.get("blob_path") or ""), str(view.get("caption") or ""),
                   tuple(view.get("shows") or ()), str(extra["finding"]) if extra.get("finding") else None,
                   int(label) if isinstance(label, int) and not isinstance(label, bool) else -1)


CaptionSource = Literal["stored", "coarse", "medium", "fine", "mixed"]
CAPTION_SOURCES: tuple[str, ...] = ("stored", "coarse", "medium", "fine", "mixed")


def _draw_caption(d: DiseaseSets, granularity: CaptionGranularity, key: str, max_items: int | None,
                  study: str) -> str:
    rng = random.Random(key)
    levels: tuple[Granularity, ...] = ("coarse", "medium", "fine")
    level: Granularity = rng.choice(levels) if granularity == "mixed" else granularity
    return build_caption(d, level, rng, max_items=max_items, study=study, warn=False).text


class EvidenceDataset(Dataset[ClipSample]):
    """Image–caption evidence read from the blob store.

    ``captions="stored"`` trains on each item's stored caption; ``"coarse" | "medium" | "fine" | "mixed"``
    re-captions every item from its finding's disease sets (``diseases``, keyed by id) with an RNG seeded by
    ``(seed, epoch, item id)``, as :class:`SetTheoryCaptionDataset` does. Items without a finding keep their
    stored caption. Images are decoded once and kept in memory when ``cache_images`` (small datasets).
    """

    def __init__(self, items: Sequence[EvidenceRecord | Mapping[str, Any]], *, image_size: int | None = 224,
                 captions: CaptionSource = "stored", diseases: Mapping[str, DiseaseSets] | None = None,
                 seed: int = 0, max_items: int | None = 8, study: str = "chest radiograph",
                 cache_images: bool = True) -> None:
        if captions not in CAPTION_SOURCES:
            raise ValidationError(f"captions must be one of {', '.join(CAPTION_SOURCES)}, not {captions!r}")
        records = [i if isinstance(i, EvidenceRecord) else EvidenceRecord.from_view(i) for i in items]
        self.image_size = int(image_size) if image_size is not None else None
        self.items = [r for r in records if r.blob_path and r.caption and Path(r.blob_path).is_file()]
        self.missing = [r.id for r in records if r not in self.items]
        self.captions: CaptionSource = captions
        self.diseases = dict(diseases or {})
        if captions != "stored":
            lacking = sorted({r.finding for r in self.items if r.finding and r.finding not in self.diseases})
            if lacking:
                raise ValidationError(f"no typical/excluded sets for findings {lacking}: cannot re-caption")
        self.seed = int(seed)
        self.max_items = max_items
        self.study = study
        self.epoch = 0
        self._cache: dict[int, Tensor] | None = {} if cache_images else None

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose captions ``__getitem__`` draws (call before each epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def labels(self) -> list[int]:
        """Every item's class label (-1: none)."""
        return [r.label for r in self.items]

    def caption_for(self, index: int, epoch: int | None = None) -> str:
        """The caption item ``index`` gets in ``epoch`` (default: the current one)."""
        r = self.items[index]
        if self.captions == "stored" or r.finding is None:
            return r.caption
        key = f"{self.seed}:{self.epoch if epoch is None else epoch}:{r.id}"
        return _draw_caption(self.diseases[r.finding], self.captions, key, self.max_items, self.study)

    def image(self, index: int) -> Tensor:
        """Item ``index``'s image tensor ``[C, H, W]``."""
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        from PIL import Image

        with Image.open(self.items[index].blob_path) as img:
            tensor = to_image_tensor(img, self.image_size)
        if self._cache is not None:
            self._cache[index] = tensor
        return tensor

    def common_size(self) -> tuple[int, int] | None:
        """``(width, height)`` when every image has that size (read from the file headers), else ``None``."""
        from PIL import Image

        sizes: set[tuple[int, int]] = set()
        for r in self.items:
            with Image.open(str(r.blob_path)) as img:
                sizes.add(img.size)
            if len(sizes) > 1:
                return None
        return sizes.pop() if sizes else None

    def images(self) -> Tensor:
        """All images stacked ``[N, C, H, W]`` (for evaluation)."""
        return torch.stack([self.image(i) for i in range(len(self))]) if len(self) else torch.zeros(0)

    def __getitem__(self, index: int) -> ClipSample:
        r = self.items[index]
        return ClipSample(self.image(index), self.caption_for(index), frozenset(r.shows), r.label)


class SetTheoryCaptionDataset(Dataset[ClipSample]):
    """Labelled images captioned from their class's disease sets (seed 000), re-drawn every epoch."""

    def __init__(
        self,
        images: np.ndarray,
        labels: Sequence[int] | np.ndarray,
        diseases: Mapping[int, DiseaseSets],
        *,
        granularity: CaptionGranularity = "mixed",
        image_size: int | None = 224,
        seed: int = 0,
        max_items: int | None = None,
        study: str = "chest radiograph",
    ) -> None:
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(self.images) != len(self.labels):
            raise ValidationError(f"{len(self.images)} images but {len(self.labels)} labels")
        unknown = sorted(set(int(x) for x in np.unique(self.labels)) - set(diseases))
        if unknown:
            raise ValidationError(f"labels without a disease: {unknown}")
        if granularity not in ("coarse", "medium", "fine", "mixed"):
            raise ValidationError(f"granularity must be coarse, medium, fine or mixed, not {granularity!r}")
        self.diseases = dict(diseases)
        self.granularity: CaptionGranularity = granularity
        self.image_size = int(image_size) if image_size is not None else None
        self.seed = int(seed)
        self.max_items = max_items
        self.study = study
        self.epoch = 0
        self._sets = {k: frozenset({d.id, *(p for p, _ in d.typical)}) for k, d in self.diseases.items()}

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose captions ``__getitem__`` draws (call before each epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.labels)

    def caption_for(self, index: int, epoch: int | None = None) -> str:
        """The caption item ``index`` gets in ``epoch`` (default: the current one)."""
        label = int(self.labels[index])
        key = f"{self.seed}:{self.epoch if epoch is None else epoch}:{index}"
        return _draw_caption(self.diseases[label], self.granularity, key, self.max_items, self.study)

    def __getitem__(self, index: int) -> ClipSample:
        label = int(self.labels[index])
        image = to_image_tensor(self.images[index], self.image_size)
        return ClipSample(image, self.caption_for(index), self._sets[label], label)
