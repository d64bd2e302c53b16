"""Evaluation of image–text models: zero-shot classification, cross-modal and phenotype retrieval, linear probe.

Retrieval metric (one definition for every direction): for each query with at least one positive,
``recall@K = |top-K ∩ positives| / min(K, |positives|)``, averaged over those queries. With one positive per
query it is the usual hit rate (CLIP's I2T / T2I R@K); with many (a phenotype shown by hundreds of images)
it is the share of the top K that is right, so it stays informative.

* I2T / T2I: images against their captions; captions with identical text count as positives of each other.
* I2P / P2I (image → phenotype / phenotype → image): images against the phenotypes of the evaluation set
  (every phenotype an item's caption ``SHOWS`` or ``RULES_OUT``), each phenotype's text being
  ``"<study> showing <name>."``; an image's positives are the phenotypes it ``SHOWS``.
* Zero-shot: :func:`models.train.clip_train.zero_shot_accuracy` with prompt ensembles per granularity.
* Linear probe: logistic regression (scikit-learn) on the frozen image tower's pooled features, fitted on
  a training split — the usual ceiling for what the image features hold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from kg.errors import ValidationError
from models.captions import Granularity, prompt_ensemble
from models.encoders import CLIPModel, ImageEncoder
from models.prompts import phenotype_prompt
from models.serving import encode_texts
from models.train.clip_data import EvidenceDataset
from models.types import DiseaseSets

__all__ = [
    "GRANULARITIES",
    "evaluate_clip",
    "linear_probe",
    "recall_at_k",
    "retrieval_recall",
    "zero_shot_accuracy",
]

GRANULARITIES: tuple[Granularity, ...] = ("coarse", "medium", "fine")


def recall_at_k(sims: Tensor, positives: Tensor, ks: Sequence[int]) -> dict[int, float]:
    """``sims [Q, N]``, boolean ``positives [Q, N]`` → {K: mean over queries with a positive of
    ``|top-K ∩ positives| / min(K, |positives|)``} (NaN when no query has a positive)."""
    if sims.shape != positives.shape:
        raise ValueError(f"sims {tuple(sims.shape)} and positives {tuple(positives.shape)} differ in shape")
    keep = positives.any(dim=1)
    out: dict[int, float] = {}
    if not bool(keep.any()) or sims.shape[1] == 0:
        return {int(k): float("nan") for k in ks}
    s, pos = sims[keep], positives[keep]
    n_pos = pos.sum(dim=1).float()
    order = s.argsort(dim=1, descending=True, stable=True)
    ranked = pos.gather(1, order).float()
    for k in ks:
        kk = min(int(k), s.shape[1])
        hits = ranked[:, :kk].sum(dim=1)
        out[int(k)] = float((hits / n_pos.clamp(max=kk)).mean())
    return out


@torch.no_grad()
def _image_features(model: CLIPModel, images: Tensor, batch_size: int, dev: torch.device) -> Tensor:
    chunks = [model.encode_image(images[i:i + batch_size].to(dev)).float().cpu()
              for i in range(0, len(images), batch_size)]
    return torch.cat(chunks) if chunks else torch.zeros((0, model.embed_dim))


def _text_features(model: CLIPModel, texts: Sequence[str], batch_size: int, dev: torch.device) -> Tensor:
    return encode_texts(model, list(texts), dev, batch_size).cpu()


def zero_shot_accuracy(model: CLIPModel, images: Tensor, labels: Sequence[int], classes: Mapping[int, DiseaseSets],
                       *, granularity: Granularity = "coarse",
                       study: str = "chest radiograph", batch_size: int = 64) -> dict[str, float]:
    """Zero-shot accuracy with prompt ensembles: each class is the mean of its prompts' text embeddings
    (:func:`models.captions.prompt_ensemble`); an image takes the most similar class."""
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    try:
        keys = sorted(classes)
        protos = []
        for k in keys:
            emb = _text_features(model, prompt_ensemble(classes[k], granularity, study=study, warn=False),
                                 batch_size, dev)
            protos.append(torch.nn.functional.normalize(emb.mean(dim=0), dim=-1))
        img = _image_features(model, images, batch_size, dev)
        pred = (img @ torch.stack(protos).T).argmax(dim=1)
        truth = torch.tensor([keys.index(int(x)) for x in labels])
        correct = (pred == truth).float()
        out = {"accuracy": float(correct.mean()), "n": float(len(truth))}
        for i, k in enumerate(keys):
            sel = truth == i
            if sel.any():
                out[f"accuracy/{k}"] = float(correct[sel].mean())
        return out
    finally:
        model.train(was_training)


def retrieval_recall(model: CLIPModel, images: Tensor, texts: Sequence[str], k: Sequence[int] = (1, 5, 10),
                     *, batch_size: int = 64) -> dict[str, float]:
    """I2T and T2I recall@k for row-aligned images and texts (pair i is the only positive of row i)."""
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    try:
        sims = _image_features(model, images, batch_size, dev) @ _text_features(model, texts, batch_size, dev).T
    finally:
        model.train(was_training)
    eye = torch.eye(len(texts), dtype=torch.bool)
    return {**_named("I2T", recall_at_k(sims, eye, k)), **_named("T2I", recall_at_k(sims.T, eye, k))}


def _named(prefix: str, recalls: Mapping[int, float]) -> dict[str, float]:
    return {f"{prefix}@{k}": v for k, v in recalls.items()}


@torch.no_grad()
def evaluate_clip(
    model: CLIPModel,
    dataset: EvidenceDataset,
    classes: Mapping[int, DiseaseSets],
    phenotype_names: Mapping[str, str],
    *,
    ks: Sequence[int] = (1, 5, 10),
    study: str = "chest radiograph",
    batch_size: int = 128,
) -> dict[str, Any]:
    """Every metric of the module docstring for ``dataset`` (images at the dataset's size)."""
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    try:
        images = dataset.images()
        out: dict[str, Any] = {"n_images": len(dataset)}
        labels = dataset.labels
        labelled = [i for i, lab in enumerate(labels) if lab in classes]
        if labelled:
            sel = images[labelled]
            out["zero_shot"] = {
                g: zero_shot_accuracy(model, sel, [labels[i] for i in labelled], classes, granularity=g,
                                      study=study, batch_size=batch_size)
                for g in GRANULARITIES
            }
        img = _image_features(model, images, batch_size, dev)
        captions = [dataset.items[i].caption for i in range(len(dataset))]
        distinct = list(dict.fromkeys(captions))
        index = {c: j for j, c in enumerate(distinct)}
        txt = _text_features(model, distinct, batch_size, dev)
        pos = torch.zeros((len(captions), len(distinct)), dtype=torch.bool)
        pos[torch.arange(len(captions)), torch.tensor([index[c] for c in captions], dtype=torch.long)] = True
        sims = img @ txt.T
        # T2I: every distinct caption against the images that carry it.
        out["retrieval"] = {**_named("I2T", recall_at_k(sims, pos, ks)),
                            **_named("T2I", recall_at_k(sims.T, pos.T, ks)), "distinct_captions": len(distinct)}
        candidates = sorted(set(phenotype_names) | {p for r in dataset.items for p in r.shows})
        if candidates:
            ptxt = _text_features(model, [phenotype_prompt(phenotype_names.get(p, p), study) for p in candidates],
                                  batch_size, dev)
            col = {p: j for j, p in enumerate(candidates)}
            ppos = torch.zeros((len(captions), len(candidates)), dtype=torch.bool)
            for i, r in enumerate(dataset.items):
                for p in r.shows:
                    ppos[i, col[p]] = True
            psims = img @ ptxt.T
            out["phenotype_retrieval"] = {
                **_named("I2P", recall_at_k(psims, ppos, ks)), **_named("P2I", recall_at_k(psims.T, ppos.T, ks)),
                "phenotypes": len(candidates), "images_with_phenotypes": int(ppos.any(dim=1).sum()),
            }
        return out
    finally:
        model.train(was_training)


@torch.no_grad()
def _pooled(encoder: ImageEncoder, images: Tensor, batch_size: int) -> np.ndarray:
    was_training = encoder.training
    encoder.eval()
    dev = next(encoder.parameters()).device
    try:
        chunks = [encoder(images[i:i + batch_size].to(dev)).float().cpu() for i in range(0, len(images), batch_size)]
    finally:
        encoder.train(was_training)
    return torch.cat(chunks).numpy() if chunks else np.zeros((0, encoder.dim), np.float32)


def linear_probe(encoder: ImageEncoder, train_images: Tensor, train_labels: Sequence[int], test_images: Tensor,
                 test_labels: Sequence[int], *, batch_size: int = 128, c: float = 1.0,
                 seed: int = 0) -> dict[str, float]:
    """Accuracy of a logistic regression on the frozen encoder's features (standardised), fitted on train."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train, x_test = _pooled(encoder, train_images, batch_size), _pooled(encoder, test_images, batch_size)
    y_train, y_test = np.asarray(train_labels), np.asarray(test_labels)
    if len(set(y_train.tolist())) < 2:
        raise ValidationError("linear probe: the training split needs at least two classes")
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000, random_state=seed))
    clf.fit(x_train, y_train)
    pred = clf.predict(x_test)
    out = {"accuracy": float((pred == y_test).mean()), "n": float(len(y_test)), "train_n": float(len(y_train)),
           "C": c}
    for k in sorted(set(y_test.tolist())):
        out[f"accuracy/{k}"] = float((pred[y_test == k] == k).mean())
    return out
