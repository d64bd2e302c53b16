"""The text tower: any Hugging Face / sentence-transformers model with pooling and L2 normalisation."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kg.errors import ValidationError
from models.encoders.common import FORMAT_VERSION, TEXT_CONFIG, PoolingMode, _offline, _write_json
from models.text_settings import default_max_length, directory_settings, load_tokenizer

_ST_TRANSFORMER = "sentence_transformers.models.Transformer"
_ST_POOLING = "sentence_transformers.models.Pooling"
_ST_NORMALIZE = "sentence_transformers.models.Normalize"


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
            raise ValidationError(f"pooling must be 'mean', 'cls' or 'max', not {pooling!r}")
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
        from transformers import AutoModel

        _offline()
        model_dir, settings = directory_settings(path)
        model = AutoModel.from_pretrained(str(model_dir), local_files_only=True)
        model = model.float()
        tokenizer = load_tokenizer(model_dir)
        if "max_length" not in settings:
            settings["max_length"] = default_max_length(tokenizer)
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
        raise ValidationError(f"cannot train only the top {trainable_layers} layers: {type(model).__name__} has no "
                              "encoder.layer list (train all layers, or none)")
    keep = {id(p) for layer in list(layers)[-trainable_layers:] for p in layer.parameters()}
    for p in model.parameters():
        if id(p) not in keep:
            p.requires_grad_(False)
    return min(trainable_layers, len(layers))
