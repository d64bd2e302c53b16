"""Serving an image–text model: load it once with its grounding, answer image queries in batches.

:class:`ClipIndex` holds a loaded :class:`models.encoders.CLIPModel` on its device, the model's grounding
(:mod:`models.grounding`: vocabulary, prompt embeddings, fitted constants) and the evidence images it
transfers labels from (an :class:`~models.evidence_set.EvidenceSet` over the model's vector index, plus the
``[evidence, vocabulary]`` label matrix). The training job stores the vocabulary's prompt embeddings and its own
evidence's image embeddings with the model, and the vector index is saved beside it, so loading embeds only
evidence imported since; past :data:`~models.evidence_index.ANN_THRESHOLD` images the nearest evidence is found
through an HNSW graph instead of exact search. :meth:`ClipIndex.search` embeds a batch of query images and returns, per
image, the grounded answer and the nearest evidence images. Nothing here knows about HTTP or the graph: callers
pass plain ids, texts, label lists and image files.

A model without grounding files (trained elsewhere, or before grounding existed) is served with a vocabulary
made from the evidence's links and plain label transfer (``calibrated: false``, no domain threshold).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

import numpy as np
import torch
from torch import Tensor

from models.clip_files import DEFAULT_IMAGE_SIZE, load_clip_model, model_image_size, run_dir_of
from models.domain import DomainEncoder
from models.encoders import CLIPModel
from models.evidence_set import INDEX_DIR, EvidenceSet, embed_missing, image_key, open_vector_index, save_quietly
from models.grounding import Grounding, GroundingParams, ImageGrounding, Vocabulary, label_matrix
from models.images import resize_images, to_image_tensor
from models.prompts import absence_prompt, phenotype_prompt

_TEXT_STATISTICS_SAMPLE: Final = 20_000  # evidence rows an ungrounded model's text statistics are taken over

__all__ = [
    "DEFAULT_IMAGE_SIZE",
    "ClipIndex",
    "EvidenceInput",
    "Hit",
    "ImageResult",
    "model_image_size",
    "serving_device",
]


def serving_device() -> str:
    """``cuda:0`` when a GPU is there, else ``cpu``."""
    return "cuda:0" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class EvidenceInput:
    """One evidence image to transfer labels from: id, content hash, image file, linked phenotype ids."""

    id: str
    sha256: str
    path: str
    shows: tuple[str, ...] = ()
    rules_out: tuple[str, ...] = ()
    finding_typical: tuple[str, ...] = ()
    """The typical set of the finding its dataset labels it with (fills what its links leave silent)."""
    finding_excluded: tuple[str, ...] = ()


@dataclass(frozen=True)
class Hit:
    """One retrieved candidate: its id and cosine similarity."""

    id: str
    score: float


@dataclass(frozen=True)
class ImageResult:
    """What one query image retrieved: the grounded answer over the vocabulary and the nearest evidence."""

    grounding: ImageGrounding
    evidence: list[Hit]
    embedding: Tensor


@torch.no_grad()
def encode_texts(model: CLIPModel, texts: Sequence[str], device: torch.device | str, batch_size: int = 256) -> Tensor:
    """Unit text embeddings ``[N, D]`` (similar lengths batched together: little padding)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    chunks = []
    for start in range(0, len(order), batch_size):
        batch = [texts[i] for i in order[start:start + batch_size]]
        tok = {k: v.to(device) for k, v in model.tokenize(batch).items()}
        chunks.append(model.encode_text(tok["input_ids"], tok["attention_mask"]).float())
    if not chunks:
        return torch.zeros((0, model.embed_dim), device=device)
    out = torch.empty((len(texts), model.embed_dim), device=device)
    out[torch.tensor(order, device=out.device)] = torch.cat(chunks)
    return out


