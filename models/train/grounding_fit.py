"""Fit a model's grounding (:mod:`models.grounding`) when it is trained: vocabulary, prompt embeddings,
label-transfer constants, calibration and the out-of-domain threshold.

The validation images are queried against the **training** evidence only (as a new image will be queried
against the graph's evidence), their labels known from their own ``SHOWS`` / ``RULES_OUT`` links. For each
``(k, τ)`` of a small grid a logistic model ``σ(a · logit(share) + b · z + c)`` is fitted on every labelled
(image, phenotype) pair; the grid point with the lowest held-out log loss (two folds over the validation images)
is refitted on all of them. Nothing here reads the test split.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import torch
from torch import Tensor

from kg.errors import ValidationError
from models.domain import DomainEncoder, reference_sample
from models.encoders import CLIPModel
from models.grounding import Grounding, GroundingParams, Vocabulary, label_matrix
from models.prompts import absence_prompt, phenotype_prompt
from models.serving import encode_texts
from models.train.clip_data import EvidenceDataset

__all__ = ["build_vocabulary", "embed_dataset", "fit_grounding"]

K_GRID: Final = (5, 9, 15, 25, 50)
TAU_GRID: Final = (0.02, 0.05, 0.1)
DOMAIN_QUANTILE: Final = 0.01


def build_vocabulary(train: Any) -> Vocabulary:
    """The vocabulary of a training set (:class:`models.train.clip_run.ClipData`): every phenotype its items show
    or rule out and its findings' typical / excluded sets hold (the direct terms, sorted by id), with their
    in-domain ancestors; its findings and their sources."""
    direct = {p for v in train.views for key in ("shows", "rules_out") for p in v.get(key) or ()}
    findings = sorted({str((v.get("extra") or {}).get("finding")) for v in train.views
                       if (v.get("extra") or {}).get("finding")})
    for f in findings:
        sets = train.diseases.get(f)
        if sets is not None:
            direct |= {p for p, _ in (*sets.typical, *sets.excluded)}
    ids = sorted(direct)
    if not ids:
        raise ValidationError("the training evidence links no phenotype: nothing to ground answers in")
    names = [train.phenotype_names.get(p, p) for p in ids]
    ancestors = {p: list(train.ancestors.get(p, [])) for p in ids}
    sources = sorted({train.finding_sources[f] for f in findings if train.finding_sources.get(f)})
    return Vocabulary(ids, names, ancestors, findings, sources)


@torch.no_grad()
def embed_dataset(model: CLIPModel, dataset: EvidenceDataset, device: str, batch_size: int = 256,
                  domain: DomainEncoder | None = None, domain_rows: Sequence[int] | None = None
                  ) -> tuple[Tensor, Tensor]:
    """Unit image embeddings ``[N, D]`` of a dataset's images, in item order (streamed in batches), and the
    domain features (:mod:`models.domain`) of the items at ``domain_rows`` (default all) when ``domain``."""
    from models.images import resize_images

    size = dataset.image_size
    wanted = set(range(len(dataset)) if domain_rows is None else domain_rows)
    chunks, domain_chunks = [], []
    for start in range(0, len(dataset), batch_size):
        rows = range(start, min(len(dataset), start + batch_size))
        images = torch.stack([dataset.image(i) for i in rows]).to(device)
        if size is not None:
            images = resize_images(images, size)
        chunks.append(model.encode_image(images).float().cpu())
        keep = [j for j, i in enumerate(rows) if i in wanted]
        if domain is not None and keep:
            domain_chunks.append(domain.features(images[keep]).cpu())
    empty = torch.zeros((0, 1280))
    return (torch.cat(chunks) if chunks else torch.zeros((0, model.embed_dim)),
            torch.cat(domain_chunks) if domain_chunks else empty)


def _labels(data: Any, dataset: EvidenceDataset, vocabulary: Vocabulary) -> np.ndarray:
    views = {str(v["id"]): v for v in data.views}
    anc = data.ancestors
    implied: list[tuple[list[str], list[str]]] = []
    for r in dataset.items:
        sets = data.diseases.get(r.finding) if r.finding else None
        implied.append(([p for p, _ in sets.typical], [p for p, _ in sets.excluded]) if sets else ([], []))
    return label_matrix(vocabulary, [views[r.id].get("shows") or () for r in dataset.items],
                        [views[r.id].get("rules_out") or () for r in dataset.items], lambda t: anc.get(t, ()),
                        implied)


def _fit_logistic(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=10.0, max_iter=2000)
    clf.fit(x, y)
    return float(clf.coef_[0][0]), float(clf.coef_[0][1]), float(clf.intercept_[0])


def _log_loss(x: np.ndarray, y: np.ndarray, coef: tuple[float, float, float]) -> float:
    z = coef[0] * x[:, 0] + coef[1] * x[:, 1] + coef[2]
    p = np.clip(1.0 / (1.0 + np.exp(-z)), 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def expected_calibration_error(prob: np.ndarray, truth: np.ndarray, bins: int = 10) -> float:
    """ECE with ``bins`` equal-width bins: Σ_b |b|/n · |mean truth − mean probability|."""
    prob, truth = np.asarray(prob, dtype=float), np.asarray(truth, dtype=float)
    if len(prob) == 0:
        return float("nan")
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(prob, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(truth[mask].mean() - prob[mask].mean())
    return float(total)


def fit_grounding(model: CLIPModel, train: Any, val: Any, image_size: int, *, device: str,
                  study: str = "chest radiograph") -> tuple[Grounding, Tensor, list[str], dict[str, Any]]:
    """Fit on ``train`` (evidence, statistics) and ``val`` (calibration). Returns the grounding, the training and
    validation images' embeddings and content hashes (stored with the model: serving reuses them) and a
    summary for ``metrics.json``."""
    vocabulary = build_vocabulary(train)
    train_ds = EvidenceDataset(train.views, image_size=image_size, cache_images=False)
    val_ds = EvidenceDataset(val.views, image_size=image_size, cache_images=False)
    if len(train_ds) == 0 or len(val_ds) == 0:
        raise ValidationError("grounding needs training and validation images on this machine")
    model = model.to(device).eval()
    domain = DomainEncoder(image_size, device)
    train_emb, reference = embed_dataset(model, train_ds, device, domain=domain,
                                         domain_rows=reference_sample([r.id for r in train_ds.items]))
    val_emb, val_domain = embed_dataset(model, val_ds, device, domain=domain)
    train_lab = torch.from_numpy(_labels(train, train_ds, vocabulary))
    val_lab = _labels(val, val_ds, vocabulary)
    text = encode_texts(model, [phenotype_prompt(n, study) for n in vocabulary.names], device).cpu()
    absence = encode_texts(model, [absence_prompt(n, study) for n in vocabulary.names], device).cpu()
    labelled = (train_lab != 0).float()
    prior = ((train_lab > 0).float().sum(0) + 0.5) / (labelled.sum(0) + 1.0)
    zeros = torch.zeros(len(vocabulary.ids))
    grounding = Grounding(vocabulary, GroundingParams(), text, absence, zeros, zeros + 1.0, prior,
                          reference.half())
    contrast = grounding.contrast(train_emb)
    grounding.text_mean, grounding.text_std = contrast.mean(0), contrast.std(0).clamp_min(1e-3)
    mask = val_lab != 0
    y = (val_lab[mask] > 0).astype(float)
    if len(np.unique(y)) < 2:
        raise ValidationError("the validation split's links hold one class only: cannot calibrate")
    rows = np.nonzero(mask)[0]
    fold = (rows % 2).astype(bool)
    grid: list[dict[str, Any]] = []
    best: tuple[float, int, float] | None = None
    for k in K_GRID:
        for tau in TAU_GRID:
            share_logit, z, _ = grounding.features(val_emb, train_emb, train_lab, k=k, tau=tau)
            x = np.stack([share_logit.numpy()[mask], z.numpy()[mask]], axis=1)
            losses = []
            for held in (fold, ~fold):
                if len(np.unique(y[~held])) < 2 or not held.any():
                    continue
                losses.append(_log_loss(x[held], y[held], _fit_logistic(x[~held], y[~held])))
            loss = float(np.mean(losses)) if losses else math.inf
            grid.append({"k": k, "tau": tau, "log_loss": round(loss, 5)})
            if best is None or loss < best[0]:
                best = (loss, k, tau)
    assert best is not None
    _, k, tau = best
    share_logit, z, _ = grounding.features(val_emb, train_emb, train_lab, k=k, tau=tau)
    x = np.stack([share_logit.numpy()[mask], z.numpy()[mask]], axis=1)
    a, b, c = _fit_logistic(x, y)
    prob = 1.0 / (1.0 + np.exp(-(a * x[:, 0] + b * x[:, 1] + c)))
    nearest = DomainEncoder.nearest(val_domain, reference).numpy()
    threshold = float(np.quantile(nearest, DOMAIN_QUANTILE))
    fit = {"val_pairs": int(mask.sum()), "val_images": len(val_ds), "train_images": len(train_ds),
           "val_log_loss": round(_log_loss(x, y, (a, b, c)), 5),
           "val_ece": round(expected_calibration_error(prob, y), 5),
           "domain_quantile": DOMAIN_QUANTILE, "domain_reference": int(reference.shape[0]),
           "val_domain_similarity_median": round(float(np.median(nearest)), 4), "grid": grid}
    grounding.params = GroundingParams(k=k, tau=tau, alpha=1.0, coef_share=a, coef_text=b, intercept=c,
                                       domain_threshold=threshold, calibrated=True, fit=fit)
    sha = {str(v["id"]): str(v.get("sha256") or "") for data in (train, val) for v in data.views}
    hashes = [sha[r.id] for r in (*train_ds.items, *val_ds.items)]
    return grounding, torch.cat([train_emb, val_emb]), hashes, fit
