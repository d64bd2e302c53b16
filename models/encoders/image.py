"""The image tower: a timm backbone with checkpoint loading by name or by position."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file as load_safetensors
from safetensors.torch import save_file as save_safetensors
from torch import Tensor, nn

from kg.errors import ValidationError
from models.encoders.common import (
    FORMAT_VERSION,
    IMAGE_CONFIG,
    LITE0_MEAN,
    LITE0_NAMES,
    LITE0_STD,
    _read_json,
    _write_json,
    packaged_lite0_checkpoint,
)


def _extract_state_dict(obj: Any, source: str) -> dict[str, Tensor]:
    """The tensor mapping inside a loaded checkpoint (bare, or under state_dict / model / ...)."""
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model_state_dict", "model", "state_dict_ema"):
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, Tensor) for v in inner.values()):
                obj = inner
                break
        if obj and all(isinstance(v, Tensor) for v in obj.values()):
            out = {str(k): v for k, v in obj.items()}
            if all(k.startswith("module.") for k in out):
                out = {k[len("module.") :]: v for k, v in out.items()}
            return out
    raise ValidationError(f"{source}: not a state dict of tensors")


def load_checkpoint_tensors(path: str | Path) -> dict[str, Tensor]:
    """Read a ``.safetensors`` file or a ``torch.save`` state dict (``weights_only=True``) in file order."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint not found: {p}")
    if p.suffix == ".safetensors":
        return load_safetensors(str(p))
    return _extract_state_dict(torch.load(str(p), map_location="cpu", weights_only=True), str(p))


def load_state_dict_by_position(
    model: nn.Module, source: Mapping[str, Tensor], *, what: str = "checkpoint"
) -> None:
    """Load ``source`` into ``model`` pairing tensors by position; every shape must match; strict load."""
    target = model.state_dict()
    if len(source) != len(target):
        raise ValidationError(
            f"{what} has {len(source)} tensors but {type(model).__name__} expects {len(target)}; "
            "cannot map by position"
        )
    mapped: dict[str, Tensor] = {}
    for pos, ((src_key, src), (dst_key, dst)) in enumerate(zip(source.items(), target.items(), strict=True)):
        if tuple(src.shape) != tuple(dst.shape):
            raise ValidationError(
                f"{what}: position {pos}: {src_key} has shape {tuple(src.shape)} but model tensor {dst_key} "
                f"has shape {tuple(dst.shape)}; the architectures differ"
            )
        mapped[dst_key] = src
    model.load_state_dict(mapped, strict=True)


def _reset_classifier(net: nn.Module, num_classes: int) -> None:
    reset: Any = getattr(net, "reset_classifier")  # noqa: B009
    reset(num_classes)


def _key_prefix(wanted: Sequence[str], available: Sequence[str]) -> str | None:
    """The prefix under which every ``wanted`` key is in ``available`` (``visual.trunk.`` for an open_clip
    checkpoint such as BiomedCLIP's, ``image_encoder.model.`` for a phenokg CLIP state dict), or ``None``."""
    have = set(available)
    first = wanted[0]
    for key in available:
        if key.endswith(first):
            prefix = key[: len(key) - len(first)]
            if all(prefix + k in have for k in wanted):
                return prefix
    return None


def _load_into_timm(model_name: str, source: Mapping[str, Tensor], num_classes: int, what: str) -> nn.Module:
    """Build ``model_name`` and load ``source`` by name if the keys match (also under one common prefix:
    the image tower of a whole CLIP checkpoint), else by position."""
    import timm

    headless = timm.create_model(model_name, pretrained=False, num_classes=0)
    head_keys = list(headless.state_dict())
    src_keys = list(source)
    prefix = None if set(head_keys) <= set(src_keys) else _key_prefix(head_keys, src_keys)
    if prefix:
        source = {k[len(prefix):]: v for k, v in source.items() if k.startswith(prefix)}
        src_keys = list(source)
    expected = headless.state_dict()
    for k in head_keys if set(head_keys) <= set(src_keys) else ():  # loading by name: shapes must agree
        if tuple(source[k].shape) != tuple(expected[k].shape):
            raise ValidationError(f"{what}: {prefix or ''}{k} has shape {tuple(source[k].shape)} but {model_name} "
                                  f"expects {tuple(expected[k].shape)}; is it a checkpoint for {model_name}?")
    net: nn.Module
    if set(head_keys) <= set(src_keys):
        if num_classes:
            full = timm.create_model(model_name, pretrained=False, num_classes=num_classes)
            full_sd = full.state_dict()
            if set(full_sd) == set(src_keys) and all(full_sd[k].shape == source[k].shape for k in full_sd):
                full.load_state_dict(dict(source), strict=True)
                return full
        # Backbone matched by name; classifier tensors (if any) of another head size are left out.
        headless.load_state_dict({k: source[k] for k in head_keys}, strict=True)
        net = headless
    elif len(source) == len(head_keys):
        load_state_dict_by_position(headless, source, what=what)
        net = headless
    else:
        last = list(source.values())[-1]
        ckpt_classes = int(last.shape[0]) if last.ndim == 1 else -1
        if ckpt_classes <= 0 or len(source) != len(head_keys) + 2:
            raise ValidationError(
                f"{what} has {len(source)} tensors; {model_name} has {len(head_keys)} without its classifier "
                f"and {len(head_keys) + 2} with it. Is it a checkpoint for {model_name}?"
            )
        net = timm.create_model(model_name, pretrained=False, num_classes=ckpt_classes)
        load_state_dict_by_position(net, source, what=what)
    if int(getattr(net, "num_classes", 0)) != num_classes:
        _reset_classifier(net, num_classes)
    return net


