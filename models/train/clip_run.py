"""One image–text run end to end, on plain data: dataset, train, evaluate, write the model directory.

The caller reads evidence, disease sets and phenotype names from the graph (:mod:`kg.repo.training_views`) into
:class:`ClipData` and registers the result (:mod:`kg.repo.registry`); ``phenokg train clip`` and
``phenokg evaluate`` go through here. Nothing here touches the graph.

A model directory (kind ``clip``)::

    <dir>/model/              CLIPModel.save: image/, text/, heads.safetensors, phenokg_clip.json
    <dir>/config.json         run config: train config, captions, data (source, split, hash), seed, code version
    <dir>/metrics.json        training summary and the evaluation (see :func:`evaluate_model`)
    <dir>/train_config.json, metrics.jsonl, summary.json   from :func:`models.train.clip_train.train_clip`
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import torch

from kg.errors import ValidationError
from models.clip_files import MODEL_DIR, load_clip_model
from models.encoders import CLIPModel
from models.registry import (
    RunResult,
    code_version,
    data_hash,
    json_safe,
    new_model_id,
    pick_device,
    write_model_card,
)
from models.train.clip_data import CaptionSource, EvidenceDataset
from models.train.clip_eval import evaluate_clip, linear_probe
from models.train.clip_train import ClipTrainConfig, build_clip_model, dist_info, train_clip
from models.types import DiseaseSets

__all__ = [
    "KIND",
    "ClipData",
    "ClipRunResult",
    "evaluate_model",
    "evaluation_record",
    "run_clip_training",
    "untrained_model",
]

KIND: Final = "clip"


@dataclass
class ClipData:
    """Evidence views of one dataset split plus what re-captioning and evaluation need."""

    views: list[dict[str, Any]]
    diseases: dict[str, DiseaseSets] = field(default_factory=dict)
    """Finding / disease id → its typical and excluded sets (for the items' ``extra.finding``)."""
    phenotype_names: dict[str, str] = field(default_factory=dict)
    """Every phenotype the items show or rule out → its name (the phenotype-retrieval candidates)."""
    info: dict[str, Any] = field(default_factory=dict)
    """Provenance: source, split, graph build stamp …"""
    ancestors: dict[str, list[str]] = field(default_factory=dict)
    """Every phenotype the items link or the findings' sets hold → its in-domain ancestors (the vocabulary)."""
    finding_sources: dict[str, str] = field(default_factory=dict)
    """Finding / disease id → its source (``CXR_PACK``, ``OMIM`` …)."""

    def classes(self) -> dict[int, DiseaseSets]:
        """Label → finding sets, from the items' ``extra`` (label and finding); one finding per label."""
        out: dict[int, DiseaseSets] = {}
        for v in self.views:
            extra = v.get("extra") or {}
            label, finding = extra.get("label"), extra.get("finding")
            if not isinstance(label, int) or not finding or finding not in self.diseases:
                continue
            if label in out and out[label].id != finding:
                raise ValidationError(f"label {label} is given to two findings: {out[label].id} and {finding}")
            out[label] = self.diseases[str(finding)]
        return out

    def hash(self) -> str:
        """Data hash of the items (ids, image hashes, captions, links, labels)."""
        return data_hash([
            {"id": v["id"], "sha256": v.get("sha256"), "caption": v.get("caption"), "shows": v.get("shows"),
             "rules_out": v.get("rules_out"), "label": (v.get("extra") or {}).get("label"),
             "finding": (v.get("extra") or {}).get("finding")}
            for v in sorted(self.views, key=lambda v: str(v["id"]))
        ])

    def dataset(self, image_size: int | None, *, captions: CaptionSource = "stored",
                seed: int = 0) -> EvidenceDataset:
        """The items as a dataset (``image_size=None``: images at native size); raises ``ValueError`` when none
        has its image on this machine."""
        ds = EvidenceDataset(self.views, image_size=image_size, captions=captions, diseases=self.diseases,
                             seed=seed)
        if len(ds) == 0:
            where = ", ".join(f"{k}={v}" for k, v in self.info.items() if k in ("source", "split") and v)
            raise ValidationError(f"no evidence with an image on this machine ({where or 'all evidence'}; "
                                  f"{len(ds.missing)} without): import some with `phenokg evidence import-npz`")
        return ds


ClipRunResult = RunResult


def untrained_model(config: ClipTrainConfig, device: str | None = None) -> CLIPModel:
    """The model a run with ``config`` starts from (same seed: same projection heads), untrained."""
    torch.manual_seed(config.seed)
    model, _ = build_clip_model(ClipTrainConfig.from_dict({**config.to_dict(), "w_kd": 0.0}))
    return model.to(pick_device(device)).eval()


def evaluate_model(model: CLIPModel, data: ClipData, image_size: int, *, ks: Sequence[int] = (1, 5, 10),
                   probe_train: ClipData | None = None, study: str = "chest radiograph") -> dict[str, Any]:
    """:func:`models.train.clip_eval.evaluate_clip` on ``data`` (+ a linear probe fitted on ``probe_train``)."""
    started = time.perf_counter()
    dataset = data.dataset(image_size)
    classes = data.classes()
    out = evaluate_clip(model, dataset, classes, data.phenotype_names, ks=ks, study=study)
    if probe_train is not None:
        train_ds = probe_train.dataset(image_size)
        labelled_train = [i for i, lab in enumerate(train_ds.labels) if lab in classes]
        labelled_test = [i for i, lab in enumerate(dataset.labels) if lab in classes]
        out["linear_probe"] = linear_probe(
            model.image_encoder, train_ds.images()[labelled_train], [train_ds.labels[i] for i in labelled_train],
            dataset.images()[labelled_test], [dataset.labels[i] for i in labelled_test])
    out["seconds"] = round(time.perf_counter() - started, 2)
    return out


def evaluation_record(model_ref: Mapping[str, Any], metrics: Mapping[str, Any], data: ClipData, *, seed: int | None,
                      config: Mapping[str, Any], probe_train: ClipData | None = None) -> dict[str, Any]:
    """An evaluation result with its provenance: model, config, data hash(es), seed, code version."""
    dhash = data.hash()
    record: dict[str, Any] = json_safe({
        "model": dict(model_ref),
        "evaluated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": dict(config),
        "data": {**data.info, "items": len(data.views), "data_hash": dhash,
                 **({"probe_train_hash": probe_train.hash(), "probe_train_items": len(probe_train.views)}
                    if probe_train is not None else {})},
        "data_hash": dhash,
        "seed": seed,
        "code_version": code_version(),
        "torch": torch.__version__,
        "metrics": dict(metrics),
    })
    return record


def run_clip_training(
    train: ClipData,
    config: ClipTrainConfig,
    out_dir: Path,
    *,
    captions: CaptionSource = "stored",
    eval_data: ClipData | None = None,
    ks: Sequence[int] = (1, 5, 10),
    model_id: str | None = None,
    device: str | None = None,
    progress: bool = True,
) -> ClipRunResult:
    """Train on ``train`` (captions as stored, or re-drawn at one granularity), evaluate on ``eval_data``,
    write ``config.json`` / ``metrics.json`` into ``out_dir`` (which must not hold a run yet).

    Under ``torchrun`` every rank calls this with the same arguments (same ``out_dir`` and ``model_id``);
    training is data-parallel and rank 0 alone evaluates and writes; other ranks return the training summary.
    """
    out = Path(out_dir)
    if (out / "config.json").exists() or (out / MODEL_DIR).exists():
        raise ValidationError(f"{out} already holds a model: choose another --out")
    dev = pick_device(device)
    dataset = train.dataset(config.image_size, captions=captions, seed=config.seed)
    if dev.startswith("cuda") and dataset.common_size() is not None:
        dataset.image_size = None  # one native size: the trainer resizes whole batches on the GPU
    items_hash = train.hash()
    dhash = data_hash({"train": items_hash, "captions": captions})
    model_id = model_id or new_model_id(KIND)
    version = code_version()
    created = datetime.now(UTC).isoformat(timespec="seconds")
    summary = train_clip(dataset, config, out, device=dev, progress=progress)
    if dist_info()[0] != 0:  # under torchrun only rank 0 evaluates and writes the model card
        return ClipRunResult(model_id, out, dhash, config.seed, version, {}, {"train": summary})
    metrics: dict[str, Any] = {"kind": KIND, "model_id": model_id, "data_hash": dhash, "seed": config.seed,
                               "code_version": version, "train": summary}
    if eval_data is not None:
        model = load_clip_model(out, dev)
        metrics["eval"] = evaluate_model(model, eval_data, config.image_size, ks=ks)
        metrics["eval_data"] = {**eval_data.info, "items": len(eval_data.views), "data_hash": eval_data.hash()}
        metrics["headline"] = headline(metrics["eval"])
        metrics["grounding"] = fit_and_save_grounding(model, train, eval_data, config.image_size, out, dev)
    run_config: dict[str, Any] = {
        "kind": KIND, "model_id": model_id, "created_at": created, "train": config.to_dict(), "captions": captions,
        "data_hash": dhash, "seed": config.seed, "code_version": version, "device": dev, "torch": torch.__version__,
        "data": {**train.info, "items": len(dataset), "missing_images": len(dataset.missing),
                 "items_hash": items_hash},
    }
    write_model_card(out, run_config, metrics)
    return ClipRunResult(model_id, out, dhash, config.seed, version, run_config, metrics)


def headline(ev: Mapping[str, Any]) -> dict[str, float]:
    """A few numbers worth a table cell: zero-shot accuracy per granularity, I2T@1, I2P@5, probe accuracy."""
    out: dict[str, float] = {}
    for g, zs in (ev.get("zero_shot") or {}).items():
        out[f"zero_shot_{g}"] = float(zs["accuracy"])
    for key, name in (("retrieval", "I2T@1"), ("retrieval", "T2I@1"), ("phenotype_retrieval", "I2P@5"),
                      ("phenotype_retrieval", "P2I@10")):
        value = (ev.get(key) or {}).get(name)
        if isinstance(value, float):
            out[name] = value
    if "linear_probe" in ev:
        out["linear_probe"] = float(ev["linear_probe"]["accuracy"])
    return out


def fit_and_save_grounding(model: CLIPModel, train: ClipData, val: ClipData, image_size: int, out: Path,
                           device: str) -> dict[str, Any]:
    """Fit the grounding on ``train`` / ``val`` (:mod:`models.train.grounding_fit`) and write it into ``out``;
    a split that cannot calibrate (no images, one class) is reported in the summary, not raised."""
    from models.train.grounding_fit import fit_grounding

    started = time.perf_counter()
    try:
        grounding, embeddings, hashes, fit = fit_grounding(model, train, val, image_size, device=device)
    except ValidationError as exc:
        return {"fitted": False, "reason": str(exc)}
    grounding.save(out, evidence_sha256=hashes, evidence_embeddings=embeddings,
                   extra={"fitted_on": {"train": train.info, "val": val.info}})
    p = grounding.params
    vocab = grounding.vocabulary
    return {"fitted": True, "vocabulary": len(vocab.ids), "vocabulary_ids": vocab.ids,
            "vocabulary_ancestors": sorted(vocab.all_ids - set(vocab.ids)), "findings": vocab.findings,
            "sources": vocab.sources, "k": p.k, "tau": p.tau,
            "coef_share": round(p.coef_share, 4), "coef_text": round(p.coef_text, 4),
            "intercept": round(p.intercept, 4), "domain_threshold": p.domain_threshold,
            **{k: v for k, v in fit.items() if k != "grid"}, "seconds": round(time.perf_counter() - started, 2)}

