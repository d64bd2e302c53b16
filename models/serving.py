"""Serving an image–text model: load it once, embed the candidates once, answer image queries in batches.

:class:`ClipIndex` holds a loaded :class:`models.encoders.CLIPModel` on its device together with the unit
text embeddings of the candidate phenotypes (each phenotype's name as :func:`models.train.clip_eval.phenotype_prompt`
words it, the text I2P evaluation scores) and the unit image embeddings of the evidence images.
:meth:`ClipIndex.search` embeds a batch of query images and returns, per image, the most similar phenotypes
(cosine similarity and a softmax probability over all candidates at the model's temperature) and the nearest
evidence images. Nothing here knows about HTTP or the graph: callers pass plain ids, texts and image files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
from torch import Tensor

from models.encoders import CLIPModel
from models.train.clip_data import to_image_tensor
from models.train.clip_eval import phenotype_prompt
from models.train.clip_run import clip_model_dir, load_clip_model

__all__ = [
    "DEFAULT_IMAGE_SIZE",
    "ClipIndex",
    "Hit",
    "ImageResult",
    "model_image_size",
    "serving_device",
]

DEFAULT_IMAGE_SIZE: Final = 224


def serving_device() -> str:
    """``cuda:0`` when a GPU is there, else ``cpu``."""
    return "cuda:0" if torch.cuda.is_available() else "cpu"


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


@dataclass(frozen=True)
class Hit:
    """One retrieved candidate: its id, cosine similarity and (phenotypes) softmax probability."""

    id: str
    score: float
    probability: float = 0.0


@dataclass(frozen=True)
class ImageResult:
    """What one query image retrieved."""

    phenotypes: list[Hit]
    evidence: list[Hit]


@torch.no_grad()
def _encode_texts(model: CLIPModel, texts: Sequence[str], device: torch.device, batch_size: int) -> Tensor:
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths per batch: little padding
    chunks = []
    for start in range(0, len(order), batch_size):
        batch = [texts[i] for i in order[start:start + batch_size]]
        tok = {k: v.to(device) for k, v in model.tokenize(batch).items()}
        chunks.append(model.encode_text(tok["input_ids"], tok["attention_mask"]).float())
    if not chunks:
        return torch.zeros((0, model.embed_dim), device=device)
    out = torch.empty((len(texts), model.embed_dim), device=device)
    out[torch.tensor(order, device=device)] = torch.cat(chunks)
    return out


class ClipIndex:
    """A loaded model plus its candidate embeddings; :meth:`search` is safe to call from one thread at a time
    (the micro-batcher's worker)."""

    def __init__(self, model: CLIPModel, *, device: str, image_size: int, phenotype_ids: Sequence[str],
                 phenotype_embeddings: Tensor, evidence_ids: Sequence[str], evidence_embeddings: Tensor,
                 info: dict[str, Any] | None = None) -> None:
        self.model = model.eval()
        self.device = device
        self.image_size = int(image_size)
        self.phenotype_ids = list(phenotype_ids)
        self.phenotype_embeddings = phenotype_embeddings.to(device)
        self.evidence_ids = list(evidence_ids)
        self.evidence_embeddings = evidence_embeddings.to(device)
        self.info = dict(info or {})
        self.channels = int(model.image_encoder.mean.shape[1])
        self.logit_scale = float(model.scale().detach())

    # ------------------------------------------------------------------------------------------ building
    @classmethod
    def load(cls, path: str | Path, phenotypes: Sequence[tuple[str, str]], evidence: Sequence[tuple[str, str]],
             *, device: str | None = None, study: str = "chest radiograph", batch_size: int = 256,
             text_cache: Path | None = None, info: dict[str, Any] | None = None,
             progress: Callable[[str], None] | None = None) -> ClipIndex:
        """Load the model at ``path`` onto ``device`` (default :func:`serving_device`) and embed the candidates:
        ``phenotypes`` as ``(id, name)`` pairs, ``evidence`` as ``(id, image file)`` pairs (files that cannot be
        read are skipped). ``text_cache``: an ``.npz`` file that holds (or will hold) the phenotype embeddings
        for exactly these texts and this model."""
        dev = device or serving_device()
        model = load_clip_model(path, dev)
        image_size = model_image_size(path)
        note = progress or (lambda _m: None)
        ids = [p for p, _ in phenotypes]
        texts = [phenotype_prompt(name, study) for _, name in phenotypes]
        note(f"embedding {len(texts)} phenotype names")
        text_emb = cls._cached_texts(model, texts, torch.device(dev), batch_size, text_cache)
        index = cls(model, device=dev, image_size=image_size, phenotype_ids=ids, phenotype_embeddings=text_emb,
                    evidence_ids=[], evidence_embeddings=torch.zeros((0, model.embed_dim)), info=info)
        note(f"embedding {len(evidence)} evidence images")
        ev_ids, ev_emb = index._embed_files(evidence, batch_size=min(batch_size, 64))
        index.evidence_ids, index.evidence_embeddings = ev_ids, ev_emb
        return index

    @staticmethod
    def _cached_texts(model: CLIPModel, texts: Sequence[str], device: torch.device, batch_size: int,
                      cache: Path | None) -> Tensor:
        digest = hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()
        if cache is not None and cache.is_file():
            try:
                with np.load(cache, allow_pickle=False) as data:
                    if str(data["digest"]) == digest:
                        return torch.from_numpy(np.asarray(data["embeddings"], dtype=np.float32)).to(device)
            except (OSError, ValueError, KeyError):
                pass  # unreadable cache: recompute and overwrite it
        emb = _encode_texts(model, texts, device, batch_size)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(f".{cache.name}.tmp.npz")
            np.savez(tmp, digest=np.asarray(digest), embeddings=emb.cpu().numpy())
            tmp.replace(cache)
        return emb

    def _embed_files(self, files: Sequence[tuple[str, str]], *, batch_size: int) -> tuple[list[str], Tensor]:
        from PIL import Image, UnidentifiedImageError

        ids: list[str] = []
        chunks: list[Tensor] = []
        pending: list[Tensor] = []
        for ident, path in files:
            try:
                with Image.open(path) as img:
                    pending.append(self.prepare(to_image_tensor(img, self.image_size)))
            except (OSError, UnidentifiedImageError, ValueError):
                continue
            ids.append(ident)
            if len(pending) == batch_size:
                chunks.append(self.embed_images(torch.stack(pending)))
                pending = []
        if pending:
            chunks.append(self.embed_images(torch.stack(pending)))
        emb = torch.cat(chunks) if chunks else torch.zeros((0, self.model.embed_dim), device=self.device)
        return ids, emb

    # ------------------------------------------------------------------------------------------- queries
    def prepare(self, image: Tensor) -> Tensor:
        """A ``[C, H, W]`` image in ``[0, 1]`` → the ``[channels, size, size]`` tensor a batch stacks (grey is
        replicated, as the image tower itself would)."""
        if image.ndim != 3:
            raise ValueError(f"expected a [C, H, W] image, got shape {tuple(image.shape)}")
        if image.shape[-2:] != (self.image_size, self.image_size):
            from models.train.clip_data import resize_images

            image = resize_images(image.unsqueeze(0), self.image_size).squeeze(0)
        if image.shape[0] == 1 and self.channels != 1:
            image = image.expand(self.channels, -1, -1)
        elif image.shape[0] != self.channels:
            raise ValueError(f"expected 1 or {self.channels} channels, got {image.shape[0]}")
        return image.contiguous()

    @torch.no_grad()
    def embed_images(self, images: Tensor) -> Tensor:
        """``[B, C, size, size]`` → unit embeddings ``[B, embed_dim]`` on the index's device."""
        return self.model.encode_image(images.to(self.device, non_blocking=True)).float()

    @torch.no_grad()
    def search(self, images: Sequence[Tensor], *, k: int, evidence: int) -> list[ImageResult]:
        """Per image (each from :meth:`prepare`): the top ``k`` phenotypes and the ``evidence`` nearest
        evidence images, best first."""
        if not images:
            return []
        emb = self.embed_images(torch.stack(list(images)))
        out_p = self._top(emb, self.phenotype_embeddings, self.phenotype_ids, k, probabilities=True)
        out_e = self._top(emb, self.evidence_embeddings, self.evidence_ids, evidence, probabilities=False)
        return [ImageResult(p, e) for p, e in zip(out_p, out_e, strict=True)]

    def _top(self, queries: Tensor, keys: Tensor, ids: Sequence[str], k: int, *,
             probabilities: bool) -> list[list[Hit]]:
        n = min(int(k), len(ids))
        if n <= 0:
            return [[] for _ in range(len(queries))]
        sims = queries @ keys.T
        probs = torch.softmax(sims * self.logit_scale, dim=1) if probabilities else None
        top = sims.topk(n, dim=1)
        values, indices = top.values.cpu().tolist(), top.indices.cpu().tolist()
        picked = probs.gather(1, top.indices).cpu().tolist() if probs is not None else None
        return [[Hit(ids[j], round(float(v), 6), round(float(picked[row][c]), 6) if picked else 0.0)
                 for c, (v, j) in enumerate(zip(values[row], indices[row], strict=True))]
                for row in range(len(queries))]