class ClipIndex:
    """A loaded model, its grounding and its evidence; :meth:`search` is safe to call from one thread at a time
    (the micro-batcher's worker)."""

    def __init__(self, model: CLIPModel, grounding: Grounding, *, device: str, image_size: int,
                 evidence: EvidenceSet, evidence_labels: np.ndarray, info: dict[str, Any] | None = None) -> None:
        self.model = model.eval()
        self.device = device
        self.image_size = int(image_size)
        self.grounding = grounding.to(device)
        self.evidence = evidence
        self.evidence_labels = torch.from_numpy(evidence_labels).to(device)
        self.info = dict(info or {})
        self.channels = int(model.image_encoder.mean.shape[1])
        reference = self.grounding.domain_reference
        self.domain = DomainEncoder(self.image_size, device) if reference is not None else None
        self.domain_reference = reference.float() if reference is not None else None  # stored as half floats

    @property
    def evidence_ids(self) -> list[str]:
        return self.evidence.ids

    @property
    def vocabulary(self) -> Vocabulary:
        return self.grounding.vocabulary

    @property
    def calibrated(self) -> bool:
        return self.grounding.params.calibrated

    # ------------------------------------------------------------------------------------------ building
    @classmethod
    def load(cls, path: str | Path, evidence: Sequence[EvidenceInput], ancestors_of: Callable[[str], Iterable[str]],
             names: Callable[[str], str], *, device: str | None = None, study: str = "chest radiograph",
             info: dict[str, Any] | None = None) -> ClipIndex:
        """Load the model at ``path`` onto ``device`` (default :func:`serving_device`) with its grounding and
        ``evidence`` (files that cannot be read are skipped). ``ancestors_of(t)``: t's proper ancestors, to
        close the evidence's links over the hierarchy; ``names(t)``: a term's name (ungrounded models only).

        The evidence images' embeddings live in the model's :class:`~models.evidence_index.EvidenceVectorIndex`
        (``evidence_index/`` in its run directory): only images it lacks are embedded, the HNSW graph is built
        once the set reaches its threshold, and the index is saved back for the next load."""
        dev = device or serving_device()
        model = load_clip_model(path, dev)
        run_dir = run_dir_of(path)
        stored: dict[str, Tensor] = {}
        if Grounding.exists(run_dir):
            grounding, stored = Grounding.load(run_dir)
        else:
            grounding = _ungrounded(model, evidence, ancestors_of, names, study, dev)
        folder = run_dir / INDEX_DIR
        vectors = open_vector_index(folder, model.embed_dim)
        changed = vectors.add(list(stored), torch.stack(list(stored.values())).numpy()) if stored else 0
        size = model_image_size(path)
        index = cls(model, grounding, device=dev, image_size=size, evidence=EvidenceSet([], [], vectors),
                    evidence_labels=np.zeros((0, 0), np.int8), info=info)
        keys = [image_key(e.sha256, e.id) for e in evidence]
        embedded, unreadable = embed_missing(
            vectors, keys, lambda i: index._read_image(evidence[i].path),
            lambda images: index.embed_images(torch.stack(cast("list[Tensor]", images))).cpu().numpy())
        built = vectors.ensure_ann()
        if changed or embedded or built:
            save_quietly(vectors, folder)
        kept = [e for i, e in enumerate(evidence) if i not in unreadable]
        rows = [vectors.row_of(image_key(e.sha256, e.id)) for e in kept]  # every kept image is in the index
        labels = label_matrix(grounding.vocabulary, [e.shows for e in kept], [e.rules_out for e in kept],
                              ancestors_of, [(e.finding_typical, e.finding_excluded) for e in kept])
        index.evidence = EvidenceSet([e.id for e in kept], [int(cast("int", r)) for r in rows], vectors)
        index.evidence_labels = torch.from_numpy(labels).to(dev)
        index.info.setdefault("evidence_embedded_at_load", embedded)
        index.info.setdefault("evidence_search", "hnsw" if vectors.has_ann else "exact")
        if not index.calibrated:  # text statistics over the evidence, as fitting would take them over training
            sample = np.arange(min(len(kept), _TEXT_STATISTICS_SAMPLE))
            _fill_text_statistics(index.grounding, torch.from_numpy(index.evidence.embeddings(sample)).to(dev),
                                  index.evidence_labels[: len(sample)])
        return index

    def _read_image(self, path: str) -> Tensor | None:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as img:
                return self.prepare(to_image_tensor(img, self.image_size))
        except (OSError, UnidentifiedImageError, ValueError):
            return None

    # ------------------------------------------------------------------------------------------- queries
    def prepare(self, image: Tensor) -> Tensor:
        """A ``[C, H, W]`` image in ``[0, 1]`` → the ``[channels, size, size]`` tensor a batch stacks (grey is
        replicated, as the image tower itself would)."""
        if image.ndim != 3:
            raise ValueError(f"expected a [C, H, W] image, got shape {tuple(image.shape)}")
        if image.shape[-2:] != (self.image_size, self.image_size):
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
    def search(self, images: Sequence[Tensor], *, evidence: int) -> list[ImageResult]:
        """Per image (each from :meth:`prepare`): the grounded answer and the ``evidence`` nearest evidence
        images, best first."""
        if not images:
            return []
        batch = torch.stack(list(images))
        emb = self.embed_images(batch)
        domain = None
        if self.domain is not None and self.domain_reference is not None:
            domain = DomainEncoder.nearest(self.domain.features(batch), self.domain_reference)
        n = min(int(evidence), len(self.evidence))
        positions, sims = self.evidence.nearest(emb.cpu().numpy(), max(n, self.grounding.params.k))
        neighbours = (torch.from_numpy(positions).to(self.device), torch.from_numpy(sims).to(self.device))
        answers = self.grounding.answer(emb, None, self.evidence_labels, domain, neighbours=neighbours)
        nearest = [[Hit(self.evidence.ids[j], round(float(v), 6)) for j, v in zip(p[:n], s[:n], strict=True)]
                   for p, s in zip(positions.tolist(), sims.tolist(), strict=True)]
        return [ImageResult(a, e, emb[i]) for i, (a, e) in enumerate(zip(answers, nearest, strict=True))]

    def labels_of(self, evidence_index: int) -> np.ndarray:
        """The vocabulary labels (1 / −1 / 0) of one evidence image."""
        return self.evidence_labels[evidence_index].cpu().numpy()

    def text_embeddings(self, texts: Sequence[str], cache: Path | None = None) -> Tensor:
        """Unit embeddings of ``texts`` (e.g. every phenotype's prompt for ``scope=all``), cached in ``cache``
        (an ``.npz`` keyed by the exact texts)."""
        digest = hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()
        if cache is not None and cache.is_file():
            try:
                with np.load(cache, allow_pickle=False) as data:
                    if str(data["digest"]) == digest:
                        return torch.from_numpy(np.asarray(data["embeddings"], dtype=np.float32)).to(self.device)
            except (OSError, ValueError, KeyError):
                pass  # unreadable cache: recompute and overwrite it
        emb = encode_texts(self.model, texts, self.device)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(f".{cache.name}.tmp.npz")
            np.savez(tmp, digest=np.asarray(digest), embeddings=emb.cpu().numpy())
            tmp.replace(cache)
        return emb


