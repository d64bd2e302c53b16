"""A trained image–text model on disk: where its weights are, loading it, the image size it was trained at.

A run directory (kind ``clip``) holds ``model/`` (:meth:`models.encoders.CLIPModel.save`), ``config.json``,
``metrics.json``, ``train_config.json`` and, when fitted, the grounding files of :mod:`models.grounding`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

from models.encoders import CLIP_CONFIG, CLIPModel
from models.registry import pick_device

__all__ = ["DEFAULT_IMAGE_SIZE", "MODEL_DIR", "clip_model_dir", "load_clip_model", "model_image_size"]

MODEL_DIR: Final = "model"
DEFAULT_IMAGE_SIZE: Final = 224


def clip_model_dir(path: str | Path) -> Path:
    """The CLIPModel directory of a run directory (``<dir>/model``), or ``path`` when it is one."""
    root = Path(path).expanduser()
    if (root / CLIP_CONFIG).is_file():
        return root
    if (root / MODEL_DIR / CLIP_CONFIG).is_file():
        return root / MODEL_DIR
    raise FileNotFoundError(f"{root}: not a phenokg CLIP model directory (no {CLIP_CONFIG} in it or in "
                            f"{MODEL_DIR}/)")


def run_dir_of(path: str | Path) -> Path:
    """The run directory of a model (the parent of ``model/``), or ``path`` itself."""
    model_dir = clip_model_dir(path)
    return model_dir.parent if model_dir.name == MODEL_DIR else model_dir


def load_clip_model(path: str | Path, device: str | None = None) -> CLIPModel:
    """Load a trained model (run directory or model directory) onto ``device``."""
    return CLIPModel.load(clip_model_dir(path)).to(pick_device(device)).eval()


def model_image_size(path: str | Path) -> int:
    """The image size a model was trained at (its run's ``train_config.json`` / ``config.json``), else 224."""
    model_dir = clip_model_dir(path)
    for run_dir in (model_dir, model_dir.parent):
        for name, key in (("train_config.json", None), ("config.json", "train")):
            candidate = run_dir / name
            if not candidate.is_file():
                continue
            try:
                data = json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            section = data.get(key) if key else data
            if isinstance(section, dict) and isinstance(section.get("image_size"), int):
                return int(section["image_size"])
    return DEFAULT_IMAGE_SIZE
