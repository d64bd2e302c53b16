"""The CLIP-style dual encoder: both towers, projection heads and the learnable temperature."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file as load_safetensors
from safetensors.torch import save_file as save_safetensors
from torch import Tensor, nn

from kg.errors import ValidationError
from models.encoders.common import CLIP_CONFIG, FORMAT_VERSION, ProjectionKind, _read_json, _write_json
from models.encoders.image import ImageEncoder
from models.encoders.text import TextEncoder


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
                raise ValidationError(f"projection 'none' needs in_dim == out_dim ({in_dim} != {out_dim})")
            self.net = nn.Identity()
        else:
            raise ValidationError(f"kind must be 'linear', 'mlp' or 'none', not {kind!r}")

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