def _ungrounded(model: CLIPModel, evidence: Sequence[EvidenceInput], ancestors_of: Callable[[str], Iterable[str]],
                names: Callable[[str], str], study: str, device: str) -> Grounding:
    direct = sorted({t for e in evidence for t in (*e.shows, *e.rules_out)})
    vocabulary = Vocabulary(direct, [names(t) for t in direct], {t: sorted(ancestors_of(t)) for t in direct})
    text = encode_texts(model, [phenotype_prompt(n, study) for n in vocabulary.names], device).cpu()
    absence = encode_texts(model, [absence_prompt(n, study) for n in vocabulary.names], device).cpu()
    zeros = torch.zeros(len(direct))
    return Grounding(vocabulary, GroundingParams(), text, absence, zeros, torch.ones(len(direct)), zeros + 0.5)


def _fill_text_statistics(grounding: Grounding, evidence: Tensor, labels: Tensor) -> None:
    if evidence.shape[0] < 2 or grounding.text_embeddings.shape[0] == 0:
        return
    contrast = grounding.contrast(evidence)
    grounding.text_mean, grounding.text_std = contrast.mean(0), contrast.std(0).clamp_min(1e-3)
    labelled = (labels != 0).float()
    grounding.prior = (((labels > 0).float().sum(0) + 0.5) / (labelled.sum(0) + 1.0)).clamp(0.02, 0.98)
