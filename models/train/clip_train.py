"""Stage 2 of PhenoLIP (seed 004 §4.2): image–text training with the frozen knowledge encoder as teacher.

Model: :class:`models.encoders.CLIPModel` (image tower: a timm backbone, default the packaged ImageNet
EfficientNet-Lite0; text tower initialised from the trained knowledge encoder). Teacher: the same knowledge
encoder, frozen (``eval``, no gradients); its embeddings of each batch's captions are cached per text
(generated captions repeat a lot). Loss: :class:`models.losses.PhenoLIPLoss` = image–text InfoNCE +
``w_kd`` (0.3) · knowledge distillation + ``w_soft`` · MCSL Jaccard soft targets (seed 001); identical
captions in a batch are masked out of each other's negatives.

Speed on a GPU: AMP (bf16 where supported, else fp16 with a gradient scaler), the image tower in
channels-last memory format, pinned host memory and non-blocking copies, DataLoader workers, and no host
synchronisation between logged steps (losses are read back only every ``log_every`` steps).

Distributed: launched with ``torchrun`` (``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` in the environment) the
trainer joins the process group (NCCL on CUDA, gloo on CPU), wraps the model in ``DistributedDataParallel`` and
shards the data with a ``DistributedSampler``; every rank computes the contrastive loss over its *local* batch
(no feature all-gather), gradients are averaged by DDP, rank 0 writes the artefacts. ``python -m
models.train.clip_train --synthetic 64`` is a smoke run (random images, generated captions) that works the same under
``torchrun --standalone --nproc_per_node 2``.

Artefacts in ``out_dir``: ``model/`` (:meth:`CLIPModel.save`), ``train_config.json``, ``metrics.jsonl``,
``summary.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler
from tqdm.auto import tqdm

from kg.errors import ValidationError
from models.clip_files import MODEL_DIR
from models.encoders import CLIPModel, ImageEncoder, TextEncoder, freeze_text_layers
from models.images import augment_images, resize_images
from models.losses import PhenoLIPLoss
from models.train.clip_data import ClipBatch, ClipCollator, ClipSample
from models.train.configs import ClipTrainConfig
from models.train.knowledge import lr_lambda
from models.train.utils import skips_weight_decay
from models.types import DiseaseSets

__all__ = [
    "ClipTrainConfig",
    "TeacherCache",
    "build_clip_model",
    "dist_info",
    "train_clip",
]



def dist_info() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's environment (``(0, 1, 0)`` without it)."""
    return (int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")),
            int(os.environ.get("LOCAL_RANK", "0")))


def default_loader_workers(device: str, world_size: int = 1, cpus: int | None = None) -> int:
    """DataLoader workers when none are asked for: 0 on a CPU (the main process is as fast and keeps runs
    reproducible), else up to 8 per GPU from the cores the ranks share, one left for each rank's main process."""
    if not device.startswith("cuda"):
        return 0
    per_rank = (cpus if cpus is not None else (os.cpu_count() or 1)) // max(world_size, 1)
    return max(0, min(8, per_rank - 1))


def build_clip_model(config: ClipTrainConfig) -> tuple[CLIPModel, TextEncoder | None]:
    """Student :class:`CLIPModel` and the frozen teacher :class:`TextEncoder` (``None`` when
    :attr:`ClipTrainConfig.uses_teacher` is false: nothing to distil)."""
    image = ImageEncoder.from_pretrained(config.image_checkpoint, model_name=config.image_model,
                                         pretrained=config.image_pretrained)
    student_text = TextEncoder.from_pretrained(config.text_model, max_length=config.max_length)
    freeze_text_layers(student_text, config.text_trainable_layers)
    teacher: TextEncoder | None = None
    if config.uses_teacher:
        teacher = TextEncoder.from_pretrained(config.teacher_model or config.text_model,
                                              max_length=config.max_length)
        teacher.eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
    model = CLIPModel(image, student_text, config.embed_dim, init_temperature=config.temperature,
                      teacher_dim=teacher.dim if teacher is not None else None)
    return model, teacher


class TeacherCache:
    """Embeddings of a frozen text encoder per caption text (computed once, kept on the CPU): the KD teacher's,
    or a frozen student text tower's."""

    def __init__(self, teacher: TextEncoder, max_items: int = 200_000) -> None:
        self.teacher = teacher
        self.max_items = max_items
        self._cache: dict[str, Tensor] = {}

    def __call__(self, texts: Sequence[str], device: torch.device) -> Tensor:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            if len(self._cache) + len(missing) > self.max_items:
                self._cache.clear()
            vecs = self.teacher.encode(missing, batch_size=max(len(missing), 1))
            self._cache.update(zip(missing, vecs, strict=True))
        stacked = torch.stack([self._cache[t] for t in texts])
        if device.type == "cuda":
            stacked = stacked.pin_memory()  # a pageable copy would wait for the GPU to drain
        return stacked.to(device, non_blocking=True)