class ImageEncoder(nn.Module):
    """timm backbone → pooled features (or logits when ``num_classes > 0``); grey input replicated to RGB."""

    mean: Tensor
    std: Tensor

    def __init__(
        self,
        model: nn.Module,
        *,
        model_name: str,
        mean: Sequence[float] = LITE0_MEAN,
        std: Sequence[float] = LITE0_STD,
    ) -> None:
        super().__init__()
        self.model = model
        self.model_name = model_name
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    @property
    def num_classes(self) -> int:
        """Classifier size (0: the encoder returns pooled features)."""
        return int(getattr(self.model, "num_classes", 0))

    @property
    def dim(self) -> int:
        """Output width: ``num_features`` (e.g. 1280 for Lite0), or ``num_classes`` with a classifier."""
        return self.num_classes or int(getattr(self.model, "num_features"))  # noqa: B009

    @classmethod
    def from_pretrained(
        cls,
        checkpoint: str | Path | None = None,
        *,
        model_name: str = "efficientnet_lite0",
        num_classes: int = 0,
        pretrained: bool = True,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> ImageEncoder:
        """Build a timm ``model_name`` and load weights.

        ``checkpoint``: a directory written by :meth:`save`, or a state-dict / safetensors file (matched by
        key names, else by position). ``None`` with ``pretrained`` loads the packaged ImageNet Lite0 (only
        for ``efficientnet_lite0`` / ``tf_efficientnet_lite0``; the ``tf_`` variant reproduces TF "same"
        padding exactly); ``pretrained=False`` gives random weights.
        """
        import timm

        if checkpoint is not None and (Path(checkpoint).expanduser() / IMAGE_CONFIG).exists():
            return cls.load(checkpoint, num_classes=num_classes)
        default_mean: Sequence[float]
        default_std: Sequence[float]
        if checkpoint is not None:
            source = load_checkpoint_tensors(checkpoint)
            net = _load_into_timm(model_name, source, num_classes, str(checkpoint))
            cfg = getattr(net, "pretrained_cfg", {}) or {}
            default_mean, default_std = cfg.get("mean", LITE0_MEAN), cfg.get("std", LITE0_STD)
        elif pretrained:
            if model_name not in LITE0_NAMES:
                raise ValidationError(
                    f"no packaged weights for {model_name!r}: pass checkpoint=<path> or pretrained=False "
                    f"(packaged: {sorted(LITE0_NAMES)})"
                )
            path = packaged_lite0_checkpoint()
            source = load_checkpoint_tensors(path)
            net = _load_into_timm(
                model_name, source, num_classes, f"packaged EfficientNet-Lite0 ({path.name})"
            )
            default_mean, default_std = LITE0_MEAN, LITE0_STD
        else:
            net = timm.create_model(model_name, pretrained=False, num_classes=num_classes)
            cfg = getattr(net, "pretrained_cfg", {}) or {}
            default_mean, default_std = cfg.get("mean", LITE0_MEAN), cfg.get("std", LITE0_STD)
        return cls(
            net,
            model_name=model_name,
            mean=mean if mean is not None else default_mean,
            std=std if std is not None else default_std,
        )

    def forward(self, images: Tensor) -> Tensor:
        """``[B, 1|3, H, W]`` floats in ``[0, 1]`` → ``[B, dim]``."""
        if images.ndim != 4:
            raise ValueError(f"expected [B, C, H, W], got shape {tuple(images.shape)}")
        channels = self.mean.shape[1]
        if images.shape[1] == 1 and channels != 1:
            images = images.expand(-1, channels, -1, -1)
        elif images.shape[1] != channels:
            raise ValueError(f"expected 1 or {channels} channels, got {images.shape[1]}")
        x = (images - self.mean) / self.std
        out: Tensor = self.model(x)
        return out

    def save(self, directory: str | Path) -> Path:
        """Write ``model.safetensors`` (timm key names) and ``phenokg_image_encoder.json``."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().contiguous().cpu() for k, v in self.model.state_dict().items()}
        save_safetensors(tensors, str(out / "model.safetensors"))
        _write_json(
            out / IMAGE_CONFIG,
            {
                "format_version": FORMAT_VERSION,
                "model_name": self.model_name,
                "num_classes": self.num_classes,
                "mean": [float(x) for x in self.mean.flatten()],
                "std": [float(x) for x in self.std.flatten()],
                "dim": self.dim,
            },
        )
        return out

    @classmethod
    def load(cls, directory: str | Path, *, num_classes: int | None = None) -> ImageEncoder:
        """Load a directory written by :meth:`save` (strict, by name)."""
        import timm

        root = Path(directory).expanduser()
        cfg = _read_json(root / IMAGE_CONFIG)
        saved_classes = int(cfg.get("num_classes", 0))
        net = timm.create_model(str(cfg["model_name"]), pretrained=False, num_classes=saved_classes)
        net.load_state_dict(load_safetensors(str(root / "model.safetensors")), strict=True)
        if num_classes is not None and num_classes != saved_classes:
            _reset_classifier(net, num_classes)
        return cls(net, model_name=str(cfg["model_name"]), mean=cfg["mean"], std=cfg["std"])
