"""Stage 1 of PhenoLIP (seed 004 §4.1): train the phenotype knowledge encoder on attribute pairs.

Symmetric InfoNCE (``τ = 0.07`` by default) over positive attribute pairs with in-batch negatives; batches
come from :class:`models.train.sampler.KnowledgePairBatches`, so no two phenotypes in a batch share an attribute
string or a parent/child edge, and :func:`models.train.sampler.false_negative_mask` masks any remaining equal texts.
AdamW, linear warm-up then cosine (or linear / constant) decay, gradient clipping.

Artefacts in ``out_dir``: ``config.json``, ``metrics.jsonl`` (one JSON line per logged step),
``checkpoint.pt`` (model, optimizer, scheduler, sampler position, RNG state, step; every
``checkpoint_every`` steps and at the end), ``encoder/`` (:meth:`models.encoders.TextEncoder.save`) and
``summary.json``. ``resume=True`` continues from ``checkpoint.pt`` exactly where it stopped: same batches,
same dropout masks, same learning rate, so the final loss equals the uninterrupted run's.

Runs are deterministic on CPU for a given seed: the global torch RNG is forked (the caller's RNG state is
left untouched), seeded, and deterministic algorithms are switched on for the duration of the run only.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from kg.errors import ValidationError
from models.encoders import TextEncoder, freeze_text_layers
from models.losses import InfoNCELoss
from models.train.configs import KnowledgeTrainConfig, Schedule
from models.train.sampler import (
    AttributeKind,
    KnowledgePairBatches,
    attributes_of,
    false_negative_mask,
    normalize_text,
)
from models.train.utils import skips_weight_decay
from models.types import PhenotypeAttributes

__all__ = [
    "KnowledgeTrainConfig",
    "evaluate_attribute_retrieval",
    "lr_lambda",
    "train_knowledge_encoder",
]


CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
CONFIG = "config.json"
SUMMARY = "summary.json"
ENCODER_DIR = "encoder"

# Config fields that may change between an interrupted run and its resumption.
_RESUMABLE_CHANGES = frozenset({"checkpoint_every", "log_every"})


def lr_lambda(step: int, *, warmup_steps: int, total_steps: int, schedule: Schedule) -> float:
    """LR factor: linear warm-up over ``warmup_steps``, then ``schedule`` decay to 0 at ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, max(0.0, (step - warmup_steps) / span))
    if schedule == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def _param_groups(modules: Iterable[nn.Module], weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: no decay for biases, norms and the temperature."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for module in modules:
        for name, p in module.named_parameters():
            if not p.requires_grad:
                continue
            if skips_weight_decay(name, p):
                no_decay.append(p)
            else:
                decay.append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def _save_atomic(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, str(tmp))
    os.replace(tmp, path)


def _read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rows.append(json.loads(line))
    return rows


def _truncate_metrics(path: Path, max_step: int) -> None:
    """Drop lines logged after the checkpoint (a killed run may have gone further than its last save)."""
    rows = [r for r in _read_metrics(path) if int(r.get("step", 0)) <= max_step]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _check_resumable(saved: dict[str, Any], config: KnowledgeTrainConfig) -> None:
    # a checkpoint written before a field existed ran with that field's default
    saved = {**KnowledgeTrainConfig().to_dict(), **saved}
    current = config.to_dict()
    diffs = [k for k in current if k not in _RESUMABLE_CHANGES and saved.get(k) != current[k]]
    if diffs:
        detail = ", ".join(f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in diffs)
        raise ValidationError(f"cannot resume: the config changed ({detail})")


def train_knowledge_encoder(
    attributes: Sequence[PhenotypeAttributes],
    config: KnowledgeTrainConfig,
    out_dir: Path,
    *,
    device: str | torch.device = "cpu",
    progress: bool = True,
    resume: bool = False,
    stop_at_step: int | None = None,
) -> dict[str, float]:
    """Train a knowledge encoder on ``attributes``; returns summary metrics (also in ``summary.json``).

    ``resume``: continue from ``out_dir/checkpoint.pt`` if present (the config must match, except
    ``checkpoint_every`` / ``log_every``); otherwise start afresh, replacing earlier artefacts.
    ``stop_at_step``: save a checkpoint and return after that many steps without finishing (the schedule
    still follows ``config``; used to test and to split long runs); the final encoder is not written then.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = torch.device(device)
    rng_devices = [dev.index or 0] if dev.type == "cuda" else []
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    with torch.random.fork_rng(devices=rng_devices):
        torch.manual_seed(config.seed)
        torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            return _train(attributes, config, out, dev, progress, resume, stop_at_step)
        finally:
            torch.use_deterministic_algorithms(previous_deterministic, warn_only=previous_warn_only)


def _train(
    attributes: Sequence[PhenotypeAttributes],
    config: KnowledgeTrainConfig,
    out: Path,
    dev: torch.device,
    progress: bool,
    resume: bool,
    stop_at_step: int | None,
) -> dict[str, float]:
    started = time.perf_counter()
    encoder = TextEncoder.from_pretrained(config.model_path, max_length=config.max_length).to(dev)
    freeze_text_layers(encoder, config.trainable_layers)
    encoder.train()
    loss_fn = InfoNCELoss(config.temperature, learnable=config.learnable_temperature).to(dev)
    data = KnowledgePairBatches(
        attributes,
        config.batch_size,
        seed=config.seed,
        single_attribute=config.single_attribute,
        name_anchor_prob=config.name_anchor_prob,
        kind_weights=config.kind_weights,
        paraphrase=config.paraphrases,
    )
    if config.max_steps is not None:
        total_steps = int(config.max_steps) if data.epoch_batches(0) else 0
        epochs = 1 << 30  # cycle epochs until max_steps
    else:
        epochs = int(config.epochs)
        total_steps = sum(data.batches_per_epoch(epochs))
    if total_steps <= 0:
        raise ValidationError(
            "nothing to train: need at least 2 phenotypes with 2 or more distinct attributes "
            f"({len(data.pair_sampler)} usable of {len(attributes)})"
        )
    optimizer = torch.optim.AdamW(_param_groups([encoder, loss_fn], config.weight_decay), lr=config.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: lr_lambda(
            s, warmup_steps=config.warmup_steps, total_steps=total_steps, schedule=config.schedule
        ),
    )

    ckpt_path, metrics_path = out / CHECKPOINT, out / METRICS
    step = 0
    if resume and ckpt_path.exists():
        ckpt = torch.load(str(ckpt_path), map_location="cpu", weights_only=True)
        _check_resumable(ckpt["config"], config)
        encoder.model.load_state_dict(ckpt["model"])
        loss_fn.load_state_dict(ckpt["loss"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        data.load_state_dict(ckpt["sampler"])
        step = int(ckpt["step"])
        torch.set_rng_state(ckpt["rng"])
        if dev.type == "cuda" and "cuda_rng" in ckpt:
            torch.cuda.set_rng_state(ckpt["cuda_rng"], dev)
        _truncate_metrics(metrics_path, step)
    else:
        metrics_path.write_text("", encoding="utf-8")
        ckpt_path.unlink(missing_ok=True)
    (out / CONFIG).write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")

    def save_checkpoint() -> None:
        state: dict[str, Any] = {
            "model": encoder.model.state_dict(),
            "loss": loss_fn.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "sampler": data.state_dict(),
            "step": step,
            "rng": torch.get_rng_state(),
            "config": config.to_dict(),
        }
        if dev.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(dev)
        _save_atomic(state, ckpt_path)

    bar = tqdm(total=total_steps, initial=step, disable=not progress, desc="knowledge encoder", unit="step")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    stopped = False
    try:
        with metrics_path.open("a", encoding="utf-8") as log:
            batches = data.iterate(epochs) if step < total_steps else iter(())
            for epoch, batch_index, pairs in batches:
                anchors = [p.anchor.text for p in pairs]
                positives = [p.positive.text for p in pairs]
                mask = false_negative_mask(anchors, positives, [p.phenotype_id for p in pairs]).to(dev)
                tokens = {k: v.to(dev) for k, v in encoder.tokenize(anchors + positives).items()}
                emb = encoder(**tokens)
                z_a, z_p = emb[: len(pairs)], emb[len(pairs) :]
                loss = loss_fn(z_a, z_p, false_negative_mask=mask)["contrastive"]
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
                lr = float(optimizer.param_groups[0]["lr"])
                optimizer.step()
                scheduler.step()
                if config.learnable_temperature:
                    with torch.no_grad():
                        loss_fn.logit_scale.clamp_(0.0, math.log(loss_fn.max_logit_scale))
                step += 1
                loss_value = float(loss.detach())
                if step % config.log_every == 0 or step == total_steps:
                    row = {
                        "step": step,
                        "total_steps": total_steps,
                        "epoch": epoch,
                        "batch": batch_index,
                        "loss": loss_value,
                        "lr": lr,
                        "temperature": loss_fn.temperature,
                        "batch_size": len(pairs),
                        "masked_pairs": int(mask.sum()) // 2,
                        "time_s": round(time.perf_counter() - started, 3),
                    }
                    log.write(json.dumps(row) + "\n")
                    log.flush()
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.4f}", epoch=epoch)
                if step >= total_steps:
                    break
                if step % config.checkpoint_every == 0:
                    save_checkpoint()
                if stop_at_step is not None and step >= stop_at_step:
                    stopped = True
                    break
    finally:
        bar.close()
    save_checkpoint()
    if not stopped:
        encoder.save(out / ENCODER_DIR)

    rows = _read_metrics(metrics_path)
    losses = [float(r["loss"]) for r in rows]
    tail = losses[-min(len(losses), 50) :] if losses else [float("nan")]
    summary: dict[str, float] = {
        "steps": float(step),
        "total_steps": float(total_steps),
        "epochs_completed": float(data.epoch),
        "first_loss": losses[0] if losses else float("nan"),
        "final_loss": losses[-1] if losses else float("nan"),
        "final_loss_avg50": sum(tail) / len(tail),
        "temperature": loss_fn.temperature,
        "finished": 0.0 if stopped else 1.0,
        "train_time_s": time.perf_counter() - started,
    }
    (out / SUMMARY).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return summary


class _Encodes(Protocol):
    def encode(self, texts: Sequence[str], batch_size: int = ...) -> Tensor: ...


def evaluate_attribute_retrieval(
    encoder: _Encodes,
    held_out: Sequence[PhenotypeAttributes],
    k: Sequence[int] = (1, 10),
    *,
    distractors: Sequence[str] = (),
    query_kinds: Sequence[AttributeKind] = ("definition", "synonym"),
    batch_size: int = 64,
) -> dict[str, float]:
    """Attribute → name retrieval: recall@k of finding a phenotype's name from one of its other attributes.

    Queries are the ``query_kinds`` attributes of ``held_out`` (relation sentences contain the name itself,
    so they are left out by default); the gallery is every held-out name plus ``distractors`` (e.g. all other
    ontology names), deduplicated case-insensitively. Returns ``R@k`` overall and ``R@k/<kind>`` per kind,
    plus ``n_queries`` and ``gallery_size``.
    """
    gallery: list[str] = []
    index: dict[str, int] = {}
    for text in [p.name for p in held_out] + list(distractors):
        key = normalize_text(text)
        if key and key not in index:
            index[key] = len(gallery)
            gallery.append(text)
    queries: list[str] = []
    targets: list[int] = []
    kinds: list[str] = []
    for p in held_out:
        target = index[normalize_text(p.name)]
        for a in attributes_of(p):
            if a.kind in query_kinds:
                queries.append(a.text)
                targets.append(target)
                kinds.append(a.kind)
    if not queries:
        raise ValidationError("no queries: the held-out phenotypes have no attributes of the requested kinds")
    g = torch.nn.functional.normalize(encoder.encode(gallery, batch_size=batch_size).float(), dim=-1)
    q = torch.nn.functional.normalize(encoder.encode(queries, batch_size=batch_size).float(), dim=-1)
    sims = q @ g.T
    kmax = min(max(k), len(gallery))
    top = sims.topk(kmax, dim=1).indices
    hit_rank = top == torch.tensor(targets).unsqueeze(1)
    result: dict[str, float] = {"n_queries": float(len(queries)), "gallery_size": float(len(gallery))}
    kinds_t = list(kinds)
    for kk in k:
        hits = hit_rank[:, : min(kk, kmax)].any(dim=1)
        result[f"R@{kk}"] = float(hits.float().mean())
        for kind in sorted(set(kinds_t)):
            sel = torch.tensor([x == kind for x in kinds_t])
            result[f"R@{kk}/{kind}"] = float(hits[sel].float().mean())
    return result