def _param_groups(model: CLIPModel, config: ClipTrainConfig) -> list[dict[str, Any]]:
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        text = name.startswith("text_encoder.")
        groups.setdefault((text, skips_weight_decay(name, p)), []).append(p)
    return [
        {"params": params, "lr": config.text_lr if text else config.lr,
         "weight_decay": 0.0 if no_decay else config.weight_decay}
        for (text, no_decay), params in sorted(groups.items())
    ]


def _amp_context(device: torch.device, enabled: bool) -> tuple[contextlib.AbstractContextManager[Any],
                                                                torch.amp.GradScaler | None, str]:
    if device.type != "cuda" or not enabled:
        return contextlib.nullcontext(), None, "fp32"
    if torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16), None, "bf16"
    return torch.autocast("cuda", dtype=torch.float16), torch.amp.GradScaler("cuda"), "fp16"


def train_clip(
    dataset: Dataset[ClipSample],
    config: ClipTrainConfig,
    out_dir: Path,
    *,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train on ``dataset``; returns the summary (rank 0 also writes it with the model into ``out_dir``).

    Under torchrun the process group is initialised here (and destroyed at the end) unless the caller
    already did it.
    """
    rank, world, local_rank = dist_info()
    own_group = False
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and device != "cpu" else "gloo"
        dist.init_process_group(backend=backend)
        own_group = True
    try:
        return _train(dataset, config, Path(out_dir), device, progress, rank, world, local_rank)
    finally:
        if own_group and dist.is_initialized():
            dist.destroy_process_group()


def _train(dataset: Dataset[ClipSample], config: ClipTrainConfig, out: Path, device: str | torch.device | None,
           progress: bool, rank: int, world: int, local_rank: int) -> dict[str, Any]:
    started = time.perf_counter()
    if device is None:
        dev = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    else:
        dev = torch.device(device)
    if dev.type == "cuda":
        if dev.index is None:  # plain "cuda": this rank's GPU (set_device needs an index)
            dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    torch.manual_seed(config.seed)  # same initial weights on every rank (DDP also broadcasts rank 0's)
    model, teacher = build_clip_model(config)
    model.to(dev)
    if dev.type == "cuda" and config.channels_last:
        model.image_encoder.to(memory_format=torch.channels_last)
    if teacher is not None:
        teacher.to(dev)
    loss_fn = PhenoLIPLoss(w_kd=config.w_kd if config.uses_teacher else 0.0, w_soft=config.w_soft,
                           temperature=config.temperature, kd_temperature=config.temperature, kd_mode=config.kd_mode,
                           identity_weight=config.identity_weight).to(dev)
    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None,
            find_unused_parameters=not config.uses_teacher,
        )
    n = len(dataset)  # type: ignore[arg-type]  # map-style datasets have a length
    drop_last = n >= config.batch_size * world
    sampler: DistributedSampler[ClipSample] | RandomSampler
    sized: Any = dataset
    if world > 1:
        sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=config.seed,
                                     drop_last=drop_last)
    else:
        sampler = RandomSampler(sized, generator=torch.Generator().manual_seed(config.seed))
    collate = ClipCollator(None if config.text_frozen else model.text_encoder.text_tokenizer())
    loader = DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, collate_fn=collate,
                        num_workers=config.num_workers, pin_memory=dev.type == "cuda", drop_last=drop_last)
    steps_per_epoch = len(loader)
    if steps_per_epoch == 0:
        raise ValidationError(f"no batch: {n} items for batch size {config.batch_size} × {world} rank(s)")
    total = int(config.max_steps) if config.max_steps is not None else steps_per_epoch * int(config.epochs)
    optimizer = torch.optim.AdamW(_param_groups(model, config))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_lambda(s, warmup_steps=config.warmup_steps, total_steps=total, schedule="cosine"))
    autocast, scaler, precision = _amp_context(dev, config.amp)
    teacher_cache = TeacherCache(teacher) if teacher is not None else None
    text_cache = TeacherCache(model.text_encoder) if config.text_frozen else None
    params = [p for g in optimizer.param_groups for p in g["params"]]

    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        if config.text_frozen and config.w_kd > 0:
            log_note = {"note": "text tower frozen: the distillation term is skipped"}
            (out / "notes.json").write_text(json.dumps(log_note) + "\n", encoding="utf-8")
        (out / "train_config.json").write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n",
                                               encoding="utf-8")
    log = (out / "metrics.jsonl").open("w", encoding="utf-8") if rank == 0 else None
    bar = tqdm(total=total, disable=not progress or rank != 0, desc="clip", unit="step")
    step, epoch = 0, 0
    last: dict[str, float] = {}
    first: dict[str, float] = {}
    net.train()
    try:
        while step < total:
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(epoch)
            for batch in _batches(loader):
                losses = _step(net, model, loss_fn, teacher_cache, text_cache, batch, dev, config, autocast,
                               scaler, optimizer, params)
                scheduler.step()
                step += 1
                bar.update(1)
                if step % config.log_every == 0 or step in (1, total):  # reading losses back waits for the GPU
                    last = {k: float(v) for k, v in losses.items()}
                    first = first or dict(last)
                    bar.set_postfix(loss=f"{last['total']:.4f}", epoch=epoch)
                    if log is not None:
                        row = {"step": step, "total_steps": total, "epoch": epoch, **last,
                               "lr": float(optimizer.param_groups[0]["lr"]),
                               "temperature": float(1.0 / model.scale().detach()),
                               "time_s": round(time.perf_counter() - started, 3)}
                        log.write(json.dumps(row) + "\n")
                        log.flush()
                if step >= total:
                    break
            epoch += 1
    finally:
        bar.close()
        if log is not None:
            log.close()
    summary: dict[str, Any] = {
        "steps": step, "epochs_started": epoch, "world_size": world, "device": str(dev), "precision": precision,
        "first_loss": first.get("total", math.nan), "final": last, "train_time_s": time.perf_counter() - started,
        "parameter_checksum": float(sum(p.detach().double().sum().item() for p in model.parameters())),
    }
    if world > 1:
        dist.barrier()
    if rank == 0:
        model.save(out / MODEL_DIR)
        (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return summary


def _batches(loader: DataLoader[ClipSample]) -> Iterator[ClipBatch]:
    yield from loader


def _step(net: nn.Module, model: CLIPModel, loss_fn: PhenoLIPLoss, teacher: TeacherCache | None,
          text_cache: TeacherCache | None, batch: ClipBatch, dev: torch.device, config: ClipTrainConfig,
          autocast: contextlib.AbstractContextManager[Any], scaler: torch.amp.GradScaler | None,
          optimizer: torch.optim.Optimizer, params: list[nn.Parameter]) -> dict[str, Tensor]:
    images = resize_images(batch.images.to(dev, non_blocking=True), config.image_size)
    if config.augment:
        images = augment_images(images)
    assert batch.negatives is not None, "the trainer's loader collates with ClipCollator"
    mask = batch.negatives.to(dev, non_blocking=True)
    with autocast:
        if text_cache is not None:  # frozen text tower: cached caption embeddings, heads only
            feats = net(images, text_embedding=text_cache(batch.texts, dev))
        else:
            assert batch.tokens is not None, "ClipCollator tokenises whenever the text tower trains"
            tokens = {k: v.to(dev, non_blocking=True) for k, v in batch.tokens.items()}
            feats = net(images, tokens["input_ids"], tokens["attention_mask"])
    teacher_feats = teacher(batch.texts, dev) if teacher is not None else None
    losses = loss_fn(
        feats["image_features"].float(), feats["text_features"].float(), feats["logit_scale"].float(),
        student_text_features=feats["distill_features"].float() if teacher_feats is not None else None,
        teacher_text_features=teacher_feats,
        phenotype_sets=batch.phenotypes if config.w_soft > 0 else None, false_negative_mask=mask,
    )
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(losses["total"]).backward()
        scaler.unscale_(optimizer)
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        scaler.step(optimizer)
        scaler.update()
    else:
        losses["total"].backward()
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        optimizer.step()
    model.clamp_logit_scale_()
    return {k: v.detach() for k, v in losses.items()}


# ---- smoke entry point (torchrun-compatible) ------------------------------------------------------------


def _synthetic(n: int, image_size: int, seed: int) -> Dataset[ClipSample]:
    import numpy as np

    from models.train.clip_data import SetTheoryCaptionDataset

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n)
    images = (rng.random((n, image_size, image_size)) * 255).astype(np.uint8)
    images[labels == 1, : image_size // 2] //= 3  # a visible difference between the classes
    diseases = {
        0: DiseaseSets("CXR:no_finding", "No finding", (), (("HP:0002090", "Pneumonia"),)),
        1: DiseaseSets("CXR:pneumonia", "Pneumonia", (("HP:0032177", "Parenchymal consolidation"),),
                       (("HP:0100598", "Pulmonary edema"),)),
    }
    return SetTheoryCaptionDataset(images, labels, diseases, image_size=image_size, seed=seed)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m models.train.clip_train --synthetic N --out DIR [--config JSON]`` (also under torchrun)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--synthetic", type=int, required=True, help="random labelled images to train on")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--config", type=str, default="{}", help="ClipTrainConfig fields as JSON")
    ap.add_argument("--device", default=None)
    args = ap.parse_args(argv)
    config = ClipTrainConfig.from_dict(json.loads(args.config))
    dataset = _synthetic(args.synthetic, config.image_size, config.seed)
    summary = train_clip(dataset, config, args.out, device=args.device, progress=False)
    rank, _, _ = dist_info()
    (args.out / f"rank{rank}.json").parent.mkdir(parents=True, exist_ok=True)
    (args.out / f"rank{rank}.json").write_text(json.dumps(summary, sort_keys=True), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
