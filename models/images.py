"""Images as tensors: decoding, resizing and MedMNIST-style arrays (shared by training and serving)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from kg.errors import ValidationError

__all__ = ["augment_images", "load_npz_split", "resize_images", "to_image_tensor"]


def resize_images(images: Tensor, image_size: int) -> Tensor:
    """``[B, C, H, W]`` floats in ``[0, 1]`` → ``[B, C, image_size, image_size]`` (bilinear, antialiased; no-op
    when already that size). The trainer calls it on the GPU for batches a dataset left at their native size."""
    if images.shape[-2:] == (image_size, image_size):
        return images
    out = F.interpolate(images, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True)
    return out.clamp_(0.0, 1.0)


def to_image_tensor(image: Any, image_size: int | None) -> Tensor:
    """PIL image or ``[H, W]`` / ``[H, W, C]`` uint8 array → float ``[C, H, W]`` in ``[0, 1]``, resized
    (bilinear, antialiased) to ``image_size``² (``None``: native size, resized later by the trainer). Grey stays
    1 channel; RGBA / palette images become RGB."""
    if hasattr(image, "convert"):  # PIL
        mode = getattr(image, "mode", "RGB")
        image = np.asarray(image.convert("L" if mode in ("L", "I", "I;16", "1", "F") else "RGB"))
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise ValidationError(f"expected an [H, W] or [H, W, C] image, got shape {arr.shape}")
    arr = np.ascontiguousarray(arr)
    if not arr.flags.writeable:  # PIL-backed arrays are read-only; torch wants to own writable memory
        arr = arr.copy()
    t = torch.from_numpy(arr).permute(2, 0, 1).float()
    if arr.dtype == np.uint8:
        t = t / 255.0
    if image_size is None:
        return t.clamp_(0.0, 1.0)
    return resize_images(t.unsqueeze(0), image_size).squeeze(0).clamp_(0.0, 1.0)


def load_npz_split(path: str | Path, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """``(<split>_images, <split>_labels)`` of a MedMNIST-style ``.npz`` (labels flattened to ``[N]``)."""
    import zipfile

    try:
        archive = np.load(Path(path), allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ValidationError(f"{path}: not a NumPy .npz archive of arrays ({type(exc).__name__})") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValidationError(f"{path}: a single .npy array, not a .npz archive with <split>_images / <split>_labels")
    with archive as data:
        key_i, key_l = f"{split}_images", f"{split}_labels"
        if key_i not in data or key_l not in data:
            raise ValidationError(f"{path}: no {key_i} / {key_l} arrays (has {sorted(data.keys())})")
        try:
            return np.asarray(data[key_i]), np.asarray(data[key_l]).reshape(-1).astype(np.int64)
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            raise ValidationError(f"{path}: cannot read {key_i} / {key_l} ({exc})") from exc


def augment_images(images: Tensor, *, generator: torch.Generator | None = None, rotate: float = 10.0,
                   scale: tuple[float, float] = (0.9, 1.1), shift: float = 0.06, jitter: float = 0.2) -> Tensor:
    """Per-image random affine (rotation ±``rotate`` degrees, zoom in ``scale``, translation ±``shift`` of the
    side) and brightness / contrast jitter (±``jitter``) of a ``[B, C, H, W]`` batch in ``[0, 1]``, on its device.

    Mild, radiograph-plausible changes (positioning, exposure): they keep what a caption says true of the image."""
    b, dev = images.shape[0], images.device
    if b == 0:
        return images

    def uniform(low: float, high: float) -> Tensor:
        return torch.rand(b, generator=generator, device="cpu").to(dev) * (high - low) + low

    angle = uniform(-rotate, rotate) * (torch.pi / 180.0)
    zoom = uniform(*scale)
    tx, ty = uniform(-shift, shift) * 2, uniform(-shift, shift) * 2
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    brightness = uniform(-jitter, jitter).view(b, 1, 1, 1).to(images.dtype)
    contrast = (1.0 + uniform(-jitter, jitter)).view(b, 1, 1, 1).to(images.dtype)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    return ((out - mean) * contrast + mean + brightness).clamp_(0.0, 1.0)
