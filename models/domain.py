"""Is a query image of the kind the model learned from? The domain check of image retrieval.

A contrastively trained image tower maps *every* image onto what it learned to tell apart: a photograph, a
scanned report or noise lands next to some chest X-ray in its embedding (cosine 0.47–0.65 for such images with
the PneumoniaMNIST model, while 1 % of the validation X-rays are below 0.44). So the check runs in a generic
feature space instead: the pooled features of the packaged ImageNet EfficientNet-Lite0, which the fine-tuning
never touched. An image is in the domain when its nearest reference image (a seeded sample of the training
evidence) is at least as similar as the validation images' ``quantile`` (1 %) were. With the PneumoniaMNIST
model: validation X-rays ≥ 0.825, test X-rays 99 % above, photographs, a text page and noise ≤ 0.73.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Final

import torch
import torch.nn.functional as F
from torch import Tensor

from models.encoders import ImageEncoder
from models.images import resize_images

__all__ = ["MAX_REFERENCE", "DomainEncoder", "reference_sample"]

#: At most this many evidence images are the domain reference (a seeded sample): 20k × 1280 half floats, 51 MB.
MAX_REFERENCE: Final = 20_000


def reference_sample(ids: Sequence[str], limit: int = MAX_REFERENCE, seed: int = 0) -> list[int]:
    """Positions of at most ``limit`` of ``ids``, a seeded sample in order (all of them when fewer)."""
    if len(ids) <= limit:
        return list(range(len(ids)))
    return sorted(random.Random(seed).sample(range(len(ids)), limit))


class DomainEncoder:
    """Unit pooled ImageNet Lite0 features at ``image_size`` (the served model's input size)."""

    def __init__(self, image_size: int, device: str = "cpu") -> None:
        self.encoder = ImageEncoder.from_pretrained().eval().to(device)
        self.image_size = int(image_size)
        self.device = device

    @torch.no_grad()
    def features(self, images: Tensor, batch_size: int = 256) -> Tensor:
        """``[B, C, H, W]`` in ``[0, 1]`` (grey or RGB) → ``[B, 1280]`` unit features on the encoder's device."""
        out = []
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size].to(self.device)
            if batch.shape[-2:] != (self.image_size, self.image_size):
                batch = resize_images(batch, self.image_size)
            if batch.shape[1] == 1:
                batch = batch.expand(-1, 3, -1, -1)
            out.append(F.normalize(self.encoder(batch).float(), dim=-1))
        return torch.cat(out) if out else torch.zeros((0, self.encoder.dim), device=self.device)

    @staticmethod
    def nearest(query: Tensor, reference: Tensor) -> Tensor:
        """``[B]``: each query's cosine similarity to its nearest reference feature (−1 with no reference)."""
        if reference.shape[0] == 0:
            return torch.full((query.shape[0],), -1.0, device=query.device)
        return (query @ reference.to(query.dtype).T).max(dim=1).values
