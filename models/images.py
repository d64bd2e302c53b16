"""Images as tensors: decoding, resizing and MedMNIST-style arrays (shared by training and serving)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from kg.errors import ValidationError

__all__ = ["load_npz_split", "resize_images", "to_image_tensor"]


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
